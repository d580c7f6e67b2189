"""The paper's table on the synthetic world: base CNN, SAD only, full model, over seeds.

    python experiments/reproduce_paper.py --out experiments/results/reproduce_paper

For each seed: a synthetic world (`WorldConfig` defaults, that seed), the base
CNN pretrained for ``--pretrain_steps``, then

  * base:     the base CNN trained for ``--pretrain_steps + --steps`` steps,
              so that every row has the same budget: a run of its own
              (``--base_row scratch``), or the pretrained base resumed for
              ``--steps`` more steps on the longer run's schedule
              (``--base_row continue``: the rows then differ only in the
              losses of their last ``--steps`` steps, and the long pretraining
              is not paid twice);
  * sad_only: hypercolumn + peak mask + spatial activation diversity, no
              occlusion branch, ``--steps`` steps from the pretrained base;
  * full:     every loss, ``--steps`` steps from the pretrained base;

each evaluated (`interp_fr.eval.recognition_report`) on (a) all test images,
(b) the occluded subset and (c) synthetically occluded copies of every test
image, with the spreadness d of its filters' average peak locations
(`interp_fr.eval.peak_locations`, average_location.m semantics), beside the
raw-pixel baseline. Writes ``table.md`` / ``table.json`` (mean +- std over the
seeds, and every seed), ``peak_locations.png`` (the paper's figure, one row per
model, first seed), ``learning_curves.png`` and ``run.json`` (command, machine,
run time). ``--rows`` trains and measures only some of the three models;
``--export DIR`` also writes the first seed's models as reference weights
(`interp_fr.reference_models`).

Resumable: run the same command again and finished trainings are not redone
(each trainer resumes from its checkpoint; evaluations are cached per seed).
"""
import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from experiments import provenance  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()

import numpy as np  # noqa: E402

from interp_fr import features, recipes, reference_models  # noqa: E402
from interp_fr.common.atomic_io import atomic_save_text  # noqa: E402
from interp_fr.data import synthetic_world  # noqa: E402
from interp_fr.eval import (peak_locations, recognition_report,  # noqa: E402
                            training_curves)

MODEL_ROWS = ("base", "sad_only", "full")
BASE_ROWS = ("scratch", "continue")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "reproduce_paper"))
    p.add_argument("--work", default=None, help="worlds and checkpoints (default: "
                   "<out>/work, not committed)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pretrain_steps", type=int, default=2400)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--colour_jitter", type=float, default=0.0, help="strength of the "
                   "training images' colour jitter (0: none, as the original; see "
                   "data.pipeline.jitter_colours)")
    p.add_argument("--base_row", choices=BASE_ROWS, default="scratch",
                   help="how the base row reaches its budget (see above); one --work "
                   "per choice, since a finished base row is reused as it is")
    p.add_argument("--rows", default=",".join(MODEL_ROWS), help="the models to train "
                   "and measure, a comma-separated subset of " + ", ".join(MODEL_ROWS))
    p.add_argument("--export", default=None, help="write the first seed's models "
                   "as reference weights into this folder")
    a = p.parse_args(argv)
    given = [r for r in a.rows.split(",") if r]
    unknown = sorted(set(given) - set(MODEL_ROWS))
    if unknown or not given:
        p.error(f"--rows: {', '.join(unknown) or 'none given'}; choose from "
                f"{', '.join(MODEL_ROWS)}")
    a.rows = tuple(r for r in MODEL_ROWS if r in given)
    return a


def _recipe(a, seed):
    return dataclasses.replace(recipes.Recipe(), pretrain_steps=a.pretrain_steps,
                               max_steps=a.steps, seed=seed, colour_jitter=a.colour_jitter)


def run_seed(a, seed, work, log):
    """Trains (or, when done before, reloads) and evaluates the models ``a.rows``
    of one seed; returns (its record, name -> `recipes.TrainedModel`)."""
    world = os.path.join(work, f"seed{seed}", "world")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=seed))
    ckpt = os.path.join(work, f"seed{seed}", "checkpoints")
    recipe = _recipe(a, seed)
    say = (lambda m: log(f"[seed {seed}] {m}"))
    # A finished training resumes at its last step and has nothing to do.
    pre = recipes.train_paper_model(recipe, "base", world, os.path.join(ckpt, "pretrain"),
                                    log=say)
    trained = {}
    if "base" in a.rows:
        long_recipe = dataclasses.replace(recipe,
                                          pretrain_steps=a.pretrain_steps + a.steps)
        if a.base_row == "continue":
            recipes.continue_training(pre, long_recipe, "base", world, ckpt)
        trained["base"] = recipes.train_paper_model(long_recipe, "base", world, ckpt,
                                                    log=say)
    for name in [r for r in a.rows if r != "base"]:
        trained[name] = recipes.train_paper_model(recipe, name, world, ckpt, base=pre,
                                                  log=say)
    cache = os.path.join(work, f"seed{seed}", "record.json")
    if os.path.isfile(cache):
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        if set(a.rows) <= set(cached["models"]):
            return cached, trained
    record = {"seed": seed, "recipe": dataclasses.asdict(recipe), "models": {}}
    forwards = {n: features.keras_forward(t.model) for n, t in trained.items()}
    peaks = peak_locations.peak_location_figure_for_models(
        forwards, world, os.path.join(work, f"seed{seed}", "peak_locations.png"))
    for name, t in trained.items():
        record["models"][name] = {
            "figures": recognition_report.recogniser_figures(forwards[name], world),
            "d_pos": peaks[name]["d_pos"], "d_neg": peaks[name]["d_neg"],
            "d": peaks[name]["d"], "train_seconds": t.seconds,
            "steps": int(t.trainer.step.numpy()),
            "history": [(s, v) for s, v in t.trainer.history]}
    record["pixels"] = recognition_report.pixel_baseline_figures(world)
    atomic_save_text(cache, json.dumps(record, indent=1))
    return record, trained


def table(records, model_rows=MODEL_ROWS):
    """Markdown and JSON of mean +- std over the seeds' records."""
    rows, js = [], {}
    for name in model_rows:
        figs = [r["models"][name]["figures"] for r in records]
        agg = recognition_report.mean_std(figs)
        rows.append((name, agg))
        js[name] = {"figures": agg}
        for key in ("d_pos", "d_neg"):
            vals = [r["models"][name][key] for r in records]
            js[name][key] = (float(np.mean(vals)), float(np.std(vals)))
    pixels = recognition_report.mean_std([r["pixels"] for r in records])
    rows.append(("raw pixels", pixels))
    js["raw pixels"] = {"figures": pixels}
    md = [recognition_report.table_markdown(rows), "",
          "| model | spreadness d positive (px) | d negative (px) |", "|---|---|---|"]
    for name in model_rows:
        dp, dn = js[name]["d_pos"], js[name]["d_neg"]
        md.append(f"| {name} | {dp[0]:.2f} +- {dp[1]:.2f} | {dn[0]:.2f} +- {dn[1]:.2f} |")
    return "\n".join(md) + "\n", js


def main(argv=None):
    a = parse_args(argv)
    work = a.work or os.path.join(a.out, "work")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    seeds = [int(s) for s in a.seeds.split(",")]
    records = []
    for seed in seeds:
        record, trained = run_seed(a, seed, work, lambda m: print(m, flush=True))
        records.append(record)
        if seed == seeds[0]:
            if a.export:
                reference_models.export_reference_models(
                    {n: t.model for n, t in trained.items()}, a.export,
                    {n: record["models"][n] for n in a.rows},
                    provenance={"command": " ".join(["python", "experiments/"
                                                     "reproduce_paper.py"] + sys.argv[1:]),
                                "seed": seed, "recipe": record["recipe"]})
            src = os.path.join(work, f"seed{seed}", "peak_locations.png")
            if os.path.isfile(src):
                with open(src, "rb") as f, open(os.path.join(
                        a.out, "peak_locations.png"), "wb") as g:
                    g.write(f.read())
            training_curves.plot_learning_curves(
                {n: record["models"][n]["history"] for n in a.rows},
                os.path.join(a.out, "learning_curves.png"),
                step_offsets={"sad_only": a.pretrain_steps, "full": a.pretrain_steps})
        md, js = table(records, a.rows)
        run = {"command": provenance.command_line("experiments/reproduce_paper.py", argv),
               "machine": provenance.machine_description(), "seeds_done": [
                   r["seed"] for r in records],
               "seconds_this_invocation": time.perf_counter() - t0,
               "train_seconds": {str(r["seed"]): {n: r["models"][n]["train_seconds"]
                                                  for n in a.rows} for r in records}}
        atomic_save_text(os.path.join(a.out, "table.md"),
                         f"# The paper's table on the synthetic world\n\n"
                         f"Seeds {run['seeds_done']}; mean +- std over seeds. "
                         f"Command: `{run['command']}`; machine: {run['machine']}.\n\n"
                         + md)
        atomic_save_text(os.path.join(a.out, "table.json"), json.dumps(
            {"mean_std": js, "per_seed": records, "run": run}, indent=1))
        atomic_save_text(os.path.join(a.out, "run.json"), json.dumps(run, indent=1))
        print(md, flush=True)


if __name__ == "__main__":
    main()

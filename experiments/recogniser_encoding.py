"""What do the recognisers of the synthetic world encode, and does colour jitter change it?

    python experiments/recogniser_encoding.py --out experiments/results/recogniser_encoding

A decoder can only render what the recogniser's representation z carries. For
the shipped reference models (base, SAD only, full) and a base CNN trained
here from scratch with colour jitter (`data.pipeline.jitter_colours`, same
recipe and steps as the reference base otherwise), on the world of seed 0:

* recognition on the test identities (IJB-A protocol of the world: TAR at FAR
  1e-2 / 1e-3, rank-1), on the test images as they are and in grey scale
  (the grey column says how much of the model's identity is colour);
* for each of the world's exact attributes, the R^2 on the test identities of
  a ridge read-out fitted on the training identities
  (`attribute_significance.heldout_probe_r2`): whether z encodes it in a way
  that carries over to new people;
* the significance ranking with the exact attributes
  (`significance_truth.check_against_truth`): whether it tells what each
  model relies on (its top attributes and the identity-over-nuisance AUC).

Writes ``encoding.md`` and ``encoding.json`` (command, machine, seconds).
Training resumes from ``--work`` when interrupted.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()


from experiments import provenance  # noqa: E402

from attr_recovery.analysis import recogniser_content  # noqa: E402
from attr_recovery.analysis.significance_truth import (  # noqa: E402
    COLOUR_ATTRIBUTES as COLOUR, SHAPE_ATTRIBUTES as SHAPE)

OTHER = recogniser_content.OTHER_ATTRIBUTES


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "recogniser_encoding"))
    p.add_argument("--work", default=None, help="world and checkpoints (default: "
                   "OUT/work)")
    p.add_argument("--steps", type=int, default=4400, help="steps of the jittered "
                   "base CNN (the reference base had 4,400)")
    p.add_argument("--colour_jitter", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--also", default=None, help="a folder of exported paper models "
                   "(reproduce_paper.py --export), measured too, e.g. a reproduction "
                   "with colour jitter")
    p.add_argument("--also_label", default="colour jitter", help="their row label")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    from interp_fr import recipes, reference_models
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.data import synthetic_world
    t0 = time.perf_counter()
    work = a.work or os.path.join(a.out, "work")
    world = os.path.join(work, f"world_seed{a.seed}")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=a.seed))
    recipe = dataclasses.replace(recipes.Recipe(), pretrain_steps=a.steps, seed=a.seed,
                                 colour_jitter=a.colour_jitter)
    t_train = time.perf_counter()
    # One folder per recipe: a run with other flags must not resume this one.
    ckpt = os.path.join(work, f"checkpoints_jitter{a.colour_jitter:g}_steps{a.steps}")
    jittered = recipes.train_paper_model(recipe, "base", world, ckpt,
                                         log=lambda m: print(m, flush=True))
    train_seconds = time.perf_counter() - t_train

    sets = recogniser_content.world_sets(world)
    models = {f"{n} (reference)": reference_models.load_reference_model(n)[0]
              for n in reference_models.available()}
    models[f"base, colour jitter {a.colour_jitter:g} ({a.steps} steps, here)"] = \
        jittered.model
    if a.also:
        models.update({f"{n} ({a.also_label})":
                       reference_models.load_reference_model(n, a.also)[0]
                       for n in reference_models.available(a.also)})
    rows = {}
    for name, model in models.items():
        print(f"measuring {name}", flush=True)
        rows[name] = recogniser_content.encoding_row(model, sets)

    seconds = time.perf_counter() - t0
    command = provenance.command_line("experiments/recogniser_encoding.py", argv)
    machine = provenance.machine_description()
    lines = ["# What the recognisers of the synthetic world encode", "",
             f"Command: `{command}`; machine: {machine}; {seconds:.0f} s "
             f"(training {train_seconds:.0f} s). World of seed {a.seed}: fitted on its "
             f"{len(sets.train_images)} training images (centre crops), measured on its "
             f"{len(sets.test_images)} test images (other identities).", "",
             "| model | TAR@1e-2 | TAR@1e-3 | rank-1 | grey TAR@1e-2 | grey rank-1 | "
             "mean shape R2 | mean colour R2 | gender R2 | age R2 | facial hair R2 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        p = r["probe_r2"]
        lines.append(
            f"| {name} | {r['all']['tar_at_far_0.01']:.3f} | {r['all']['tar_at_far_0.001']:.3f}"
            f" | {r['all']['rank1']:.3f} | {r['grey']['tar_at_far_0.01']:.3f} | "
            f"{r['grey']['rank1']:.3f} | {r['mean shape R2']:.3f} | "
            f"{r['mean colour R2']:.3f} | {p['gender']:.3f} | {p['age']:.3f} | "
            f"{p['facial_hair']:.3f} |")
    lines += ["", "Significance with the exact attributes (sensitivity; AUC of identity "
              "over nuisance attributes):", "", "| model | AUC | top 8 |", "|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['significance_auc']:.3f} | "
                     f"{', '.join(r['significance_top'])} |")
    lines += ["", "Held-out probe R2 per attribute:", "",
              "| attribute | " + " | ".join(rows) + " |",
              "|---|" + "---|" * len(rows)]
    for n in SHAPE + COLOUR + OTHER:
        lines.append(f"| {n} | " + " | ".join(f"{r['probe_r2'][n]:.3f}"
                                              for r in rows.values()) + " |")
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "encoding.md"), "\n".join(lines) + "\n")
    atomic_save_text(os.path.join(a.out, "encoding.json"), json.dumps(
        {"command": command, "machine": machine, "seconds": seconds,
         "train_seconds": train_seconds, "models": rows}, indent=1, default=float))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""The main job's attribute-recovery stages on each shipped recogniser, on worlds of two seeds.

    python experiments/explain_shipped_recognisers.py --work /tmp/explain \\
        --out experiments/results/explain_shipped_recognisers

For every recogniser a decoder is shipped for (`reference_decoder.DECODERS`:
the reference full InterpFRNet, which recognises the synthetic world by colour;
the full model trained with colour jitter, which carries face shape; the
MobileFaceNet trained with grey-scale augmentation, which carries both) and
every world seed, runs the main job's world stage and then its two
attribute-recovery stages exactly as ``interp-fr-demo --attribute_recogniser
SPEC`` does (`interp_fr.pipeline.main_job.stage_decoding` /
`stage_significance`, shipped decoder and estimators), without the face-model
training the main job spends most of its time on (those stages do not read it).

Records per (world, recogniser): the reconstruction attack on unseen subjects
(type-I / type-II TAR at FAR 1e-2 and 1e-3, SSIM vs the canonical portrait),
the sensitivity ranking (attributes above the family-wise noise floor, AUC
identity over nuisance) and the two explained decisions (median false reject
and false accept: the attribute flips and what the decoded counterfactual face
shows). Writes ``table.md`` / ``table.json`` and, per run, the decoding grid of
unseen subjects and both explanation figures under ``seed<k>/<name>/``.
"""
import argparse
import json
import os
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from experiments import provenance  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()

# Files of a run's stage folders kept in the results (relative to the run).
KEPT_FIGURES = ("decoding/decoding_grid_unseen.png", "significance/explanation.png",
                "significance/explanation_accept.png")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="working folder (worlds, stage outputs)")
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "explain_shipped_recognisers"))
    p.add_argument("--seeds", default="0,1", help="world seeds, comma-separated")
    p.add_argument("--recognisers", default=None,
                   help="specs, comma-separated (default: every one with a shipped decoder)")
    return p.parse_args(argv)


def short_name(spec):
    """'reference:colour_jitter/full' -> 'colour_jitter_full'."""
    return spec.partition(":")[2].replace("/", "_")


def row(seed, spec, label, decoding, significance):
    """The table's record of one run (plain numbers and strings)."""
    unseen = decoding["reconstruction attack, unseen subjects"]
    return {
        "world seed": seed, "recogniser": spec, "label": label,
        "unseen type-I TAR@1e-2": unseen["type-I TAR@0.01"],
        "unseen type-II TAR@1e-2": unseen["type-II TAR@0.01"],
        "unseen type-I TAR@1e-3": unseen["type-I TAR@0.001"],
        "unseen type-II TAR@1e-3": unseen["type-II TAR@0.001"],
        "unseen SSIM vs portrait": unseen.get("SSIM vs portrait"),
        "ranking": significance[
            "significance ranking (sensitivity; * = not above the noise floor)"],
        "ranking AUC": significance[
            "sensitivity ranking AUC, identity over nuisance attributes"],
        "false reject": significance["explained pair"],
        "false reject: contributions": significance["top contributions"],
        "false accept": significance.get("explained pair (median false accept)"),
        "false accept: contributions": significance.get(
            "top contributions (median false accept)"),
        "stage seconds": round(decoding["stage seconds"] + significance["stage seconds"], 1),
    }


def _above_floor(ranking):
    return [entry.split(":")[0] for entry in ranking if not entry.endswith("*")]


def _contributions(contributions):
    """The report's contributions: name -> text, or one sentence (e.g. when no
    encoded attribute flips the decision)."""
    if isinstance(contributions, dict):
        return "; ".join(f"{name} {text}" for name, text in contributions.items())
    return str(contributions or "-")


def markdown(record):
    lines = ["# The attribute-recovery stages on each shipped recogniser", "",
             f"Command: `{record['command']}`  ", f"Machine: {record['machine']}  ",
             f"Run time: {record['seconds']:.0f} s", "",
             "Reconstruction attack on unseen subjects (thresholds of R at FAR "
             "1e-2 / 1e-3 on real genuine / impostor pairs) and sensitivity "
             "ranking with the shipped estimators:", "",
             "| world | recogniser | type-I / type-II TAR@1e-2 | type-I / type-II TAR@1e-3 "
             "| SSIM vs portrait | above the noise floor (sensitivity order) | ranking AUC |",
             "|---|---|---|---|---|---|---|"]
    for r in record["runs"]:
        ssim = r["unseen SSIM vs portrait"]
        lines.append(
            f"| {r['world seed']} | {r['recogniser']} "
            f"| {r['unseen type-I TAR@1e-2']:.3f} / {r['unseen type-II TAR@1e-2']:.3f} "
            f"| {r['unseen type-I TAR@1e-3']:.3f} / {r['unseen type-II TAR@1e-3']:.3f} "
            f"| {'-' if ssim is None else f'{ssim:.3f}'} "
            f"| {', '.join(_above_floor(r['ranking']))} | {r['ranking AUC']:.3f} |")
    lines += ["", "The explained decisions (flip: the change of the attribute, in "
              "units of its spread, that flips the decision; the decoded "
              "counterfactual face's change along it, read by the estimators, and "
              "the largest change of any other attribute):", ""]
    for r in record["runs"]:
        lines += [f"- world {r['world seed']}, {r['recogniser']}:",
                  f"  - {r['false reject']}: {_contributions(r['false reject: contributions'])}"]
        if r["false accept"]:
            lines.append(f"  - {r['false accept']}: "
                         f"{_contributions(r['false accept: contributions'])}")
    lines += ["", "Figures: `seed<k>/<recogniser>/` holds the decoding grid of unseen "
              "subjects and both explanation figures of each run.", ""]
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(argv)
    from attr_recovery.shipped import reference_decoder
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.data import synthetic_world
    from interp_fr.pipeline import main_job

    specs = (a.recognisers.split(",") if a.recognisers else
             [s for s in reference_decoder.DECODERS if reference_decoder.available(recognition=s)])
    t0 = time.perf_counter()
    runs = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        world_ctx = main_job.JobContext(os.path.join(a.work, f"seed{seed}"),
                                        synthetic_world.WorldConfig(seed=seed))
        main_job.stage_world(world_ctx)
        for spec in specs:
            run_dir = os.path.join(a.work, f"seed{seed}", short_name(spec))
            ctx = main_job.JobContext(run_dir, world_ctx.world_config,
                                      attribute_recogniser=spec)
            ctx.values.update(world_ctx.values)
            print(f"world {seed}, {spec}", flush=True)
            decoding = main_job.stage_decoding(ctx)
            significance = main_job.stage_significance(ctx)
            runs.append(row(seed, spec, decoding["recogniser"], decoding, significance))
            kept = os.path.join(a.out, f"seed{seed}", short_name(spec))
            os.makedirs(kept, exist_ok=True)
            for rel in KEPT_FIGURES:
                if os.path.exists(os.path.join(run_dir, rel)):
                    shutil.copyfile(os.path.join(run_dir, rel),
                                    os.path.join(kept, os.path.basename(rel)))
            print(json.dumps(runs[-1], default=str), flush=True)
    record = dict(command=provenance.command_line(
                      "experiments/explain_shipped_recognisers.py", argv),
                  machine=provenance.machine_description(),
                  seconds=time.perf_counter() - t0, runs=runs)
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "table.json"), json.dumps(record, indent=1,
                                                                    default=str))
    atomic_save_text(os.path.join(a.out, "table.md"), markdown(record))


if __name__ == "__main__":
    main()

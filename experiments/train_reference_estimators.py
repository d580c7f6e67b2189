"""Trains the 64 px reference attribute and landmark estimators (issue 15).

    python experiments/train_reference_estimators.py --work /tmp/refest \\
        --out experiments/results/reference_estimators [--export]

Trains ``attr_recovery.trainers.estimator_training`` (synthetic heads) on the world of
seed 0's training images plus ``--rendered`` in-memory faces of fresh
identities (four images each), at 64 px (the reference decoder's resolution),
then reports per-attribute accuracy on the world's held-out test identities
(``report.md`` / ``report.json`` in ``--out``). Resumable: run the same
command again. With ``--export`` the estimators go to
``attr_recovery/reference_weights/estimators64`` (``estimators.json`` with the
figures and this command, one model-only checkpoint).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The checkout's packages (and reference_weights/), not an installed copy.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()
from experiments import provenance  # noqa: E402

from attr_recovery.trainers import estimator_training  # noqa: E402
from attr_recovery.shipped import reference_estimators
from interp_fr.common.atomic_io import atomic_save_text  # noqa: E402
from interp_fr.data import synthetic_world  # noqa: E402
from interp_fr.common.json_safe import json_safe  # noqa: E402


def report_markdown(record):
    """The results folder's report.md."""
    m = record["metrics"]
    lines = ["# Reference attribute and landmark estimators (64 px)", "",
             f"Command: `{record['command']}`; machine: {record['machine']}; "
             f"{record['steps']} steps; this call {record['seconds_this_call']:.0f} s.", "",
             f"Held-out set: {m['set']} ({m['images']} images of identities never "
             "seen in training).", "",
             "| attribute | kind | figure | chance / mean-predictor MAE |",
             "|---|---|---|---|"]
    for name, a in m["attributes"].items():
        if "accuracy" in a:
            lines.append(f"| {name} | class | accuracy {a['accuracy']:.3f} | "
                         f"{a['chance']:.3f} |")
        elif "r2" in a:
            lines.append(f"| {name} | regr | R2 {a['r2']:.3f} (MAE {a['mae']:.3g}) | "
                         f"{a['baseline_mae']:.3g} |")
    if "landmarks" in m:
        lm = m["landmarks"]
        lines.append(f"| landmarks (68) | heat map | NME {lm['nme_interocular']:.4f} "
                     f"({lm['mean_error_px']:.2f} px of 96) | |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--rendered", type=int, default=24000)
    p.add_argument("--max_steps", type=int, default=12000)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", action="store_true")
    args = p.parse_args()
    t_start = time.perf_counter()
    world = os.path.join(args.work, "world")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=args.seed))
    config = estimator_training.EstimatorTrainConfig(
        world_dir=world, out_dir=os.path.join(args.work, "estimators"), heads="synthetic",
        extra_rendered=args.rendered, extra_occlusion_rate=0.2,
        **reference_estimators.ARCHITECTURE, batch_size=args.batch_size,
        max_steps=args.max_steps, learning_rate=0.002, lowres_prob=0.3, lowres_min=32,
        seed=args.seed, save_every_steps=500, log_every=250)
    trainer = estimator_training.EstimatorTrainer(config)
    trainer.fit()
    metrics = estimator_training.evaluate_estimators(trainer.reader(), trainer.held_out)
    command = "python " + " ".join(sys.argv)
    record = dict(metrics=metrics, steps=int(trainer.step.numpy()), command=command,
                  seconds_this_call=time.perf_counter() - t_start,
                  machine=provenance.machine_description(), config=vars(args))
    os.makedirs(args.out, exist_ok=True)
    atomic_save_text(os.path.join(args.out, "report.json"),
                     json.dumps(json_safe(record), indent=1))
    atomic_save_text(os.path.join(args.out, "report.md"), report_markdown(record))
    if args.export:
        written = reference_estimators.export_reference_estimators(
            trainer, recorded=json_safe(metrics),
            provenance=dict(command=command, steps=record["steps"], seed=args.seed,
                            rendered=args.rendered))
        print("exported:", *written, sep="\n  ")
    print(report_markdown(record))


if __name__ == "__main__":
    main()

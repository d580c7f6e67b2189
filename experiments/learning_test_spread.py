"""Spread of the figures that the learning tests assert, and their untrained control.

    python experiments/learning_test_spread.py --seeds 5 --out experiments/results/learning_test_spread

Runs each test that asserts what training achieves (``LEARNING_TESTS``) with
the seed offsets 0..seeds-1 (world, initialisation and data order all move),
once more with ``TF_ENABLE_ONEDNN_OPTS=0`` (another kernel set, standing in for
another CPU) and once as the untrained control (0 training steps), through the
switches of ``tests/helpers/learning.py``. Each test records its figures and thresholds
before asserting, so failing runs are measured too. Writes ``spread.json`` and
``spread.md`` (per figure: threshold, min / median / max over the seeds, the
oneDNN-off value, the control's value, and whether the control fails it).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from experiments import provenance  # noqa: E402
from interp_fr.common.atomic_io import atomic_save_text  # noqa: E402

LEARNING_TESTS = (
    "tests/core/test_training.py::test_short_run_learns_identities",
    "tests/attr_recovery/test_attr_training.py::test_decoding_stage_recovers_identity",
    "tests/attr_recovery/test_attr_estimators.py::test_short_training_beats_chance_on_held_out_identities",
)


def run_tests(figures_file, seed_offset=0, control=False, onednn=True, log=print):
    """Runs LEARNING_TESTS once with the given switches; returns pytest's status."""
    env = dict(os.environ, INTERP_FR_TEST_SEED=str(seed_offset),
               INTERP_FR_TEST_FIGURES=figures_file,
               INTERP_FR_TEST_CONTROL="untrained" if control else "",
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if not onednn:
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *LEARNING_TESTS], cwd=REPO, env=env, capture_output=True,
                          text=True)
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    log(f"seed offset {seed_offset}, control={control}, onednn={onednn}: "
        f"{' '.join(tail)} ({time.perf_counter() - t0:.0f} s)")
    return proc.returncode


def _passes(value, op, bound):
    return value > bound if op == ">" else value < bound


def summarise(rows):
    """Per (test, figure): threshold, seed spread, oneDNN-off and control values."""
    out = {}
    for row in rows:
        for name, value in row["figures"].items():
            entry = out.setdefault(row["test"], {}).setdefault(name, {
                "threshold": row["thresholds"].get(name), "seeds": {},
                "onednn_off": None, "control": None,
                "uncontrolled": name in row.get("uncontrolled", ())})
            if row["control"]:
                entry["control"] = value
            elif row["onednn"] == "0":
                entry["onednn_off"] = value
            else:
                entry["seeds"][row["seed_offset"]] = value
    for figures in out.values():
        for entry in figures.values():
            vals = np.array(list(entry["seeds"].values()), np.float64)
            if len(vals):
                entry.update(min=float(vals.min()), median=float(np.median(vals)),
                             max=float(vals.max()))
            if entry["threshold"]:
                op, bound = entry["threshold"]
                measured = list(vals) + ([entry["onednn_off"]]
                                         if entry["onednn_off"] is not None else [])
                entry["all_runs_pass"] = bool(all(_passes(v, op, bound)
                                                  for v in measured))
                if entry["control"] is not None and not entry["uncontrolled"]:
                    entry["control_fails"] = not _passes(entry["control"], op, bound)
    return out


def markdown(summary, meta):
    lines = ["# Spread of the learning tests' asserted figures", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ",
             f"Run time: {meta['seconds'] / 60:.1f} min", "",
             "A control marked n/a does not train the part the figure measures "
             "(the stage's own untrained control, or the small recogniser that the "
             "decoding test trains in every run).", "",
             "| test | figure | threshold | min / median / max over seeds | "
             "oneDNN off | untrained control | all runs pass | control fails |",
             "|---|---|---|---|---|---|---|---|"]

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"
    for test, figures in summary.items():
        for name, e in figures.items():
            thr = " ".join(str(x) for x in e["threshold"]) if e["threshold"] else "-"
            spread = (f"{fmt(e.get('min'))} / {fmt(e.get('median'))} / "
                      f"{fmt(e.get('max'))}")
            lines.append(f"| {test} | {name} | {thr} | {spread} | "
                         f"{fmt(e['onednn_off'])} | {fmt(e['control'])} | "
                         f"{e.get('all_runs_pass', '-')} | "
                         f"{'n/a' if e['uncontrolled'] else e.get('control_fails', '-')} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(
        REPO, "experiments", "results", "learning_test_spread"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        figures_file = os.path.join(tmp, "figures.jsonl")
        for k in range(args.seeds):
            run_tests(figures_file, seed_offset=k)
        run_tests(figures_file, onednn=False)
        run_tests(figures_file, control=True)
        with open(figures_file, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
    meta = {"command": provenance.command_line("experiments/learning_test_spread.py"),
            "machine": f"{provenance.machine_description()}, {platform.platform()}",
            "seconds": time.perf_counter() - t0}
    summary = summarise(rows)
    atomic_save_text(os.path.join(args.out, "spread.json"),
                     json.dumps({"meta": meta, "summary": summary, "runs": rows},
                                indent=2))
    atomic_save_text(os.path.join(args.out, "spread.md"), markdown(summary, meta))
    print(markdown(summary, meta))


if __name__ == "__main__":
    main()

"""Settings shared by the tests that assert what training achieves.

Training is not bit-reproducible across CPUs (kernels and reduction orders
differ), so such a test must hold with margin for any seed and kernel set.
`experiments/learning_test_spread.py` measures that margin by running these
tests with other seeds, with oneDNN off, and as an untrained control; the
environment variables below are its switches. A plain ``pytest`` run uses the
tests' own fixed seeds and records nothing.

- ``INTERP_FR_TEST_SEED`` (default 0): added to every seed a learning test
  uses (world, initialisation, data order).
- ``INTERP_FR_TEST_CONTROL=untrained``: every learning test trains for 0
  steps; its thresholds must then fail.
- ``INTERP_FR_TEST_FIGURES=FILE``: each learning test appends one JSON line
  with the figures it asserts and their thresholds, before asserting.
"""
import json
import os

SEED_OFFSET = int(os.environ.get("INTERP_FR_TEST_SEED", "0"))
UNTRAINED_CONTROL = os.environ.get("INTERP_FR_TEST_CONTROL", "") == "untrained"
FIGURES_FILE = os.environ.get("INTERP_FR_TEST_FIGURES", "")


def seed(default):
    """The seed a learning test uses where it would use ``default``."""
    return int(default) + SEED_OFFSET


def steps(n):
    """Training steps: ``n``, or 0 in the untrained control."""
    return 0 if UNTRAINED_CONTROL else int(n)


def check(test, figures, thresholds, uncontrolled=()):
    """Records ``figures`` of ``test``, then asserts each threshold.

    Args:
        test: a short name for the results table.
        figures: dict name -> number.
        thresholds: dict name -> (">" or "<", bound); every name is in
            ``figures``.
        uncontrolled: names of figures the untrained control does not change
            (a part trained outside the control, or a control of its own).
    """
    if FIGURES_FILE:
        row = {"test": test, "seed_offset": SEED_OFFSET, "control": UNTRAINED_CONTROL,
               "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
               "figures": {k: float(v) for k, v in figures.items()},
               "thresholds": {k: list(v) for k, v in thresholds.items()},
               "uncontrolled": list(uncontrolled)}
        with open(FIGURES_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    failed = [f"{name} = {float(figures[name]):.4g}, needs {op} {bound}"
              for name, (op, bound) in thresholds.items()
              if not (figures[name] > bound if op == ">" else figures[name] < bound)]
    assert not failed, f"{test}: " + "; ".join(failed)

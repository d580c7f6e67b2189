"""The main job runs end to end on a small world and writes its report."""
import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_demo_quick_writes_report(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "interp_fr.demo", "--out", str(out),
                           "--quick"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out / "report.json"))
    world = report["synthetic world"]["figures"]
    assert world["training images"] == 64 and world["training subjects"] == 8
    assert world["triangles"] == 142
    assert os.path.isfile(out / "report.md")
    assert "[1/" in proc.stdout  # progress display

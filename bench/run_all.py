"""Every benchmark at paper size on the device TensorFlow finds, into one JSON.

    python bench/run_all.py --out bench_results.json          # CPU or GPU alike
    python bench/run_all.py --quick --out small.json          # minutes, small sizes
    python bench/run_all.py --precision bfloat16              # also time bfloat16 extraction

Runs, each in its own process (so that one's memory and threads do not bias the
next): the training step against the original's tf.compat.v1 graph
(`bench/train_step.py`), extraction against the original's batch-1 loop
(`bench/extract.py`), the IJB-A evaluation against a loop port of the MATLAB
scripts (`bench/ijba.py`) and the data pipeline's memory (`bench/dat_pipeline_memory.py`).
Writes one JSON: the device (CPU model and its AMX / AVX-512 BF16 flags, GPU
name and compute capability), then per benchmark the precision, images/s,
GFLOP/s and the ratio to its baseline, as each script reports them.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.report import device_description  # noqa: E402

PAPER = {
    "train_step": ["--df_dim", "32", "--dim", "320", "--batch_size", "64", "--steps", "3"],
    "extract": ["--images", "256", "--batch_size", "64"],
    "ijba": [],
    "dat_pipeline_memory": ["--gigabytes", "4"],
    "ijbc_insightface": [],
}
QUICK = {
    "train_step": ["--df_dim", "8", "--dim", "64", "--batch_size", "32", "--steps", "3",
                   "--n_subjects", "300"],
    "extract": ["--images", "64", "--repeats", "1", "--df_dim", "8", "--gfc_dim", "32",
                "--dfc_dim", "32"],
    "ijba": ["--search_probes", "50"],
    "dat_pipeline_memory": ["--gigabytes", "0.2"],
    "ijbc_insightface": ["--pairs", "1000000"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench_results.json")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", default=",".join(PAPER),
                        help="comma-separated subset of " + ",".join(PAPER))
    parser.add_argument("--precision", default="auto",
                        choices=("float32", "bfloat16", "float16", "auto"),
                        help="16-bit path timed beside float32 in the extraction "
                             "benchmark (auto: float16 on GPUs with tensor cores, "
                             "bfloat16 on CPUs with AMX, none elsewhere)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else PAPER
    results = {"device": device_description(), "size": "quick" if args.quick else "paper",
               "benchmarks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            path = os.path.join(tmp, name + ".json")
            cmd = [sys.executable, os.path.join(REPO, "bench", name + ".py"),
                   *sizes[name], "--json", path]
            if name == "extract":
                cmd += ["--precision", args.precision]
            print("$", " ".join(cmd[1:]), flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            print(proc.stdout, end="", flush=True)
            if proc.returncode != 0 or not os.path.isfile(path):
                results["benchmarks"][name] = {"error": proc.stderr[-2000:]}
                print(f"{name} failed (exit {proc.returncode})", flush=True)
                continue
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            doc.pop("device", None)
            doc["wall_seconds"] = time.perf_counter() - t0
            results["benchmarks"][name] = doc
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=float)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

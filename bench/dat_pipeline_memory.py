"""Streams a large CASIA-format .dat once through the training pipeline.

Prints peak resident memory and images/s. The requirement is a peak RSS under
1.5 GB for a 4 GB file: the reader must never hold the file in memory.

    python bench/dat_pipeline_memory.py --gigabytes 4 [--path existing.dat]

Without --path a sparse file of the requested size is made in a temp folder
(reads of a sparse file cost the same system calls as real data).
"""
import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()

from bench.report import add_json_flag, write_json  # noqa: E402
from interp_fr.data import dat_files, pipeline  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=4.0)
    parser.add_argument("--path", default=None)
    parser.add_argument("--batch_size", type=int, default=64)
    add_json_flag(parser)
    args = parser.parse_args()
    per_image = 110 * 110 * 3
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path
        if path is None:
            path = os.path.join(tmp, dat_files.CASIA_IMAGES_FILE)
            count = int(args.gigabytes * 1e9) // per_image
            with open(path, "wb") as f:
                f.truncate(count * per_image)
        dat = dat_files.DatImages(path, 110)
        labels = [0] * len(dat)
        batches = len(dat) // args.batch_size
        ds = pipeline.training_dataset(dat, labels, args.batch_size,
                                       num_batches=batches)
        rss_before = peak_rss_mb()
        start = time.perf_counter()
        n = 0
        for batch in ds:
            n += int(batch["image"].shape[0])
        seconds = time.perf_counter() - start
    print(f"file: {len(dat)} images, {len(dat) * per_image / 1e9:.2f} GB")
    print(f"streamed {n} images in {seconds:.1f} s: {n / seconds:.0f} images/s")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (after imports: {rss_before:.0f} MB); "
          f"limit 1536 MB: {'OK' if peak_rss_mb() < 1536 else 'EXCEEDED'}")
    write_json(args.json, {
        "benchmark": "data pipeline memory", "images": n,
        "gigabytes": len(dat) * per_image / 1e9, "images_per_s": n / seconds,
        "peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": rss_before,
        "limit_mb": 1536})


if __name__ == "__main__":
    main()

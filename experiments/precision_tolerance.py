"""What bfloat16 and float16 inference change against float32, on the same inputs.

    python experiments/precision_tolerance.py --out experiments/results/precision_tolerance

For a model (default: the shipped reference full model) on the test images of a
synthetic world (default: seed 0), each precision's features are compared with
float32's: the largest and mean feature error relative to the feature's norm,
the lowest cosine between the two features of an image, and the fraction of
peak-mask positions (k5 positions kept by the mask) that flip. With
``--protocol`` the IJB-A-style figures are also computed in each precision.
Writes ``tolerance.md`` and ``tolerance.json``.
"""
import argparse
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "precision_tolerance"))
    p.add_argument("--model", default=None, help="Keras weights (default: the "
                   "reference full model)")
    p.add_argument("--world", default=None, help="synthetic world folder (default: "
                   "built for seed 0 under <out>/work)")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--precisions", default="bfloat16,float16")
    p.add_argument("--protocol", action="store_true",
                   help="also the IJB-A-style figures per precision")
    return p.parse_args(argv)


def outputs(forward, images, batch=64):
    """features [N, D] and kept-position masks of k5 [N, 24, 24, C], float32 numpy,
    from a `interp_fr.features.keras_forward` callable."""
    import tensorflow as tf
    feats, kept = [], []
    for i in range(0, len(images), batch):
        out = forward(tf.constant(images[i:i + batch]))
        feats.append(np.asarray(tf.cast(out["feature"], tf.float32)))
        kept.append(np.asarray(out["feature_map"]) != 0)
    return np.concatenate(feats), np.concatenate(kept)


def main(argv=None):
    a = parse_args(argv)
    from interp_fr import features, model_loading, precision, reference_models
    from interp_fr.data import dat_files, synthetic_world
    from interp_fr.data.image_scaling import to_unit_range
    from interp_fr.eval import recognition_report
    from interp_fr.common.atomic_io import atomic_save_text
    world = a.world or os.path.join(a.out, "work", "world_seed0")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=0))
    if a.model:
        model, _, _ = model_loading.load_keras_model(a.model)
    else:
        model, _ = reference_models.load_reference_model("full")
    test = dat_files.open_ijba_images(os.path.join(world, "DATA"))
    n = min(a.images, len(test))
    images = to_unit_range(test.read_range(0, n))
    # One traced forward per precision, for the comparison and the protocol.
    forward = features.keras_forward(model)
    t0 = time.perf_counter()
    ref_f, ref_kept = outputs(forward, images)
    times = {"float32": time.perf_counter() - t0}
    rows = {}
    for name in a.precisions.split(","):
        low = features.keras_forward(precision.model_in_precision(model, name))
        t0 = time.perf_counter()
        f, kept = outputs(low, images)
        times[name] = time.perf_counter() - t0
        norm = np.linalg.norm(ref_f, axis=1)
        err = np.linalg.norm(f - ref_f, axis=1) / norm
        cos = np.sum(f * ref_f, 1) / (np.linalg.norm(f, axis=1) * norm)
        rows[name] = {"images": n,
                      "max relative feature error": float(err.max()),
                      "mean relative feature error": float(err.mean()),
                      "min cosine to float32": float(cos.min()),
                      "peak-mask positions that flip": float(
                          np.mean(kept != ref_kept)),
                      "kept positions that flip": float(
                          np.sum(kept != ref_kept) / max(1, ref_kept.sum())),
                      "seconds (this machine, incl. tracing)": times[name]}
        if a.protocol:
            rows[name]["figures"] = recognition_report.recogniser_figures(low, world)
    if a.protocol:
        rows["float32"] = {"figures": recognition_report.recogniser_figures(
            forward, world)}
    meta = {"command": provenance.command_line("experiments/precision_tolerance.py", argv),
            "machine": provenance.machine_description(),
            "cpu_flags": sorted({"avx512_bf16", "amx_bf16"} & precision.cpu_flags()),
            "float32 seconds": times["float32"]}
    keys = [k for k in next(iter(rows.values())) if k != "figures"]
    md = ["# Inference in bfloat16 / float16 against float32", "",
          f"Command: `{meta['command']}`; machine: {meta['machine']} "
          f"(bfloat16 instructions: {meta['cpu_flags'] or 'none'}).", "",
          "| precision | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, r in rows.items():
        if name == "float32":
            continue
        md.append(f"| {name} | " + " | ".join(f"{r[k]:.4g}" for k in keys) + " |")
    if a.protocol:
        md += ["", recognition_report.table_markdown(
            [(name, r["figures"]) for name, r in rows.items()])]
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "tolerance.md"), "\n".join(md) + "\n")
    atomic_save_text(os.path.join(a.out, "tolerance.json"),
                     json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()

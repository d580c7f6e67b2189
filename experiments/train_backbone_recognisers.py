"""The attribute-recovery backbones as recognisers of the synthetic world (issue 15, goal 4).

    python experiments/train_backbone_recognisers.py \\
        --out experiments/results/backbone_recognisers

Trains the original's MobileFaceNet (``attr_recovery.nets.backbones``, 512-d, the
original layout; 112 px input, resized from the 96 px crops) with a cosine
softmax (``attr_recovery.trainers.recogniser_training``) on the training identities of
the world of seed 0, then reports (1) its verification / identification
figures on the world's test identities beside the raw-pixel baseline
(``eval.recognition_report``), and (2) the significance rankings against the
world's truth (``attr_recovery.analysis.significance_truth``) on the test images of the
world of ``--truth_world_seed``, for the trained model and an untrained
control of the same architecture. IR-SE-50 (43 M parameters, about 6 GFLOPs
per face) is out of a 2-core CPU budget; ``--irse`` adds a slim IR-SE
(the same unit, fewer and narrower stages) instead.
``--grey_probability`` / ``--colour_jitter`` augment the training images
(``recogniser_training.train_recogniser``); the trained models are then also
measured in grey scale with held-out probes of every attribute
(``recogniser_content.encoding_row``). ``--export`` rounds the trained
MobileFaceNet to float16 before it is measured and writes it as the shipped
``reference:mobilefacenet`` (``attr_recovery.readers.reference_recognisers``).
Writes ``report.md`` and ``report.json``.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from interp_fr.common.cpu_kernels import use_onednn_kernels  # noqa: E402
use_onednn_kernels()
from experiments import provenance  # noqa: E402

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "backbone_recognisers"))
    p.add_argument("--work", default=None, help="worlds (default: OUT/work)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--truth_world_seed", type=int, default=1)
    p.add_argument("--irse", action="store_true", help="also a slim IR-SE")
    p.add_argument("--grey_probability", type=float, default=0.0)
    p.add_argument("--colour_jitter", type=float, default=0.0)
    p.add_argument("--export", action="store_true",
                   help="ship the trained MobileFaceNet (float16)")
    a = p.parse_args()
    import keras
    import tensorflow as tf
    from attr_recovery.analysis import recogniser_content
    from attr_recovery.analysis import significance_truth as st
    from attr_recovery.readers import reference_recognisers
    from attr_recovery.nets.backbones import IRSEBackbone, MobileFaceNet
    from attr_recovery.trainers.recogniser_training import train_recogniser
    from interp_fr import features
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.data import dat_files, synthetic_world
    from interp_fr.eval import recognition_report
    from interp_fr.common.json_safe import json_safe

    t_start = time.perf_counter()
    work = a.work or os.path.join(a.out, "work")
    worlds = {}
    for seed in sorted({0, a.truth_world_seed}):
        worlds[seed] = os.path.join(work, f"world_seed{seed}")
        if not os.path.isfile(os.path.join(worlds[seed], "world.json")):
            synthetic_world.build_world(worlds[seed], synthetic_world.WorldConfig(seed=seed))
    builders = {"MobileFaceNet": lambda: MobileFaceNet(name="mobilefacenet")}
    if a.irse:
        builders["slim IR-SE (2,2,2,2 units; 32-256 channels)"] = lambda: IRSEBackbone(
            (2, 2, 2, 2), (32, 64, 128, 256), embedding_size=256, name="irse")

    def forward_of(model):
        @tf.function(reduce_retracing=True)
        def forward(images):
            return {"feature": model(images, training=False)}
        return forward

    truth_world = worlds[a.truth_world_seed]
    attrs = dict(np.load(os.path.join(truth_world, "attributes", "ijba_attributes.npz")))
    truth_test = dat_files.open_ijba_images(os.path.join(truth_world, "DATA"))
    rows = [("raw pixels (PCA 64 of 24x24)",
             recognition_report.pixel_baseline_figures(worlds[0]))]
    record = {"models": {}}
    for name, build in builders.items():
        for trained in (False, True):
            keras.utils.set_random_seed(0)
            model = build()
            entry = {}
            if trained:
                t0 = time.perf_counter()
                entry["training accuracy (last 50 batches)"] = train_recogniser(
                    model, os.path.join(worlds[0], synthetic_world.DATA_DIR), a.steps,
                    a.batch_size, seed=0, log=lambda s: print(name, s, flush=True),
                    colour_jitter=a.colour_jitter, grey_probability=a.grey_probability)
                entry["training seconds"] = time.perf_counter() - t0
                entry["steps"] = a.steps
                shipping = a.export and name == "MobileFaceNet"
                if shipping:
                    reference_recognisers.round_to_float16(model)
                entry["encoding"] = recogniser_content.encoding_row(
                    model, recogniser_content.world_sets(worlds[0]))
            label = name if trained else f"{name}, untrained"
            forward = forward_of(model)
            figures = recognition_report.recogniser_figures(forward, worlds[0])
            rows.append((label, figures))
            z = features.extract_features(forward, truth_test).features
            truth = st.check_against_truth(z, attrs, attrs["subject"])
            entry.update(figures=figures, significance_auc=truth["auc"],
                         sensitivity=truth["measures"]["sensitivity"])
            record["models"][label] = entry
            print(label, {k: round(v, 3) for k, v in truth["auc"].items()}, flush=True)
            if trained and shipping:
                command = provenance.command_line("experiments/train_backbone_recognisers.py")
                print(reference_recognisers.export_reference_recogniser(
                    model, "mobilefacenet", json_safe(entry),
                    {"command": command, "steps": a.steps, "batch_size": a.batch_size,
                     "seed": 0, "world_seed": 0, "grey_probability": a.grey_probability,
                     "colour_jitter": a.colour_jitter}), flush=True)
    record.update(command=provenance.command_line("experiments/train_backbone_recognisers.py"),
                  machine=provenance.machine_description(),
                  seconds=time.perf_counter() - t_start)
    md = ["# The attribute-recovery backbones as recognisers of the synthetic world", "",
          f"Command: `{record['command']}`; machine: {record['machine']}; "
          f"{record['seconds']:.0f} s.", "",
          "Recognition on the test identities of the world of seed 0 (the models "
          "trained on its training identities):", "",
          recognition_report.table_markdown(rows), "",
          f"Significance rankings against the truth (test images of the world of seed "
          f"{a.truth_world_seed}; AUC of identity attributes over nuisance ones, "
          "1 = perfect separation):", "",
          "| model | " + " | ".join(st.MEASURES) + " | top 8 by sensitivity |",
          "|---|" + "---|" * (len(st.MEASURES) + 1)]
    for label, entry in record["models"].items():
        sens = entry["sensitivity"]
        top = ", ".join(sorted(sens, key=lambda n: -sens[n])[:8])
        md.append(f"| {label} | " + " | ".join(
            f"{entry['significance_auc'][m]:.3f}" for m in st.MEASURES) + f" | {top} |")
    encoded = {k: e["encoding"] for k, e in record["models"].items() if "encoding" in e}
    if encoded:
        md += ["", "What the trained models encode (world of seed 0, test identities; "
               "`recogniser_content.encoding_row`): recognition in grey scale, mean "
               "held-out probe R2 of the six shape coefficients and of the colours:", "",
               "| model | TAR@1e-2 | grey TAR@1e-2 | mean shape R2 | mean colour R2 | "
               "shape R2 each |", "|---|---|---|---|---|---|"]
        for label, e in encoded.items():
            md.append(f"| {label} | {e['all']['tar_at_far_0.01']:.3f} | "
                      f"{e['grey']['tar_at_far_0.01']:.3f} | {e['mean shape R2']:.3f} | "
                      f"{e['mean colour R2']:.3f} | " + ", ".join(
                          f"{n} {e['probe_r2'][n]:.2f}" for n in st.SHAPE_ATTRIBUTES) + " |")
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "report.md"), "\n".join(md) + "\n")
    atomic_save_text(os.path.join(a.out, "report.json"),
                     json.dumps(json_safe(record), indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()

"""Do the significance measures rank identity attributes above nuisance ones?

    python experiments/significance_truth.py --out experiments/results/significance_truth

For the shipped reference models (base, SAD only, full, and the full model
trained with colour jitter; `interp_fr.reference_models.shipped`) and untrained
controls (same architecture, three initialisations), on the test images of the
synthetic world of ``--world_seed`` (subjects none of the models saw), computes
each significance measure of `attr_recovery.analysis.significance_truth` with the
world's exact attributes and the AUC with which its ranking separates the
identity attributes from the nuisance ones; then the main job's measure: the
sensitivity ranking of the shipped estimators' readings of ``--faces`` of those
images (`attribute_significance.compute_significance`, noise floor and
unreadable attributes included), its AUC over the readouts
(`significance_truth.readout_auc`) and the attributes above the floor.
Writes ``auc.md`` and ``auc.json`` (with every attribute's value per measure
and model).
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
                                                 "significance_truth"))
    p.add_argument("--world_seed", type=int, default=1)
    p.add_argument("--controls", type=int, default=3)
    p.add_argument("--faces", type=int, default=400, help="faces for the ranking on "
                   "estimated attributes")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    import keras
    from attr_recovery.analysis import attribute_significance as sig
    from attr_recovery.analysis import significance_truth as st
    from attr_recovery.readers.recognition import as_recognition_model
    from attr_recovery.shipped import reference_estimators
    from attr_recovery.trainers import attribute_data
    from interp_fr.data.image_scaling import to_unit_range
    from interp_fr import features, reference_models
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.data import dat_files, synthetic_world
    from interp_fr.model import InterpFRNet
    t0 = time.perf_counter()
    world = os.path.join(a.out, "work", f"world_seed{a.world_seed}")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=a.world_seed))
    attrs = dict(np.load(os.path.join(world, "attributes", "ijba_attributes.npz")))
    test = dat_files.open_ijba_images(os.path.join(world, "DATA"))
    models = {}
    for label, (name, folder) in reference_models.shipped().items():
        models[f"{label} (reference)"] = reference_models.load_reference_model(
            name, folder)[0]
    full = models.get("full (reference)")
    for k in range(a.controls):
        keras.utils.set_random_seed(k)
        cfg = full.get_config() if full is not None else dict(
            df_dim=8, gfc_dim=64, dfc_dim=64, n_subjects=300, variant="full")
        models[f"untrained, init {k}"] = InterpFRNet(
            **{x: cfg[x] for x in ("df_dim", "gfc_dim", "dfc_dim", "n_subjects",
                                    "variant")})
    results, estimated = {}, {}
    for name, model in models.items():
        z = features.extract_features(features.keras_forward(model), test).features
        results[name] = st.check_against_truth(z, attrs, attrs["subject"])
        print(name, {k: round(v, 3) for k, v in results[name]["auc"].items()},
              flush=True)
    if reference_estimators.available():
        reader, _ = reference_estimators.load_reference_reader()
        held = attribute_data.world_split(world, "test").evenly_spaced(a.faces)
        x = to_unit_range(held.read(np.arange(len(held))))
        for name, model in models.items():
            res = sig.compute_significance(as_recognition_model(model), None, reader, x,
                                           truth=dict(held.targets),
                                           subjects=held.subjects)
            estimated[name] = {
                "auc": st.readout_auc(res), "ranking": list(res["names"]),
                "above_floor": [n for n in res["names"]
                                if res["attributes"][n]["above_noise"]],
                "unreadable": res["unreadable"],
                "sensitivity": {n: m["sensitivity"]
                                for n, m in res["attributes"].items()}}
            print(name, "estimated:", round(estimated[name]["auc"], 3),
                  estimated[name]["above_floor"], flush=True)
    meta = {"command": provenance.command_line("experiments/significance_truth.py", argv),
            "machine": provenance.machine_description(),
            "seconds": time.perf_counter() - t0, "world_seed": a.world_seed,
            "identity_attributes": list(st.IDENTITY_ATTRIBUTES),
            "nuisance_attributes": list(st.NUISANCE_ATTRIBUTES)}
    md = ["# Significance rankings against the world's truth", "",
          f"Command: `{meta['command']}`; machine: {meta['machine']}; "
          f"{meta['seconds']:.0f} s. Test images of the world of seed {a.world_seed}.",
          "", "AUC of identity attributes over nuisance attributes (1 = every "
          "identity attribute ranked above every nuisance one; 0.5 = no separation):",
          "", "| model | " + " | ".join(st.MEASURES) + " | top 8 by sensitivity |",
          "|---|" + "---|" * (len(st.MEASURES) + 1)]
    for name, r in results.items():
        sens = r["measures"]["sensitivity"]
        top = ", ".join(sorted(sens, key=lambda n: -sens[n])[:8])
        md.append(f"| {name} | " + " | ".join(f"{r['auc'][m]:.3f}" for m in st.MEASURES)
                  + f" | {top} |")
    if estimated:
        md += ["", f"The main job's measure: sensitivity of the shipped estimators' "
               f"readings of {a.faces} of these faces (attributes whose estimate explains "
               "< 50 % of the exact value left out), AUC of identity over nuisance "
               "readouts, attributes above the family-wise noise floor:", "",
               "| model | AUC | above the floor | top 6 |", "|---|---|---|---|"]
        for name, e in estimated.items():
            md.append(f"| {name} | {e['auc']:.3f} | {', '.join(e['above_floor']) or '-'}"
                      f" | {', '.join(e['ranking'][:6])} |")
    os.makedirs(a.out, exist_ok=True)
    atomic_save_text(os.path.join(a.out, "auc.md"), "\n".join(md) + "\n")
    atomic_save_text(os.path.join(a.out, "auc.json"), json.dumps(
        {"meta": meta, "results": results, "estimated": estimated}, indent=1,
        default=float))
    print("\n".join(md))


if __name__ == "__main__":
    main()

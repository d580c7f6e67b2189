"""What each shipped decoder shows: the attributes a person can read off the decoded faces.

    python experiments/decoder_content.py --work /tmp/decoder_content \\
        --out experiments/results/decoder_content

For every recogniser a decoder is shipped for (`reference_decoder.DECODERS`:
the reference full model, which recognises the synthetic world by colour, and
the full model trained with colour jitter, which carries face shape), on
``--faces`` test images of the world of ``--world_seed`` (subjects neither R nor
the decoder saw), with the shipped estimators as the reader
(`attribute_significance.compute_significance`):

- recoverability: r between the estimate on the decoded face E(D(R(x))) and on
  the input E(x), and between E(D(R(x))) and the world's exact value;
- counterfactual response: decode R(x) moved by +-1 unit along the
  attribute's partial-effect direction and read the decoded faces; the
  change in the attribute itself (per unit: 1 = the face changes as much as
  the representation says) and the largest change in any other measured
  attribute (what a counterfactual along it changes besides);
- whether the attribute is above the family-wise noise floor of the
  sensitivity ranking (what the main job's explanation may flip);
- colour beyond lightness: r between the chromaticity (r, g over r + g + b:
  lightness divided out) of the estimated skin and hair colour of the decoded
  face and of the input, for each decoder, and of the input's estimate against
  the exact colour (the reader's own ceiling). A decoder whose R ignores hue
  draws plausible colours of the right lightness: r about 0 here.

Writes ``content.md`` / ``content.json`` and ``faces.png`` (rows: input, each
decoder's face, the identity's canonical portrait).
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

GRID_FACES = 8
COUNTERFACTUAL_FACES = 32
CHROMATICITY = tuple(f"{part} {c}" for part in ("skin", "hair") for c in ("r", "g"))


def chromaticity(colours):
    """name -> [N] chromaticity coordinates (``CHROMATICITY``) of a dict with
    ``skin_r/g/b`` and ``hair_r/g/b`` arrays [N] (estimates or exact values)."""
    out = {}
    for part in ("skin", "hair"):
        rgb = np.stack([np.asarray(colours[f"{part}_{c}"], np.float64) for c in "rgb"], -1)
        rgb = np.clip(rgb, 1e-3, None)
        total = rgb.sum(-1)
        out[f"{part} r"], out[f"{part} g"] = rgb[:, 0] / total, rgb[:, 1] / total
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="working folder (the world)")
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "results",
                                                 "decoder_content"))
    p.add_argument("--world_seed", type=int, default=1)
    p.add_argument("--faces", type=int, default=400)
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    from attr_recovery.analysis import attribute_significance as sig
    from attr_recovery.analysis import significance_truth as st
    from attr_recovery.readers.recognition import load_recognition_model
    from attr_recovery.shipped import reference_decoder, reference_estimators
    from attr_recovery.stages import decoding_stage
    from attr_recovery.trainers import attribute_data
    from interp_fr.common.atomic_io import atomic_save_text
    from interp_fr.common.json_safe import json_safe
    from interp_fr.data import synthetic_world
    from interp_fr.data.image_scaling import to_unit_range
    t0 = time.perf_counter()
    world = os.path.join(a.work, f"world_seed{a.world_seed}")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=a.world_seed))
    reader, _ = reference_estimators.load_reference_reader()
    held = attribute_data.world_split(world, "test").evenly_spaced(a.faces)
    x = to_unit_range(held.read(np.arange(len(held))))
    grid_pick = np.linspace(0, len(x) - 1, GRID_FACES).round().astype(int)
    decoded = []
    results = {}
    seen = chromaticity(reader(x))
    truth = chromaticity(held.targets)
    colour_r = {"input vs exact": {n: sig.pearson(seen[n], truth[n]) for n in CHROMATICITY}}
    for spec in sorted(reference_decoder.DECODERS, key=lambda s: s != "reference:full"):
        recognition = load_recognition_model(spec)
        decoder, _ = reference_decoder.load_reference_decoder(recognition=spec)
        decode = sig.as_decoder(decoder)
        z = sig.representations(recognition, x)
        res = sig.compute_significance(recognition, decoder, reader, x, features=z,
                                       truth=dict(held.targets), subjects=held.subjects)
        cal = np.linspace(0, len(z) - 1, min(COUNTERFACTUAL_FACES, len(z))).round().astype(int)
        unit_sizes = dict(zip(res["names"], res["units"]))
        responses = {name: sig.decoded_responses(reader, decode, z[cal], direction,
                                                 unit_sizes)
                     for name, direction in zip(res["names"], res["directions"])}
        table = {}
        for name in res["names"]:
            m = res["attributes"][name]
            others = {k: v for k, v in responses[name].items() if k != name}
            worst = max(others, key=lambda k: abs(others[k])) if others else None
            table[name] = dict(
                group=m["group"], above_noise=m["above_noise"], sensitivity=m["sensitivity"],
                recoverability=m.get("recoverability"),
                decoded_vs_truth_r=m.get("decoded_vs_truth_r"),
                response=responses[name][name],
                largest_other=worst, largest_other_response=others.get(worst))
        shown = chromaticity(reader(decode(z)))
        colour_r[spec] = {n: sig.pearson(shown[n], seen[n]) for n in CHROMATICITY}
        results[spec] = dict(attributes=table, unreadable=res["unreadable"],
                             readout_auc=st.readout_auc(res))
        decoded.append(decode(z[grid_pick]))
        print(spec, "done", round(time.perf_counter() - t0), "s", flush=True)
    os.makedirs(a.out, exist_ok=True)
    # The portraits are indexed by the test split's own subject numbers.
    test_subjects = np.load(os.path.join(world, synthetic_world.ATTR_DIR,
                                         "ijba_attributes.npz"))["subject"]
    decoding_stage.decoded_grid(
        os.path.join(a.out, "faces.png"), held.read(grid_pick), decoded,
        decoding_stage.world_portraits(world, "test",
                                       test_subjects[held.rows[grid_pick]]))
    record = dict(results=results, chromaticity_r=colour_r,
                  command=provenance.command_line("experiments/decoder_content.py", argv),
                  machine=provenance.machine_description(),
                  seconds=time.perf_counter() - t0, world_seed=a.world_seed,
                  faces=len(x))
    atomic_save_text(os.path.join(a.out, "content.json"),
                     json.dumps(json_safe(record), indent=1))
    atomic_save_text(os.path.join(a.out, "content.md"), markdown(record))
    print(markdown(record))


def _f(v, fmt="+.2f"):
    return "-" if v is None or not np.isfinite(v) else format(v, fmt)


def markdown(record):
    """content.md of a `main` record."""
    specs = list(record["results"])
    lines = [f"# What the shipped decoders show (world of seed {record['world_seed']}, "
             f"{record['faces']} test faces)", "",
             f"Command: `{record['command']}`; machine: {record['machine']}; "
             f"{record['seconds']:.0f} s.", "",
             "Per attribute and recogniser R (its decoder D, the shipped estimators E): "
             "`r in` = r(E(D(R(x))), E(x)); `r true` = r(E(D(R(x))), exact value); "
             "`resp` = change E reads on faces decoded from R(x) +- 1 unit along the "
             "attribute's partial-effect direction, per unit (1: the face changes as "
             "much as R's representation does); `other` = the largest change, per "
             "unit, of any other attribute on those faces; * = above the "
             "noise floor of the sensitivity ranking.", "",
             "![faces](faces.png)", "",
             "Rows: input, " + ", ".join(f"decoded for {s}" for s in specs)
             + ", canonical portrait.", ""]
    header = "| attribute | " + " | ".join(
        f"{s}: r in / r true / resp / other" for s in specs) + " |"
    lines += [header, "|---|" + "---|" * len(specs)]
    names = []
    for s in specs:
        names += [n for n in record["results"][s]["attributes"] if n not in names]
    for n in names:
        cells = []
        for s in specs:
            m = record["results"][s]["attributes"].get(n)
            if m is None:
                cells.append("-")
                continue
            star = "*" if m["above_noise"] else ""
            other = (f"{_f(m['largest_other_response'])} ({m['largest_other']})"
                     if m["largest_other"] else "-")
            cells.append(f"{_f(m['recoverability'], '.2f')}{star} / "
                         f"{_f(m['decoded_vs_truth_r'], '.2f')} / "
                         f"{_f(m['response'])} / {other}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Ranking AUC (identity over nuisance readouts): " + ", ".join(
        f"{s} {record['results'][s]['readout_auc']:.3f}" for s in specs), ""]
    colour = record.get("chromaticity_r")
    if colour:
        lines += ["Colour beyond lightness: r of the chromaticity (r or g over r + g + b) "
                  "of the estimated skin and hair colour, decoded face vs input (first "
                  "row: the input's estimate vs the exact colour, the reader's ceiling):",
                  "", "| | " + " | ".join(CHROMATICITY) + " |",
                  "|---|" + "---|" * len(CHROMATICITY)]
        for row, values in colour.items():
            lines.append(f"| {row} | " + " | ".join(_f(values[n], ".2f")
                                                    for n in CHROMATICITY) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Trains the legible 64 px reference decoder for the reference full model (issue 15).

    python experiments/train_reference_decoder.py --work /tmp/refdec \\
        --out experiments/results/reference_decoder [--export]

Stage 1 (resumable: run the same command again): 2 images each of
``--identities`` fresh synthetic identities, paired with their canonical
portraits (``interp_fr.data.canonical_pairs``), train the ``legible64`` decoder
(``attr_recovery.trainers.training``, joint mode) for the shipped reference ``full``
model (``--recognition reference:colour_jitter/full``: the full model trained
with colour jitter, whose decoder is shipped in a folder of its own). Stage 2:
the decoder's figures on the world of seed 0
(``attr_recovery.stages.decoding_stage.evaluate_decoder``: reconstruction attack on seen
and unseen subjects, SSIM / PSNR against the input and the canonical
portrait, cosines, grids), written as ``report.md`` / ``report.json`` to
``--out``; with ``--export`` the decoder goes to
``attr_recovery/reference_weights/<reference_decoder.DECODERS[--recognition]>``
(decoder.json with the figures and this command, one model-only checkpoint).
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

from attr_recovery.stages import decoding_stage  # noqa: E402
from attr_recovery.shipped import reference_decoder
from attr_recovery.trainers import training
from attr_recovery.readers.recognition import load_recognition_model  # noqa: E402
from interp_fr.common.atomic_io import atomic_save_text  # noqa: E402
from interp_fr.data import canonical_pairs, synthetic_world  # noqa: E402
from interp_fr.common.json_safe import json_safe  # noqa: E402


def report_markdown(record):
    """The results folder's report.md."""
    f = record["figures"]
    lines = [f"# Legible reference decoder (64 px) for {record['config']['recognition']}", "",
             f"Command: `{record['command']}`; machine: {record['machine']}; "
             f"{record['steps']} steps; training {record['train_seconds_total']:.0f} s "
             f"over all calls (to the last logged step); this call "
             f"{record['seconds_this_call']:.0f} s.", "",
             "Reconstruction attack (R's threshold set on real genuine / impostor pairs "
             "of the same images; type I: decoded face vs its own input, type II: vs "
             "the subject's other images):", "",
             decoding_stage.attack_table_markdown(f)]
    lines += ["", "Identity figures (one image per subject): "
              f"matched cosine {f['matched cosine']:.3f}, random pair "
              f"{f['random-pair cosine']:.3f}, rank-1 decoded -> input "
              f"{f['rank-1 decoded -> input']:.3f}; unseen subjects: matched "
              f"{f.get('unseen subjects: matched cosine', float('nan')):.3f}, rank-1 "
              f"{f.get('unseen subjects: rank-1 decoded -> input', float('nan')):.3f}.", "",
              "Rows of each grid: input, decoded (64 px shown at 96), canonical portrait "
              "of the identity (what a representation blind to pose, expression, light "
              "and occluders can determine).", "",
              "Training subjects of the world (R has seen them; the decoder has not):", "",
              f"![seen]({os.path.basename(f['grid'])})", "",
              "Test subjects (neither R nor the decoder has seen them):", ""]
    if "grid, unseen subjects" in f:
        lines.append(f"![unseen]({os.path.basename(f['grid, unseen subjects'])})")
    lines += ["", f"Eigen-features: ![eigen]({os.path.basename(f['eigen features'])})", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True, help="working folder (world, pairs, training)")
    p.add_argument("--out", required=True, help="results folder (report.md / .json, PNGs)")
    p.add_argument("--identities", type=int, default=10000)
    p.add_argument("--images_per_identity", type=int, default=2)
    p.add_argument("--max_steps", type=int, default=16000)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--w_id", type=float, default=0.2)
    p.add_argument("--identity_every", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recognition", default=reference_decoder.RECOGNITION,
                   choices=sorted(reference_decoder.DECODERS),
                   help="the shipped recogniser the decoder inverts")
    p.add_argument("--export", action="store_true",
                   help="write the decoder to attr_recovery/reference_weights")
    args = p.parse_args()
    t_start = time.perf_counter()
    os.makedirs(args.work, exist_ok=True)
    world = os.path.join(args.work, "world")
    if not os.path.isfile(os.path.join(world, "world.json")):
        synthetic_world.build_world(world, synthetic_world.WorldConfig(seed=args.seed))
    pairs = os.path.join(args.work, "pairs")
    inputs = os.path.join(pairs, canonical_pairs.INPUT_DIR)
    targets = os.path.join(pairs, canonical_pairs.TARGET_DIR)
    if not os.path.isdir(targets):
        canonical_pairs.build_canonical_pairs(pairs, args.identities,
                                              args.images_per_identity, seed=args.seed)
    recognition = load_recognition_model(args.recognition)
    config = training.DecoderTrainConfig(
        # One folder per recogniser: a run for another must not resume this one.
        data_dir=inputs, target_dir=targets,
        out_dir=os.path.join(args.work, reference_decoder.DECODERS[args.recognition]),
        recognition=args.recognition, batch_size=args.batch_size,
        max_steps=args.max_steps, seed=args.seed, w_id=args.w_id,
        identity_every=args.identity_every, save_every_steps=500, log_every=250,
        progress=False, tensorboard=False, **training.PRESETS["legible64"])
    trainer = training.DecoderTrainer(config, recognition)
    t0 = time.perf_counter()
    trainer.fit()
    train_seconds = time.perf_counter() - t0

    figures = decoding_stage.evaluate_decoder(trainer.decoder, recognition, world, args.out,
                                          seed=args.seed, attack_images=256)
    figures["check"] = reference_decoder.check_figures(trainer.decoder, recognition, world,
                                                       seed=args.seed)
    command = "python " + " ".join(sys.argv)
    # Training time over every call (a resumed run's log holds each call's
    # elapsed seconds; they restart from 0 on resume).
    with open(os.path.join(config.out_dir, training.LOG_FILE), encoding="utf-8") as f:
        seconds = [json.loads(line)["seconds"] for line in f if line.strip()]
    total = sum(a for a, b in zip(seconds, seconds[1:] + [0.0]) if b < a)
    record = dict(figures=figures, steps=int(trainer.step.numpy()),
                  train_seconds_this_call=train_seconds, train_seconds_total=total,
                  seconds_this_call=time.perf_counter() - t_start,
                  command=command, machine=provenance.machine_description(),
                  config={k: v for k, v in vars(args).items()})
    os.makedirs(args.out, exist_ok=True)
    atomic_save_text(os.path.join(args.out, "report.json"),
                     json.dumps(json_safe(record), indent=1))
    atomic_save_text(os.path.join(args.out, "report.md"),
                     report_markdown(record))
    if args.export:
        written = reference_decoder.export_reference_decoder(
            trainer.decoder, config, recorded=figures,
            provenance=dict(command=command, steps=record["steps"],
                            identities=args.identities, seed=args.seed),
            recognition=args.recognition)
        print("exported:", *written, sep="\n  ")
    print(open(os.path.join(args.out, "report.md"), encoding="utf-8").read())


if __name__ == "__main__":
    main()

"""The shipped reference decoder (not in the original code, which publishes no training).

``attr_recovery/reference_weights/<DECODERS[spec]>/`` holds a 64 px decoder
(``training.PRESETS["legible64"]``) trained by
``experiments/train_reference_decoder.py --recognition SPEC --export`` for a
shipped recogniser (``interp_fr.reference_models``): ``decoder_full64`` for the
reference ``full`` InterpFRNet, ``decoder_colour_jitter_full64`` for the full
model trained with colour jitter, ``decoder_mobilefacenet64`` for the shipped
MobileFaceNet (``reference_recognisers``); each on canonical-portrait
pairs of fresh synthetic identities (``interp_fr.data.canonical_pairs``). Its
``decoder.json`` records the figures measured when it was made and the
command. The folder is an ordinary trainer folder: `decoder.load_trained_decoder`
reads it. It exists because a legible decoder needs far more CPU time than the
main job has (BUILD_NOTES.md, "Legible decoding").
"""
import dataclasses
import json
import os

from attr_recovery.nets import decoder as decoder_lib
from attr_recovery.shipped import shipped_files
from interp_fr.common.atomic_io import atomic_save_text

# attr_recovery/reference_weights/, beside this package.
REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "reference_weights")
# A decoder inverts one recogniser: the recogniser's spec
# (`readers.recognition.load_recognition_model`) -> the shipped decoder's folder.
DECODERS = {"reference:full": "decoder_full64",
            "reference:colour_jitter/full": "decoder_colour_jitter_full64",
            "reference:mobilefacenet": "decoder_mobilefacenet64"}
RECOGNITION = "reference:full"
DECODER_NAME = DECODERS[RECOGNITION]


def reference_decoder_dir(folder=REFERENCE_DIR, recognition=RECOGNITION):
    """Folder of the decoder shipped for ``recognition`` (may be absent)."""
    if recognition not in DECODERS:
        raise ValueError(f"no reference decoder is made for {recognition!r}; "
                         f"choose from {sorted(DECODERS)}")
    return os.path.join(folder, DECODERS[recognition])


def available(folder=REFERENCE_DIR, recognition=RECOGNITION):
    """Whether the decoder for ``recognition`` is present (description and checkpoint)."""
    return shipped_files.present(reference_decoder_dir(folder, recognition),
                                 decoder_lib.CONFIG_FILE)


def export_reference_decoder(decoder, config, recorded, provenance, folder=REFERENCE_DIR,
                             recognition=RECOGNITION):
    """Writes ``decoder`` (model variables only) with its description.

    Args:
      decoder: trained `decoder.FeatureDecoder`.
      config: the `training.DecoderTrainConfig` it was trained with.
      recorded: figures measured on it (JSON-safe dict).
      provenance: dict (command, steps, seed, ...).
      folder: the reference-weights folder.
      recognition: the spec of the recogniser it inverts (a key of `DECODERS`).
    Returns: list of the files written.
    """
    out = reference_decoder_dir(folder, recognition)
    written = shipped_files.write_checkpoint(out, model=decoder.variables_for_checkpoint())
    train = dataclasses.asdict(config)
    train["channels"] = {str(k): v for k, v in (config.channels or {}).items()}
    desc = decoder_lib.decoder_description(
        decoder, recognition, "full",
        extra={"name": DECODERS[recognition], "train_config": train, "recorded": recorded,
               "provenance": provenance})
    path = os.path.join(out, decoder_lib.CONFIG_FILE)
    atomic_save_text(path, json.dumps(desc, indent=1, default=str))
    return written + [path]


def load_reference_decoder(folder=REFERENCE_DIR, recognition=RECOGNITION):
    """(`decoder.FeatureDecoder`, description dict) of the decoder shipped for
    ``recognition``."""
    decoder, description, _ = decoder_lib.load_trained_decoder(
        reference_decoder_dir(folder, recognition))
    return decoder, description


CHECK_IMAGES = 128


def check_figures(decoder, recognition, world_dir, seed=0):
    """The figures a test re-measures on a decoder: the reconstruction attack
    (with SSIM / PSNR against input and portrait) on the first `CHECK_IMAGES`
    test images of a synthetic world (subjects neither R nor the decoder saw)."""
    from attr_recovery.analysis import attack_metrics
    from attr_recovery.stages import decoding_stage
    from interp_fr.data import synthetic_world
    images, subjects = decoding_stage.unseen_test_images(
        world_dir, os.path.join(world_dir, synthetic_world.DATA_DIR), CHECK_IMAGES)
    return attack_metrics.attack_figures(
        decoder, recognition, images, subjects, seed=seed,
        portraits=decoding_stage.world_portraits(world_dir, "test", subjects))

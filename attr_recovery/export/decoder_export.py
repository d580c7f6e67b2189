"""Export of the decoding chain (representation -> face image): SavedModel,
LiteRT and ONNX (not in the original code, which has no export).

Every format has one signature, ``serving_default``:

    input   representation  float32 [N, d]   the face representation z
                                              (as the decoder takes it: the
                                              original does not renormalise)
    output  image           float32 [N, S, S, 3], RGB in about [-1, 1]
                                              ((x + 1) / 2 * 255 for 8 bits)

The generator's noise inputs are its stored constant noise maps
(``decode(..., noise_mode="const")``), so an exported decoder is
deterministic; ``N`` is dynamic. The SavedModel route freezes the variables
for LiteRT (the route `interp_fr.export.litert` takes, for the same
reason); ONNX converts the same function with tf2onnx (extra ``onnx``).
"""
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf


SIGNATURE_KEY = "serving_default"
INPUT_KEY = "representation"
OUTPUT_KEY = "image"


class _DecoderServing(tf.Module):
    """The decoder's variables and its serving function."""

    def __init__(self, decoder):
        super().__init__(name="decoder_serving")
        self._transformer = decoder.transformer
        self._generator = decoder.generator
        self._variables = [v.value if hasattr(v, "value") else v
                           for v in decoder.variables_for_checkpoint().values()]
        spec = tf.TensorSpec([None, decoder.feature_dim], tf.float32, name=INPUT_KEY)
        self.serve = tf.function(self._serve, input_signature=[spec], autograph=False)

    def _serve(self, representation):
        g = self._generator
        noise = [tf.convert_to_tensor(n, tf.float32) for n in g.noises]
        return {OUTPUT_KEY: g(self._transformer(representation), noise=noise)}


def export_decoder_saved_model(decoder, directory):
    """Writes ``decoder`` (`decoder.FeatureDecoder`) as a SavedModel folder; returns it."""
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    module = _DecoderServing(decoder)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".",
                           dir=os.path.dirname(directory))
    try:
        tf.saved_model.save(module, tmp,
                            signatures={SIGNATURE_KEY: module.serve.get_concrete_function()})
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def export_decoder_litert(decoder, path):
    """Writes ``decoder`` as a ``.tflite`` file (builtin operators only); returns ``path``."""
    if not os.fspath(path).endswith(".tflite"):
        raise ValueError(f"{path}: the file must end in .tflite")
    from interp_fr.export.litert import write_litert
    return write_litert(lambda folder: export_decoder_saved_model(decoder, folder),
                        os.fspath(path), SIGNATURE_KEY)


def export_decoder_onnx(decoder, path, opset=17):
    """Writes ``decoder`` as an ``.onnx`` file (extra ``onnx``); returns ``path``."""
    if not os.fspath(path).endswith(".onnx"):
        raise ValueError(f"{path}: the file must end in .onnx")
    from interp_fr.export.onnx_export import write_onnx_function
    return write_onnx_function(_DecoderServing(decoder).serve, os.fspath(path), opset)


def reference_images(decoder, z):
    """What every export must reproduce: ``decoder.decode(z, noise_mode="const")``."""
    return decoder.decode(np.asarray(z, np.float32), noise_mode="const")


FORMATS = {"saved_model": export_decoder_saved_model, "litert": export_decoder_litert,
           "onnx": export_decoder_onnx}


def export_trained_decoder(decoder_dir, output, fmt=None):
    """Exports the decoder of a trainer folder (or the shipped one's) to ``output``.

    Args:
      decoder_dir: a decoder trainer folder (``decoder.json`` + checkpoints).
      output: ``.tflite`` / ``.onnx`` file or SavedModel folder.
      fmt: one of `FORMATS`; None: from ``output``'s suffix (a folder otherwise).
    Returns: (format, ``output``).
    """
    from attr_recovery.nets.decoder import load_trained_decoder
    if fmt is None:
        fmt = {".tflite": "litert", ".onnx": "onnx"}.get(
            os.path.splitext(os.fspath(output))[1], "saved_model")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    decoder, _, _ = load_trained_decoder(decoder_dir)
    return fmt, FORMATS[fmt](decoder, output)

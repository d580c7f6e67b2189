"""Library entry points of the freeze / export commands.

* `freeze_checkpoint`: any saved model -> frozen GraphDef with the original's
  names (``pretrained_model.pb`` beside the checkpoint by default);
* `export_checkpoint_saved_model`: any saved model -> SavedModel folder;
* `export_checkpoint_litert` / `export_checkpoint_onnx`: -> ``.tflite`` / ``.onnx``;
* `frozen_graph_to_keras`: a frozen GraphDef -> Keras weights and / or a TF1
  checkpoint.
"""
import dataclasses
import os

from interp_fr import model_loading, tf1_checkpoint
from interp_fr.weights_files import save_weights_with_config
from interp_fr.export import frozen_graph, saved_model

DEFAULT_SAVED_MODEL_DIR = "saved_model"
DEFAULT_LITERT_FILE = "model.tflite"
DEFAULT_ONNX_FILE = "model.onnx"


@dataclasses.dataclass
class ExportResult:
    """What was read and written.

    Attributes:
        kind: the kind of the source (``model_loading.KINDS``).
        source: the file / folder / checkpoint prefix read.
        output: the path written.
        num_nodes: nodes of a written GraphDef (None for a SavedModel).
        model: the ``InterpFRNet`` that was exported.
    """
    kind: str
    source: str
    output: str
    num_nodes: int = None
    model: object = None


def freeze_checkpoint(model_path, output=None, fixed_batch=None,
                      with_logits=False, **overrides):
    """Freezes the model stored at ``model_path`` (any kind
    ``model_loading.load_keras_model`` reads).

    Args:
        model_path: training run folder, TF1 checkpoint folder / prefix,
            ``.weights.h5``, SavedModel folder (ours) or frozen ``.pb``.
        output: the ``.pb`` to write; default ``pretrained_model.pb`` in
            ``model_loading.default_output_dir(model_path)``.
        fixed_batch: None (dynamic) or the input batch size.
        with_logits: also keep the classifier (output ``logits``).
        **overrides: dims / variant, see ``load_keras_model``.

    Returns:
        `ExportResult`.
    """
    model, kind, source = model_loading.load_keras_model(model_path, **overrides)
    if output is None:
        output = os.path.join(model_loading.default_output_dir(model_path),
                              frozen_graph.DEFAULT_OUTPUT_FILE)
    graph_def = frozen_graph.freeze_model(model, output, fixed_batch=fixed_batch,
                                          with_logits=with_logits)
    return ExportResult(kind, source, output, len(graph_def.node), model)


def export_checkpoint_saved_model(model_path, output=None, fixed_batch=None,
                                  **overrides):
    """Exports the model stored at ``model_path`` as a SavedModel.

    Args:
        model_path: as for `freeze_checkpoint`.
        output: folder; default ``saved_model/`` in
            ``model_loading.default_output_dir(model_path)``.
        fixed_batch: None (dynamic) or the input batch size.

    Returns:
        `ExportResult`.
    """
    return _export(model_path, output, DEFAULT_SAVED_MODEL_DIR,
                   saved_model.export_saved_model, fixed_batch, overrides)


def export_checkpoint_litert(model_path, output=None, fixed_batch=None, **overrides):
    """Exports the model stored at ``model_path`` as a LiteRT ``.tflite`` file.

    Args:
        model_path: as for `freeze_checkpoint`.
        output: ``.tflite`` file; default ``model.tflite`` in
            ``model_loading.default_output_dir(model_path)``.
        fixed_batch: None (dynamic) or the input batch size.

    Returns:
        `ExportResult`.
    """
    from interp_fr.export import litert
    return _export(model_path, output, DEFAULT_LITERT_FILE, litert.export_litert,
                   fixed_batch, overrides)


def export_checkpoint_onnx(model_path, output=None, fixed_batch=None, **overrides):
    """Exports the model stored at ``model_path`` as an ``.onnx`` file (extra ``onnx``).

    Args:
        model_path: as for `freeze_checkpoint`.
        output: ``.onnx`` file; default ``model.onnx`` in
            ``model_loading.default_output_dir(model_path)``.
        fixed_batch: None (dynamic) or the input batch size.

    Returns:
        `ExportResult`.
    """
    from interp_fr.export import onnx_export
    return _export(model_path, output, DEFAULT_ONNX_FILE, onnx_export.export_onnx,
                   fixed_batch, overrides)


def _export(model_path, output, default_name, write, fixed_batch, overrides):
    """Loads the model at ``model_path`` and writes it with ``write(model, output,
    fixed_batch=...)``; ``output`` defaults to ``default_name`` beside it."""
    model, kind, source = model_loading.load_keras_model(model_path, **overrides)
    if output is None:
        output = os.path.join(model_loading.default_output_dir(model_path), default_name)
    write(model, output, fixed_batch=fixed_batch)
    return ExportResult(kind, source, output, None, model)


def frozen_graph_to_keras(pb_path, output=None, tf1_output=None,
                          n_subjects=None, variant=None):
    """Rebuilds a Keras model from a frozen graph's constants and saves it.

    Args:
        pb_path: frozen GraphDef (ours or the original's).
        output: ``.weights.h5`` to write, or None.
        tf1_output: TF1 checkpoint folder to write, or None.
        n_subjects, variant: see ``frozen_graph.model_from_frozen_graph``.

    Returns:
        (model, ``frozen_graph.FrozenLoadResult``, TF1 prefix or None).
    """
    model, result = frozen_graph.model_from_frozen_graph(
            pb_path, n_subjects=n_subjects, variant=variant)
    if output:
        save_weights_with_config(model, output,
                                 {"converted_from": os.path.abspath(pb_path)})
    prefix = None
    if tf1_output:
        prefix = tf1_checkpoint.save_tf1_checkpoint(model, tf1_output)
    return model, result, prefix

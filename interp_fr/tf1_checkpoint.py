"""Reading and writing the original's TF1 Saver checkpoints by TF1 name.

A TF1 checkpoint folder holds a ``checkpoint`` state file and
``DCGAN.model-<step>.index`` / ``.data-*``.  Besides the model variables
(``InterpFRNet.tf1_variable_map``) it holds the Adam state the original's
optimizer created: a slot pair ``<var>/Adam``, ``<var>/Adam_1`` per trainable
variable and ``beta1_power`` / ``beta2_power``.  These are recognised, not
loaded into the model, and handed back so a trainer can restore them.
"""
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from interp_fr.common import tf_logging
from interp_fr.common.errors import DataFileError, InputError
from interp_fr.model import (K5_CONV, K7_LINEAR, VARIANT_BASE, VARIANT_FULL,
                             InterpFRNet)

MODEL_FILE_PREFIX = "DCGAN.model"
ADAM_SLOT_SUFFIXES = ("/Adam", "/Adam_1")
ADAM_NON_SLOT_NAMES = ("beta1_power", "beta2_power")
SUBSET_ALL = "all"
# The original's saver_old: trainable variables without "new" in the name.
SUBSET_BASE = "base"
SUBSETS = (SUBSET_ALL, SUBSET_BASE)


class TF1CheckpointError(ValueError, InputError):
    """A TF1 checkpoint does not fit the model.

    Attributes:
        missing: model variable names absent from the checkpoint.
        unexpected: checkpoint model variables the model does not have.
        mismatched: (name, checkpoint shape, model shape) triples.
    """

    def __init__(self, checkpoint, missing, unexpected, mismatched, hints=()):
        self.checkpoint = checkpoint
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        lines = [f"TF1 checkpoint {checkpoint} does not match the model:"]
        if self.missing:
            lines.append(f"  missing from the checkpoint ({len(self.missing)}):")
            lines += [f"    {n}" for n in self.missing]
        if self.unexpected:
            lines.append("  unexpected in the checkpoint "
                         f"({len(self.unexpected)}):")
            lines += [f"    {n}" for n in self.unexpected]
        if self.mismatched:
            lines.append(f"  shape mismatch ({len(self.mismatched)}):")
            lines += [f"    {n}: checkpoint {list(c)} vs model {list(m)}"
                      for n, c, m in self.mismatched]
        lines += list(hints)
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class TF1LoadResult:
    """What ``load_tf1_checkpoint`` did.

    Attributes:
        checkpoint: the resolved checkpoint prefix.
        global_step: the ``-N`` suffix of the prefix, or None.
        loaded: TF1 names assigned into the model.
        skipped: checkpoint model variables deliberately not loaded (partial
            load).
        optimizer_state: Adam slots and beta powers, TF1 name -> array.
    """
    checkpoint: str
    global_step: object
    loaded: list
    skipped: list
    optimizer_state: dict


def is_optimizer_variable(name):
    """True for the Adam slots and beta powers of the original's optimizer."""
    return name in ADAM_NON_SLOT_NAMES or name.endswith(ADAM_SLOT_SUFFIXES)


def base_variable_names(model):
    """TF1 names the original restores from a pretrained base: trainable
    variables without ``new`` in the name (conv w/biases, BN beta/gamma)."""
    return [name for name, var in model.tf1_variable_map().items()
            if var.trainable and "new" not in name]


def resolve_checkpoint(path):
    """A checkpoint folder (latest entry of its ``checkpoint`` file) or a
    prefix such as ``.../DCGAN.model-7`` -> the prefix."""
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(
                    f"no TF1 checkpoint (no usable 'checkpoint' file) in {path}")
        return prefix
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no TF1 checkpoint at {path} "
                                f"({path}.index does not exist)")
    return path


def read_tf1_checkpoint(path):
    """Every tensor of a TF1 checkpoint: TF1 name -> numpy array."""
    reader = tf.train.load_checkpoint(resolve_checkpoint(path))
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()}


def config_from_shapes(shapes):
    """Model arguments implied by TF1-named variable shapes.

    Args:
        shapes: TF1 name -> shape (any iterable of ints).

    Returns:
        dict df_dim, gfc_dim, dfc_dim, n_subjects (None without classifier),
        variant ("full" with the hypercolumn layers, else "base").

    Raises:
        KeyError: the first or last base convolution is missing.
    """
    shapes = {k: tuple(int(s) for s in v) for k, v in shapes.items()}
    has_head = f"{K5_CONV}/w" in shapes
    matrix = shapes.get(f"{K7_LINEAR}/Matrix")
    gfc = shapes["d_k42_conv/w"][3]
    return {
        "df_dim": shapes["d_k01_conv/w"][3],
        "gfc_dim": gfc,
        "dfc_dim": shapes[f"{K5_CONV}/w"][3] if has_head else gfc,
        "n_subjects": matrix[1] if matrix is not None else None,
        "variant": VARIANT_FULL if has_head else VARIANT_BASE,
    }


def infer_model_config(path):
    """`config_from_shapes` of a TF1 checkpoint's variables ("hypercolumn_no_mask"
    has the same variables as "full" and cannot be told apart).

    Raises:
        TF1CheckpointError: the first or last base convolution is missing.
    """
    shapes = dict(tf.train.list_variables(resolve_checkpoint(path)))
    missing = [n for n in ("d_k01_conv/w", "d_k42_conv/w") if n not in shapes]
    if missing:
        raise TF1CheckpointError(path, missing, [], [])
    return config_from_shapes(shapes)


def _global_step(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else None


def _mismatch_hints(model, prefix, shapes, mismatched, missing, unexpected):
    hints = []
    classifier = f"{K7_LINEAR}/Matrix"
    for name, ckpt_shape, model_shape in mismatched:
        if name == classifier and ckpt_shape[0] == model_shape[0]:
            hints.append(
                    f"  the checkpoint's classifier has {ckpt_shape[1]} "
                    f"subjects but the model was built with n_subjects="
                    f"{model.n_subjects}; build it with "
                    f"n_subjects={ckpt_shape[1]} (or load only the base "
                    "variables)")
    if mismatched or missing or unexpected:
        try:
            config = infer_model_config(prefix)
        except TF1CheckpointError:
            config = None
        if config is not None:
            hints.append("  the checkpoint's shapes imply "
                         + ", ".join(f"{k}={v!r}" for k, v in config.items()))
    return hints


def load_tf1_checkpoint(model, path, subset=SUBSET_ALL):
    """Assigns a TF1 checkpoint's variables to an ``InterpFRNet`` by TF1 name.

    Nothing is assigned unless every requested variable is present with the
    right shape.

    Args:
        model: an ``InterpFRNet``.
        path: checkpoint folder or prefix.
        subset: "all" (every model variable, moving statistics included; no
            unknown model variables allowed in the checkpoint) or "base"
            (only the base CNN's trainable variables, like the original's
            restore of a pretrained base; everything else in the checkpoint
            is skipped and the model's other variables keep their values).

    Returns:
        ``TF1LoadResult``.

    Raises:
        TF1CheckpointError: listing every missing, unexpected and mis-shaped
            variable.
        FileNotFoundError: no checkpoint at ``path``.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    model_map = model.tf1_variable_map()
    wanted = (list(model_map) if subset == SUBSET_ALL
              else base_variable_names(model))

    ckpt_model_names = sorted(n for n in shapes if not is_optimizer_variable(n))
    missing = [n for n in wanted if n not in shapes]
    mismatched = [(n, tuple(shapes[n]), tuple(model_map[n].shape))
                  for n in wanted
                  if n in shapes and tuple(shapes[n]) != tuple(model_map[n].shape)]
    unexpected = ([n for n in ckpt_model_names if n not in model_map]
                  if subset == SUBSET_ALL else [])
    if missing or unexpected or mismatched:
        raise TF1CheckpointError(
                prefix, missing, unexpected, mismatched,
                _mismatch_hints(model, prefix, shapes, mismatched, missing,
                                unexpected))

    for name in wanted:
        var = model_map[name]
        var.assign(reader.get_tensor(name).astype(var.dtype))
    wanted_set = set(wanted)
    return TF1LoadResult(
            checkpoint=prefix,
            global_step=_global_step(prefix),
            loaded=list(wanted),
            skipped=[n for n in ckpt_model_names if n not in wanted_set],
            optimizer_state={n: reader.get_tensor(n) for n in sorted(shapes)
                             if is_optimizer_variable(n)})


def save_tf1_checkpoint(model, directory, global_step=None,
                        optimizer_state=None, model_name=MODEL_FILE_PREFIX):
    """Writes the model as a TF1 Saver checkpoint with the original's names.

    The variables are rebuilt as plain ``tf.compat.v1`` variables named by
    their TF1 names in a throw-away graph and written by a v1 ``Saver``, so
    the original's ``tf.train.Saver`` can restore the result; the folder gets
    the usual ``checkpoint`` state file.  No meta graph is written: it would
    describe that throw-away graph, not the original network.

    Args:
        model: an ``InterpFRNet``.
        directory: output folder (created).
        global_step: appended as ``-N`` to the file prefix when not None.
        optimizer_state: optional TF1 name -> array (Adam slots, beta
            powers, e.g. ``TF1LoadResult.optimizer_state``) written alongside.
        model_name: file prefix (the original's "DCGAN.model").

    Returns:
        the checkpoint prefix written.
    """
    values = {name: var.numpy() for name, var in model.tf1_variable_map().items()}
    for name, value in (optimizer_state or {}).items():
        if name in values:
            raise ValueError(f"optimizer state name {name!r} collides with a "
                             "model variable")
        values[name] = np.asarray(value)
    os.makedirs(directory, exist_ok=True)
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variables, feeds, assigns = {}, {}, []
        for name, value in values.items():
            var = v1.Variable(tf.zeros(value.shape, value.dtype), name=name,
                              trainable=False)
            placeholder = v1.placeholder(value.dtype, value.shape)
            assigns.append(var.assign(placeholder))
            variables[name] = var
            feeds[placeholder] = value
        saver = v1.train.Saver(var_list=variables, save_relative_paths=True,
                               max_to_keep=None)
        with v1.Session(graph=graph) as session:
            session.run(assigns, feeds)
            with tf_logging.quiet():
                return saver.save(session, os.path.join(directory, model_name),
                                  global_step=global_step, write_meta_graph=False)


def _check_weights_path(path):
    # Refused rather than renamed: the file is then where the user said, or
    # nowhere (Keras 3 itself refuses other names, after the slow part).
    if not path.endswith(".weights.h5"):
        raise DataFileError(path, "Keras weights files must end in '.weights.h5'; "
                            "nothing was written")


def convert_tf1_to_keras(tf1_checkpoint, keras_weights, **model_kwargs):
    """TF1 checkpoint -> Keras ``.weights.h5`` file of an ``InterpFRNet``.

    Args:
        tf1_checkpoint: checkpoint folder or prefix.
        keras_weights: output path ending in ``.weights.h5``.
        **model_kwargs: ``InterpFRNet`` arguments (df_dim, gfc_dim, dfc_dim,
            n_subjects, variant).

    Returns:
        ``TF1LoadResult`` (the optimizer state is not written).
    """
    _check_weights_path(keras_weights)
    model = InterpFRNet(**model_kwargs)
    result = load_tf1_checkpoint(model, tf1_checkpoint)
    # With its JSON description beside it, atomically (weights_files).
    from interp_fr.weights_files import save_weights_with_config
    save_weights_with_config(model, keras_weights,
                             {"converted_from": os.path.abspath(tf1_checkpoint)})
    return result


def convert_keras_to_tf1(keras_weights, tf1_directory, global_step=None,
                         **model_kwargs):
    """Keras ``.weights.h5`` file of an ``InterpFRNet`` -> TF1 checkpoint.

    Returns:
        the checkpoint prefix written.
    """
    _check_weights_path(keras_weights)
    model = InterpFRNet(**model_kwargs)
    model.load_weights(keras_weights)
    return save_tf1_checkpoint(model, tf1_directory, global_step=global_step)

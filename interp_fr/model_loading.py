"""Load a trained model from any of the formats this project reads or writes.

Kinds (`detect_model_kind` tells them apart):

* ``keras_weights``: our Keras ``.weights.h5`` file; dims are read off the
  weight shapes unless given;
* ``training_checkpoint``: a training run's folder (``<checkpoint_dir>/<model
  dir>``), its ``resume/`` subfolder or a ``resume/ckpt-N`` prefix (our
  tf.train.Checkpoint, variables keyed by TF1 name); a folder holding only the
  per-epoch TF1 saves is loaded as ``tf1_checkpoint``; a ``checkpoint_dir``
  with exactly one run folder inside is descended into;
* ``tf1_checkpoint``: a TF1 Saver checkpoint folder or ``DCGAN.model-N`` prefix;
* ``saved_model``: a SavedModel folder (ours, or any with a compatible
  signature);
* ``frozen_graph``: a binary GraphDef ``.pb`` (ours or the original's
  ``pretrained_model.pb``; input ``sample_input_images``, outputs
  ``Reshape_134`` and ``Mul_2`` unless told otherwise), or a folder holding
  exactly one ``.pb`` and no checkpoint (the original's ``models/``).

`load_forward` returns an inference callable for `extract` and the benches;
`load_keras_model` returns an ``InterpFRNet`` (every kind but a foreign
SavedModel), for freezing, exporting and converting.
"""
import dataclasses
import os

import tensorflow as tf

from interp_fr import features, tf1_checkpoint, weights_files
from interp_fr import precision as precision_lib
from interp_fr.common.errors import InputError
from interp_fr.model import VARIANT_BASE, VARIANTS, InterpFRNet
from interp_fr.export import frozen_graph, saved_model

KIND_KERAS_WEIGHTS = "keras_weights"
KIND_TRAINING_CHECKPOINT = "training_checkpoint"
KIND_TF1_CHECKPOINT = "tf1_checkpoint"
KIND_SAVED_MODEL = "saved_model"
KIND_FROZEN_GRAPH = "frozen_graph"
KINDS = (KIND_KERAS_WEIGHTS, KIND_TRAINING_CHECKPOINT, KIND_TF1_CHECKPOINT,
         KIND_SAVED_MODEL, KIND_FROZEN_GRAPH)

RESUME_SUBDIR = "resume"
_RESUME_KEY_PREFIX = "variables/"
_RESUME_KEY_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_DIM_NAMES = ("df_dim", "gfc_dim", "dfc_dim", "n_subjects")


class ModelLoadError(ValueError, InputError):
    """A model path cannot be recognised or does not fit the requested
    configuration; the message starts with the path."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass
class LoadedModel:
    """A model ready for inference.

    Attributes:
        kind: one of ``KINDS``.
        path: the resolved file, folder or checkpoint prefix that was read.
        forward: callable float32 images [b, 96, 96, 3] in [-1, 1] -> dict
            ``feature`` [b, D], ``feature_map`` [b, H, W, C] (numpy arrays or
            eager tensors).
        model: the ``InterpFRNet`` when the kind builds one, else None.
        fixed_batch: the input's fixed batch size (frozen graphs, SavedModels)
            or None; ``forward`` handles any batch either way.
        output_dir: where derived files go by default (the folder the user
            named, or the folder of a named file / prefix).
    """
    kind: str
    path: str
    forward: object
    model: object = None
    fixed_batch: int = None
    output_dir: str = None

    def describe(self):
        text = f"{self.kind} {self.path}"
        if self.model is not None:
            m = self.model
            text += (f" (df_dim={m.df_dim}, gfc_dim={m.gfc_dim}, dfc_dim="
                     f"{m.dfc_dim}, n_subjects={m.n_subjects}, variant={m.variant})")
        if self.fixed_batch:
            text += f", fixed input batch {self.fixed_batch}"
        return text


# ---------------------------------------------------------------- detection
def _checkpoint_keys(prefix):
    return dict(tf.train.list_variables(prefix))


def _is_resume_prefix(prefix):
    keys = _checkpoint_keys(prefix)
    return any(k.startswith(_RESUME_KEY_PREFIX) and k.endswith(_RESUME_KEY_SUFFIX)
               for k in keys)


def _latest(folder):
    try:
        return tf.train.latest_checkpoint(folder)
    except (tf.errors.OpError, ValueError):
        return None


def _run_folders(folder):
    """Sub-folders that hold a checkpoint (a TF1 save or resume/)."""
    out = []
    for name in sorted(os.listdir(folder)):
        sub = os.path.join(folder, name)
        if os.path.isdir(sub) and (_latest(sub) or _latest(
                os.path.join(sub, RESUME_SUBDIR))):
            out.append(sub)
    return out


def detect_model_kind(path):
    """Works out what ``path`` holds.

    Returns:
        (kind, resolved): ``resolved`` is the file, SavedModel folder or
        checkpoint prefix to read (the newest save of a folder).

    Raises:
        ModelLoadError: nothing loadable at ``path``, naming what was found.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        lower = path.lower()
        if lower.endswith(".h5") or lower.endswith(".keras"):
            if lower.endswith(".keras"):
                raise ModelLoadError(path, "a .keras model archive; save the "
                                     "weights with model.save_weights(... "
                                     "'.weights.h5') instead")
            return KIND_KERAS_WEIGHTS, path
        if os.path.basename(path) == saved_model.SAVED_MODEL_FILE and \
                saved_model.is_saved_model(os.path.dirname(path) or "."):
            return KIND_SAVED_MODEL, os.path.dirname(path) or "."
        if lower.endswith(".index") and os.path.isfile(path):
            return _prefix_kind(path[:-len(".index")])
        return KIND_FROZEN_GRAPH, path
    if os.path.isdir(path):
        if saved_model.is_saved_model(path):
            return KIND_SAVED_MODEL, path
        resume = _latest(os.path.join(path, RESUME_SUBDIR))
        if resume:
            return KIND_TRAINING_CHECKPOINT, resume
        latest = _latest(path)
        if latest:
            return _prefix_kind(latest)
        runs = _run_folders(path)
        if len(runs) == 1:
            return detect_model_kind(runs[0])
        if runs:
            raise ModelLoadError(path, "holds several training runs; pass one "
                                 "of: " + ", ".join(runs))
        # The original's models/ folder holds just pretrained_model.pb.
        graphs = [n for n in sorted(os.listdir(path)) if n.lower().endswith(".pb")
                  and os.path.isfile(os.path.join(path, n))]
        if len(graphs) == 1:
            return KIND_FROZEN_GRAPH, os.path.join(path, graphs[0])
        listing = sorted(os.listdir(path))[:10]
        raise ModelLoadError(path, "no model here: not a SavedModel (no "
                             "saved_model.pb), no 'checkpoint' file, no resume/ "
                             f"subfolder, not one .pb file; it contains {listing}")
    if os.path.isfile(path + ".index"):
        return _prefix_kind(path)
    raise ModelLoadError(path, "no such file, folder or checkpoint prefix")


def _prefix_kind(prefix):
    if _is_resume_prefix(prefix):
        return KIND_TRAINING_CHECKPOINT, prefix
    return KIND_TF1_CHECKPOINT, prefix


def default_output_dir(path):
    """Folder for derived files: a named folder itself (after descending a
    checkpoint_dir with one run), else the folder of the file or prefix."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if (not saved_model.is_saved_model(path) and not _latest(path)
                and not _latest(os.path.join(path, RESUME_SUBDIR))):
            runs = _run_folders(path)
            if len(runs) == 1:
                return runs[0]
        return path
    return os.path.dirname(os.path.abspath(path))


# ---------------------------------------------------------- configurations
def _merge_config(path, inferred, overrides):
    """Inferred dims, checked against the ones a user gave explicitly."""
    config = dict(inferred)
    for key in _DIM_NAMES:
        given = overrides.get(key)
        if given is None:
            continue
        if config.get(key) is not None and int(given) != config[key]:
            raise ModelLoadError(path, f"{key}={given} was requested but the "
                                 f"weights have {key}={config[key]} (inferred: "
                                 + ", ".join(f"{k}={v}" for k, v in inferred.items())
                                 + ")")
        config[key] = int(given)
    variant = overrides.get("variant")
    if variant is not None:
        if variant not in VARIANTS:
            raise ModelLoadError(path, f"variant must be one of {VARIANTS}")
        if (variant == VARIANT_BASE) != (config["variant"] == VARIANT_BASE):
            raise ModelLoadError(path, f"variant={variant!r} was requested but "
                                 f"the weights are a {config['variant']!r} model")
        config["variant"] = variant
    if config.get("n_subjects") is None:
        config["n_subjects"] = 1
    return config


def infer_keras_weights_config(path):
    """Model arguments implied by the weight shapes of a ``.weights.h5``.

    Uses shapes only (not Keras' internal dataset paths): the one 3x3 kernel
    with 3 input channels gives df_dim; the 3x3 kernel fed by 5*df_dim
    channels (k4_2) gives gfc_dim; the 3x3 kernel fed by the 18*df_dim
    channel hypercolumn (k5) gives dfc_dim; the 2-D matrix gives n_subjects.
    """
    import h5py
    shapes = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: shapes.append(tuple(obj.shape))
                         if isinstance(obj, h5py.Dataset) else None)
    except OSError as e:
        raise ModelLoadError(path, f"not a readable HDF5 weights file ({e})") from None
    kernels = [s for s in shapes if len(s) == 4]
    first = [s for s in kernels if s[:3] == (3, 3, 3)]
    if len(first) != 1:
        raise ModelLoadError(path, "cannot find the first convolution "
                             "(3x3x3xdf_dim) among the weights; give --df_dim, "
                             "--gfc_dim, --dfc_dim, --n_subjects")
    df = first[0][3]
    k42 = [s for s in kernels if s[:2] == (3, 3) and s[2] == 5 * df]
    k5 = [s for s in kernels if s[:2] == (3, 3) and s[2] == 18 * df]
    has_head = any(s[:2] == (1, 1) for s in kernels)
    matrices = [s for s in shapes if len(s) == 2]
    if len(k42) != 1 or (has_head and len(k5) != 1) or len(matrices) > 1:
        raise ModelLoadError(path, "weight shapes do not identify the model "
                             "configuration; give the dims as flags")
    gfc = k42[0][3]
    return {"df_dim": df, "gfc_dim": gfc,
            "dfc_dim": k5[0][3] if has_head else gfc,
            "n_subjects": matrices[0][1] if matrices else None,
            "variant": "full" if has_head else VARIANT_BASE}


def _resume_shapes(prefix):
    out = {}
    for key, shape in tf.train.list_variables(prefix):
        if key.startswith(_RESUME_KEY_PREFIX) and key.endswith(_RESUME_KEY_SUFFIX):
            name = key[len(_RESUME_KEY_PREFIX):-len(_RESUME_KEY_SUFFIX)]
            out[name.replace("__", "/")] = shape
    return out


def resume_variables(model):
    """The model's variables keyed by TF1 name, the key scheme of our resume
    checkpoints (written by `interp_fr.training.Trainer`, read here)."""
    return {name.replace("/", "__"): var for name, var in model.tf1_variable_map().items()}


# ----------------------------------------------------------------- loaders
def load_keras_model(path, kind=None, **overrides):
    """An ``InterpFRNet`` holding the weights stored at ``path``.

    Args:
        path: anything `detect_model_kind` accepts.
        kind: skip detection and read ``path`` as this kind.
        **overrides: df_dim, gfc_dim, dfc_dim, n_subjects, variant; inferred
            from the stored shapes when omitted (variant "full" unless the
            weights have no hypercolumn). Given values must agree with the
            shapes.

    Returns:
        (model, kind, resolved path).

    Raises:
        ModelLoadError, tf1_checkpoint.TF1CheckpointError,
        frozen_graph.FrozenGraphError, saved_model.SavedModelError.
    """
    path = os.fspath(path)
    if kind is None:
        kind, resolved = detect_model_kind(path)
    else:
        if kind not in KINDS:
            raise ModelLoadError(path, f"kind must be one of {KINDS}")
        resolved = _resolve_for_kind(path, kind)
    if kind == KIND_KERAS_WEIGHTS:
        # The JSON our writers put beside every weights file states the
        # configuration; shapes are the fallback for files made elsewhere.
        described = weights_files.read_config(resolved)
        inferred = (dict(described["model"]) if described and "model" in described
                    else infer_keras_weights_config(resolved))
        config = _merge_config(resolved, inferred, overrides)
        model = InterpFRNet(**config)
        try:
            model.load_weights(resolved)
        except ValueError as e:
            raise ModelLoadError(resolved, f"weights do not fit a model with "
                                 f"{config}: {e}") from None
    elif kind == KIND_TF1_CHECKPOINT:
        config = _merge_config(resolved,
                               tf1_checkpoint.infer_model_config(resolved),
                               overrides)
        model = InterpFRNet(**config)
        tf1_checkpoint.load_tf1_checkpoint(model, resolved)
    elif kind == KIND_TRAINING_CHECKPOINT:
        shapes = _resume_shapes(resolved)
        try:
            inferred = tf1_checkpoint.config_from_shapes(shapes)
        except KeyError as e:
            raise ModelLoadError(resolved, f"resume checkpoint has no "
                                 f"{e.args[0]!r}; not one of our training "
                                 "checkpoints") from None
        config = _merge_config(resolved, inferred, overrides)
        model = InterpFRNet(**config)
        variables = resume_variables(model)
        missing = [k for k in variables if k.replace("__", "/") not in shapes]
        if missing:
            raise ModelLoadError(resolved, f"resume checkpoint lacks "
                                 f"{len(missing)} model variables, e.g. "
                                 f"{missing[:5]}")
        # Optimizer, step and RNG state in the file are not needed here.
        tf.train.Checkpoint(variables=variables).restore(resolved).expect_partial()
    elif kind == KIND_FROZEN_GRAPH:
        model, result = frozen_graph.model_from_frozen_graph(
                resolved, n_subjects=overrides.get("n_subjects"),
                variant=overrides.get("variant"))
        _merge_config(resolved, result.config,
                      {k: v for k, v in overrides.items() if k != "variant"})
    elif kind == KIND_SAVED_MODEL:
        model = saved_model.model_from_saved_model(resolved)
        _merge_config(resolved, model.get_config() | {}, overrides)
    return model, kind, resolved


def _resolve_for_kind(path, kind):
    if kind in (KIND_TF1_CHECKPOINT, KIND_TRAINING_CHECKPOINT):
        if os.path.isdir(path):
            sub = os.path.join(path, RESUME_SUBDIR)
            if kind == KIND_TRAINING_CHECKPOINT and _latest(sub):
                return _latest(sub)
            latest = _latest(path)
            if not latest:
                raise ModelLoadError(path, f"no {kind} in this folder")
            return latest
        return path
    if kind == KIND_SAVED_MODEL and os.path.isfile(path):
        return os.path.dirname(path) or "."
    return path


def load_forward(path, kind=None, *, input_name=None, feature_name=None,
                 map_name=None, signature=saved_model.SIGNATURE_KEY,
                 jit_compile=False, precision="float32", **overrides):
    """An inference callable for the model stored at ``path``.

    Args:
        path: anything `detect_model_kind` accepts.
        kind: skip detection.
        input_name, feature_name, map_name: tensor names of a frozen graph
            (defaults ``sample_input_images``, ``Reshape_134``, ``Mul_2``) or
            input / output keys of a SavedModel signature (defaults: its only
            input, ``feature``, ``feature_map``); ``map_name=""`` runs without
            the map.
        signature: SavedModel signature key.
        jit_compile: compile the Keras forward with XLA.
        precision: `interp_fr.precision.PRECISIONS`; the Keras forward of a
            weights file or checkpoint computes in it (graphs and SavedModels
            run as stored, and ask for float32).
        **overrides: model dims / variant, see `load_keras_model`.

    Returns:
        `LoadedModel`.
    """
    path = os.fspath(path)
    if kind is None:
        kind, resolved = detect_model_kind(path)
    else:
        resolved = _resolve_for_kind(path, kind)
    out_dir = default_output_dir(path)
    chosen = precision_lib.resolve(precision)
    if chosen != "float32" and kind in (KIND_FROZEN_GRAPH, KIND_SAVED_MODEL):
        raise ModelLoadError(resolved, f"a {kind} runs as it was exported; "
                             f"precision {chosen} needs Keras weights or a checkpoint")
    if kind == KIND_FROZEN_GRAPH:
        graph = frozen_graph.FrozenGraph(
                resolved,
                input_name=input_name or frozen_graph.INPUT_NAME,
                feature_name=feature_name or frozen_graph.FEATURE_NAME,
                map_name=frozen_graph.MAP_NAME if map_name is None else map_name)
        return LoadedModel(kind, resolved, graph, fixed_batch=graph.fixed_batch,
                           output_dir=out_dir)
    if kind == KIND_SAVED_MODEL:
        fwd = saved_model.SavedModelForward(
                resolved, signature=signature, input_key=input_name,
                feature_key=feature_name or saved_model.FEATURE_KEY,
                map_key=saved_model.MAP_KEY if map_name is None else map_name)
        return LoadedModel(kind, resolved, fwd, fixed_batch=fwd.fixed_batch,
                           output_dir=out_dir)
    model, kind, resolved = load_keras_model(resolved, kind, **overrides)
    model = precision_lib.model_in_precision(model, chosen)
    return LoadedModel(kind, resolved,
                       features.keras_forward(model, jit_compile=jit_compile),
                       model=model, output_dir=out_dir)


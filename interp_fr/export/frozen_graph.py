"""Frozen GraphDefs with the original's node-name contract (SPEC A6).

The released ``pretrained_model.pb`` is a TF1 GraphDef whose variables were
turned into constants.  Code written for it imports it under the ``import/``
prefix, feeds ``import/sample_input_images:0`` (float32 [1, 96, 96, 3] in
[-1, 1]) and fetches ``import/Reshape_134:0`` (the face feature, [1, D]) and
``import/Mul_2:0`` (the masked k5 map, [1, 24, 24, C]).

This module

* writes such graphs from an ``InterpFRNet`` (`freeze_model`): the model is
  traced once, its variables folded into constants with
  ``convert_variables_to_constants_v2``, the constants renamed to their TF1
  variable names (``d_k01_conv/w`` ...), and Identity nodes named
  ``Reshape_134`` / ``Mul_2`` added as outputs, so the original consumer code
  runs unchanged on ours;
* runs any frozen graph, ours or the released one (`FrozenGraph`): one
  compiled call per batch, or image by image when the input placeholder has a
  fixed batch;
* turns the constants of a frozen graph back into a Keras model
  (`model_from_frozen_graph`).

Every failure names the file and lists what the graph does contain.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf
from google.protobuf import message as pb_message

from interp_fr.common.atomic_io import atomic_write
from interp_fr.common.errors import InputError
from interp_fr.model import (IMAGE_CHANNELS, IMAGE_SIZE, K7_LINEAR, VARIANT_FULL,
                             VARIANT_HYPERCOLUMN_NO_MASK, InterpFRNet)
from interp_fr.tf1_checkpoint import config_from_shapes

INPUT_NAME = "sample_input_images"
FEATURE_NAME = "Reshape_134"
MAP_NAME = "Mul_2"
LOGITS_NAME = "logits"
DEFAULT_OUTPUT_FILE = "pretrained_model.pb"
IMPORT_PREFIX = "import/"

# Node types that are never a useful output to suggest.
_NOT_OUTPUTS = {"Const", "NoOp", "Placeholder", "PlaceholderWithDefault",
                "Assert", "VarHandleOp", "VariableV2"}


class FrozenGraphError(ValueError, InputError):
    """A frozen graph file is unreadable or lacks an expected tensor.

    The message starts with the file's path and lists the graph's
    placeholders and a few candidate output nodes.
    """

    def __init__(self, path, problem, graph_def=None):
        self.path = str(path)
        self.problem = problem
        text = f"{self.path}: {problem}"
        if graph_def is not None:
            text += "\n" + describe_graph(graph_def)
        super().__init__(text)


# ----------------------------------------------------------------- reading
def read_graph_def(path):
    """Parses a binary GraphDef file.

    Raises:
        FrozenGraphError: missing file, not a GraphDef (a SavedModel's
            ``saved_model.pb`` is recognised and named as such), or a graph
            without nodes.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FrozenGraphError(path, "file not found") from None
    except IsADirectoryError:
        raise FrozenGraphError(path, "is a folder, not a frozen GraphDef file "
                               "(a SavedModel folder is loaded as such)") from None
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
        ok = len(graph_def.node) > 0
    except (pb_message.DecodeError, RuntimeWarning, ValueError):
        ok = False
    if not ok:
        raise FrozenGraphError(path, _not_a_graph_reason(data))
    return graph_def


def _not_a_graph_reason(data):
    from tensorflow.core.protobuf import saved_model_pb2
    if not data:
        return "file is empty; expected a binary GraphDef (frozen graph)"
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
        if saved.meta_graphs:
            return ("this is a SavedModel's saved_model.pb, not a frozen "
                    "GraphDef; pass the SavedModel folder instead")
    except (pb_message.DecodeError, RuntimeWarning, ValueError):
        pass
    head = data[:16]
    return (f"not a binary GraphDef (protobuf parse failed or gave no nodes; "
            f"{len(data)} bytes, starting {head!r})")


def _shape_of(node):
    """Static shape list of a Placeholder node (None for unknown dims), or
    None when the rank is unknown."""
    if "shape" not in node.attr:
        return None
    shape = node.attr["shape"].shape
    if shape.unknown_rank:
        return None
    return [None if d.size < 0 else int(d.size) for d in shape.dim]


def placeholders(graph_def):
    """(name, dtype name, shape) of every Placeholder of a GraphDef."""
    out = []
    for node in graph_def.node:
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).name
            out.append((node.name, dtype, _shape_of(node)))
    return out


def candidate_outputs(graph_def, limit=10):
    """Likely output nodes, at most ``limit``: the contract's names present
    in the graph, then the nodes nothing consumes, then (breadth first) the
    nodes feeding them, skipping constants and variable reads, since an
    intermediate map such as the original's ``Mul_2`` feeds the feature."""
    nodes = _node_map(graph_def)
    consumed = set()
    for node in graph_def.node:
        for inp in node.input:
            consumed.add(inp.lstrip("^").split(":")[0])

    def useful(node):
        if node.op in _NOT_OUTPUTS:
            return False
        # Reads of frozen variables: Identity of a Const.
        return not (node.op == "Identity" and node.input
                    and nodes.get(node.input[0].split(":")[0]) is not None
                    and nodes[node.input[0].split(":")[0]].op == "Const")

    out, seen = [], set()
    frontier = [n for n in (FEATURE_NAME, MAP_NAME, LOGITS_NAME) if n in nodes]
    frontier += [n.name for n in reversed(graph_def.node)
                 if n.name not in consumed and useful(n)]
    for _ in range(4):
        nxt = []
        for name in frontier:
            if name in seen:
                continue
            seen.add(name)
            out.append(name)
            nxt += [i.split(":")[0] for i in nodes[name].input
                    if not i.startswith("^")]
        frontier = [n for n in nxt if n in nodes and useful(nodes[n])]
    return out[:limit]


def describe_graph(graph_def, limit=10):
    """A few lines: node count, placeholders, candidate output nodes."""
    phs = placeholders(graph_def)
    lines = [f"  the graph has {len(graph_def.node)} nodes"]
    if phs:
        lines.append("  placeholders: " + ", ".join(
                f"{n} ({d}, shape {s})" for n, d, s in phs))
    else:
        lines.append("  placeholders: none")
    cands = candidate_outputs(graph_def, limit)
    lines.append("  candidate outputs: " + (", ".join(cands) if cands else "none"))
    return "\n".join(lines)


def _node_map(graph_def):
    return {node.name: node for node in graph_def.node}


def resolve_tensor_name(graph_def, name, what, path):
    """``name``, ``name:K`` or ``import/name:K`` -> (node name, tensor name).

    Raises:
        FrozenGraphError: no such node, listing what the graph contains.
    """
    nodes = _node_map(graph_def)
    tensor = name if ":" in name else name + ":0"
    node_name, _, index = tensor.rpartition(":")
    if node_name not in nodes and node_name.startswith(IMPORT_PREFIX):
        node_name = node_name[len(IMPORT_PREFIX):]
    if node_name not in nodes:
        raise FrozenGraphError(
                path, f"no node named {name!r} ({what}); pass the right name "
                "with the corresponding flag", graph_def)
    return node_name, f"{node_name}:{index}"


# ----------------------------------------------------------------- running
class FrozenGraph:
    """A frozen GraphDef as a batched inference callable.

    Args:
        path: the ``.pb`` file.
        input_name: input placeholder (default ``sample_input_images``).
        feature_name: feature tensor (default ``Reshape_134``).
        map_name: feature-map tensor (default ``Mul_2``); None or "" to run
            without it.

    Calling it with float32 images [b, 96, 96, 3] in [-1, 1] returns a dict
    ``feature`` [b, D] and (when ``map_name``) ``feature_map`` [b, H, W, C] as
    numpy arrays.  When the placeholder has a fixed batch F (the released
    graph has F = 1) the images are fed F at a time, the last chunk padded.

    Attributes:
        fixed_batch: F, or None for a dynamic batch.
        graph_def: the parsed GraphDef.
    """

    def __init__(self, path, input_name=INPUT_NAME, feature_name=FEATURE_NAME,
                 map_name=MAP_NAME):
        self.path = os.fspath(path)
        self.graph_def = gd = read_graph_def(self.path)
        in_node, in_tensor = resolve_tensor_name(gd, input_name, "input", path)
        node = _node_map(gd)[in_node]
        if node.op not in ("Placeholder", "PlaceholderWithDefault"):
            raise FrozenGraphError(path, f"input {input_name!r} is a {node.op} "
                                   "node, not a placeholder", gd)
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
        shape = _shape_of(node)
        if dtype != tf.float32:
            raise FrozenGraphError(path, f"input {input_name!r} has dtype "
                                   f"{dtype.name}, expected float32", gd)
        if shape is not None and (len(shape) != 4 or any(
                s is not None and s != e
                for s, e in zip(shape[1:], (IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS)))):
            raise FrozenGraphError(path, f"input {input_name!r} has shape "
                                   f"{shape}, expected [N, 96, 96, 3]", gd)
        self.fixed_batch = shape[0] if shape is not None else None
        fetch_names = {"feature": resolve_tensor_name(
                gd, feature_name, "feature output", path)[1]}
        if map_name:
            fetch_names["feature_map"] = resolve_tensor_name(
                    gd, map_name, "feature-map output", path)[1]
        self.input_tensor = in_tensor
        self.output_tensors = fetch_names

        def import_graph():
            tf.compat.v1.import_graph_def(gd, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(import_graph, [])
        except (ValueError, tf.errors.OpError) as e:
            raise FrozenGraphError(path, f"TensorFlow cannot import the graph: "
                                   f"{e}", gd) from None
        graph = wrapped.graph
        keys = list(fetch_names)
        self._keys = keys
        self._fn = wrapped.prune(
                feeds=[graph.get_tensor_by_name(in_tensor)],
                fetches=[graph.get_tensor_by_name(fetch_names[k]) for k in keys])

    def _run(self, images):
        outs = self._fn(tf.convert_to_tensor(images, tf.float32))
        return {k: np.asarray(v) for k, v in zip(self._keys, outs)}

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        fixed = self.fixed_batch
        if fixed is None or len(images) == fixed:
            return self._run(images)
        chunks = {k: [] for k in self._keys}
        for start in range(0, len(images), fixed):
            part = images[start:start + fixed]
            real = len(part)
            if real < fixed:
                # The placeholder only takes exactly `fixed` images.
                pad = np.zeros((fixed - real,) + part.shape[1:], np.float32)
                part = np.concatenate([part, pad])
            out = self._run(part)
            for k in self._keys:
                chunks[k].append(out[k][:real])
        return {k: np.concatenate(v) for k, v in chunks.items()}


# ----------------------------------------------------------------- writing
def _rename_nodes(graph_def, mapping):
    """Renames nodes in place, rewriting every input that refers to them
    (``name``, ``name:K``, ``^name``)."""
    if not mapping:
        return
    for node in graph_def.node:
        if node.name in mapping:
            node.name = mapping[node.name]
        for i, inp in enumerate(node.input):
            control = inp.startswith("^")
            base = inp.lstrip("^")
            name, colon, index = base.partition(":")
            if name in mapping:
                node.input[i] = ("^" if control else "") + mapping[name] + colon + index


def _free_name(name, taken):
    i = 1
    while f"{name}_orig{'' if i == 1 else i}" in taken:
        i += 1
    return f"{name}_orig{'' if i == 1 else i}"


def _add_identity(graph_def, name, tensor_name, dtype):
    node = graph_def.node.add()
    node.name = name
    node.op = "Identity"
    node.input.append(tensor_name)
    node.attr["T"].type = dtype.as_datatype_enum


def frozen_graph_def(model, fixed_batch=None, with_logits=False):
    """Freezes an ``InterpFRNet`` into a GraphDef with the original's names.

    Args:
        model: a built ``InterpFRNet`` (inference mode is used: moving
            statistics, no dropout).
        fixed_batch: None for a dynamic batch dimension, or the fixed batch
            size of the input placeholder (1 reproduces the original).
        with_logits: also keep the classifier and expose its output as
            ``logits`` [N, n_subjects] (the original's graph has no such
            output, so its classifier is pruned away).

    Returns:
        GraphDef with placeholder ``sample_input_images`` float32
        [N, 96, 96, 3], outputs ``Reshape_134`` (feature [N, D]) and
        ``Mul_2`` (masked map [N, 24, 24, C]) (and ``logits``), and one
        Const per variable that the outputs use, named by its TF1 name.
    """
    from tensorflow.python.framework import convert_to_constants

    spec = tf.TensorSpec([fixed_batch, IMAGE_SIZE, IMAGE_SIZE, IMAGE_CHANNELS],
                         tf.float32, name=INPUT_NAME)

    # The argument name becomes the placeholder's name in the traced graph.
    def serve(sample_input_images):
        out = model(sample_input_images, training=False)
        result = [out["feature"], out["feature_map"]]
        if with_logits:
            result.append(out["logits"])
        return result

    concrete = tf.function(serve, input_signature=[spec],
                           autograph=False).get_concrete_function()
    handle_names = {id(var.value.handle): name
                    for name, var in model.tf1_variable_map().items()}
    capture_names = {}
    for external, internal in concrete.graph.captures:
        if id(external) in handle_names:
            capture_names[internal.op.name] = handle_names[id(external)]
    frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    outputs = [t.name for t in frozen.outputs]
    input_names = [t.op.name for t in frozen.inputs]
    if input_names != [INPUT_NAME]:
        raise RuntimeError(f"traced input is named {input_names}, expected "
                           f"[{INPUT_NAME!r}]")

    wanted = [FEATURE_NAME, MAP_NAME] + ([LOGITS_NAME] if with_logits else [])
    taken = {node.name for node in graph_def.node}
    mapping = {}
    # Names the contract needs (output names, TF1 variable names) are moved
    # out of the way first if the trace happened to use them.
    reserved = set(wanted) | set(capture_names.values())
    for name in sorted(reserved & taken):
        new = _free_name(name, taken | set(mapping.values()))
        mapping[name] = new
    mapping.update({old: new for old, new in capture_names.items()
                    if old in taken})
    # The traced function returns Identity nodes with a control dependency on
    # every variable read; the contract's outputs take their data input
    # instead, so pruning keeps only what the outputs compute.
    nodes = _node_map(graph_def)
    outputs = [_data_source(nodes, t) for t in outputs]
    outputs = [_renamed_tensor(t, mapping) for t in outputs]
    _rename_nodes(graph_def, mapping)
    for name, tensor in zip(wanted, outputs):
        _add_identity(graph_def, name, tensor, tf.float32)
    return prune_graph(graph_def, [INPUT_NAME] + wanted)


def _data_source(nodes, tensor_name):
    node_name = tensor_name.partition(":")[0]
    node = nodes[node_name]
    if node.op == "Identity":
        data = [i for i in node.input if not i.startswith("^")]
        if len(data) == 1:
            return data[0] if ":" in data[0] else data[0] + ":0"
    return tensor_name


def prune_graph(graph_def, keep):
    """The sub-GraphDef of the nodes ``keep`` depend on (data and control
    inputs), in the original node order."""
    nodes = _node_map(graph_def)
    needed, stack = set(), list(keep)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        for inp in nodes[name].input:
            stack.append(inp.lstrip("^").split(":")[0])
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    out.node.extend(n for n in graph_def.node if n.name in needed)
    return out


def _renamed_tensor(tensor_name, mapping):
    node, _, index = tensor_name.partition(":")
    return mapping.get(node, node) + ":" + (index or "0")


def freeze_model(model, path, fixed_batch=None, with_logits=False):
    """Writes `frozen_graph_def` of ``model`` to ``path`` atomically.

    Returns:
        the GraphDef written.
    """
    graph_def = frozen_graph_def(model, fixed_batch=fixed_batch,
                                 with_logits=with_logits)
    with atomic_write(path, "wb") as f:
        f.write(graph_def.SerializeToString())
    return graph_def


# ------------------------------------------------ constants back to Keras
def graph_constants(graph_def, names=None):
    """Const node values of a GraphDef: name -> numpy array (only ``names``
    when given)."""
    wanted = None if names is None else set(names)
    out = {}
    for node in graph_def.node:
        if node.op == "Const" and (wanted is None or node.name in wanted):
            out[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    return out


@dataclasses.dataclass
class FrozenLoadResult:
    """What `model_from_frozen_graph` did.

    Attributes:
        config: the model arguments used.
        loaded: TF1 names taken from constants.
        missing: model variables the graph does not hold (typically the
            classifier, which the original's graph prunes); they keep their
            fresh initial values.
    """
    config: dict
    loaded: list
    missing: list


def model_from_frozen_graph(path, n_subjects=None, variant=None,
                            graph_def=None):
    """An ``InterpFRNet`` whose weights are the constants of a frozen graph.

    Constants are matched by TF1 variable name (``d_k01_conv/w``,
    ``d_k_bn0_1/moving_mean``...): the names the original's TF1 freezing kept
    and the names `frozen_graph_def` gives.  Dims are read off the constant
    shapes.

    Args:
        path: the ``.pb`` file.
        n_subjects: classifier size when the graph has no classifier
            (default 10575, CASIA-WebFace); must match it when it has one.
        variant: model variant; default "full" when the graph has the
            hypercolumn and a TopKV2 (peak mask) op, "hypercolumn_no_mask"
            with the hypercolumn but no TopKV2, else "base".
        graph_def: an already parsed GraphDef of ``path``.

    Returns:
        (model, `FrozenLoadResult`).

    Raises:
        FrozenGraphError: base or hypercolumn variables are missing or
            mis-shaped (the classifier may be missing).
    """
    path = os.fspath(path)
    gd = graph_def if graph_def is not None else read_graph_def(path)
    consts = graph_constants(gd)
    try:
        config = config_from_shapes({k: v.shape for k, v in consts.items()})
    except KeyError as e:
        tf1_like = sorted(n for n in consts if n.startswith("d_"))[:10]
        raise FrozenGraphError(
                path, f"no constant named {e.args[0]!r}: the graph's constants "
                "do not carry the model's TF1 variable names (found e.g. "
                f"{tf1_like or sorted(consts)[:10]})", gd) from None
    if variant is None:
        has_topk = any(node.op == "TopKV2" for node in gd.node)
        variant = config["variant"]
        if variant == VARIANT_FULL and not has_topk:
            variant = VARIANT_HYPERCOLUMN_NO_MASK
    if config["n_subjects"] is not None:
        if n_subjects is not None and n_subjects != config["n_subjects"]:
            raise FrozenGraphError(path, f"the graph's classifier has "
                                   f"{config['n_subjects']} subjects, not "
                                   f"n_subjects={n_subjects}")
        n_subjects = config["n_subjects"]
    elif n_subjects is None:
        n_subjects = 10575
    config.update(n_subjects=n_subjects, variant=variant)
    model = InterpFRNet(**config)
    loaded, missing, mismatched = [], [], []
    for name, var in model.tf1_variable_map().items():
        if name not in consts:
            missing.append(name)
        elif tuple(consts[name].shape) != tuple(var.shape):
            mismatched.append(f"{name}: graph {list(consts[name].shape)} vs "
                              f"model {list(var.shape)}")
        else:
            loaded.append(name)
    required_missing = [n for n in missing if not n.startswith(K7_LINEAR + "/")]
    if required_missing or mismatched:
        problems = []
        if required_missing:
            problems.append(f"missing constants {required_missing[:10]}"
                            + (" ..." if len(required_missing) > 10 else ""))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched[:10]))
        raise FrozenGraphError(path, "cannot rebuild the model from the graph's "
                               "constants: " + ", ".join(problems), gd)
    variables = model.tf1_variable_map()
    for name in loaded:
        variables[name].assign(consts[name].astype(np.float32))
    return model, FrozenLoadResult(config=config, loaded=loaded, missing=missing)

"""Convert the original's PyTorch checkpoints into our Keras models.

Library: ``load_state_dict`` (torch file -> flat {key: numpy array}, ``module.``
prefixes stripped), ``*_name_map`` (every torch state_dict key of a model ->
the Keras variable it fills and the layout transform), ``assign_state_dict``
(checks everything first and raises one ``CheckpointMismatchError`` listing all
missing / unexpected / mis-shaped / mis-valued keys, then assigns),
``infer_*_config`` (model hyper-parameters read off the checkpoint's shapes),
``convert`` (file -> Keras weights file) and ``load_converted``.

Layout transforms (torch -> Keras): linear [out, in] -> [in, out]; conv
[out, in, kh, kw] -> [kh, kw, in, out]; depthwise [C, 1, kh, kw] -> [kh, kw, C, 1];
modulated conv [1, out, in, k, k] -> [k, k, in, out]; NCHW buffers/constants
[1, C, H, W] -> [1, H, W, C]; the IR-SE head linear additionally reorders its
input from (C, 7, 7) to (7, 7, C) flattening.

Command line: `attr_recovery.cli.convert_checkpoint`
(``attr-recovery-convert-checkpoint``).

Models are written as Keras ``.weights.h5`` files plus a ``.config.json``
sidecar (kind and constructor arguments, used by ``load_converted``); the mean
latent as a ``.npy`` array [n_latent, style_dim].
"""
import collections
import json
import re

import numpy as np

from attr_recovery.conversion import torch_pickle
from attr_recovery.nets.backbones import IRSEBackbone, MobileFaceNet
from attr_recovery.nets.latent_transformer import HEAD_DEPTH, IDDEncoder
from attr_recovery.nets.stylegan2 import Generator, default_channels
from interp_fr.common.errors import DataFileError, InputError
from interp_fr.common.json_safe import json_safe

KINDS = ("generator", "idd_encoder", "arcface_r50", "arcface_mb", "mean_latent")
WEIGHTS_SUFFIX = ".weights.h5"


class CheckpointMismatchError(ValueError, InputError):
    """The checkpoint does not fit the model; the message lists every problem."""

    def __init__(self, source, missing=(), unexpected=(), misshaped=(), misvalued=()):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.misshaped = list(misshaped)
        self.misvalued = list(misvalued)
        lines = [f"checkpoint {source} does not match the model:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): " + ", ".join(self.missing))
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): "
                         + ", ".join(self.unexpected))
        for key, got, want in self.misshaped:
            lines.append(f"  mis-shaped key {key}: checkpoint {tuple(got)}, "
                         f"model expects {tuple(want)}")
        for key, why in self.misvalued:
            lines.append(f"  mis-valued key {key}: {why}")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------- transforms

class Transform(collections.namedtuple("Transform", ["name", "to_keras", "torch_shape"])):
    """Layout change: ``to_keras(torch_array)`` and ``torch_shape(keras_shape)``."""


IDENTITY = Transform("identity", lambda a: a, tuple)
LINEAR = Transform("linear", lambda a: a.T, lambda s: (s[1], s[0]))
CONV = Transform("conv", lambda a: a.transpose(2, 3, 1, 0),
                 lambda s: (s[3], s[2], s[0], s[1]))
DEPTHWISE = Transform("depthwise", lambda a: a.transpose(2, 3, 0, 1),
                      lambda s: (s[2], 1, s[0], s[1]))
MODCONV = Transform("modulated_conv", lambda a: a[0].transpose(2, 3, 1, 0),
                    lambda s: (1, s[3], s[2], s[0], s[1]))
NCHW = Transform("nchw", lambda a: a.transpose(0, 2, 3, 1),
                 lambda s: (s[0], s[3], s[1], s[2]))
RGB_BIAS = Transform("rgb_bias", lambda a: a.reshape(-1), lambda s: (1, s[0], 1, 1))
CONV1X1_LINEAR = Transform("conv1x1_as_linear", lambda a: a[:, :, 0, 0].T,
                           lambda s: (s[1], s[0], 1, 1))


def flatten_chw_linear(channels, height, width):
    """Transform of a linear layer fed by a torch-flattened [C, H, W] map.

    torch weight [out, C*H*W] (C-major) -> Keras [H*W*C, out] (NHWC flatten).
    """
    def to_keras(a):
        out = a.shape[0]
        return (a.reshape(out, channels, height, width).transpose(2, 3, 1, 0)
                .reshape(height * width * channels, out))
    return Transform("flatten_chw_linear", to_keras, lambda s: (s[1], s[0]))


class Target(collections.namedtuple("Target",
                                     ["variable", "transform", "index", "required"])):
    """Where one torch key goes: ``variable[index]`` (or all of it) after ``transform``.

    ``required=False``: a buffer the checkpoint may lack (kept as initialised).
    """

    def keras_shape(self):
        shape = tuple(self.variable.shape)
        return shape if self.index is None else shape[1:]

    def torch_shape(self):
        return tuple(self.transform.torch_shape(self.keras_shape()))


class NameMap:
    """torch key -> Target, plus fixed buffers and ignorable keys.

    ``constants``: buffers with a value fixed by the implementation (blur
    kernels); checked when present, not required (they are buffers).
    ``optional``: keys accepted and ignored (BN ``num_batches_tracked``).
    """

    def __init__(self):
        self.targets = collections.OrderedDict()
        self.constants = collections.OrderedDict()
        self.optional = set()

    def add(self, key, variable, transform=IDENTITY, index=None, required=True):
        if key in self.targets:
            raise ValueError(f"duplicate name-map key {key}")
        self.targets[key] = Target(variable, transform, index, required)

    def add_constant(self, key, value):
        self.constants[key] = np.asarray(value)

    def add_optional(self, key):
        self.optional.add(key)

    def keys(self):
        return list(self.targets) + list(self.constants)


def _add_equal_linear(nm, prefix, layer):
    nm.add(f"{prefix}.weight", layer.weight, LINEAR)
    if layer.bias is not None:
        nm.add(f"{prefix}.bias", layer.bias)


def _add_modconv(nm, prefix, conv):
    nm.add(f"{prefix}.weight", conv.weight, MODCONV)
    _add_equal_linear(nm, f"{prefix}.modulation", conv.modulation)
    if conv.blur is not None:
        nm.add_constant(f"{prefix}.blur.kernel", conv.blur.kernel)


def _add_styled_conv(nm, prefix, layer):
    _add_modconv(nm, f"{prefix}.conv", layer.conv)
    nm.add(f"{prefix}.noise.weight", layer.noise.weight)
    nm.add(f"{prefix}.activate.bias", layer.activate.bias)


def _add_to_rgb(nm, prefix, layer):
    if layer.upsample is not None:
        nm.add_constant(f"{prefix}.upsample.kernel", layer.upsample.kernel)
    _add_modconv(nm, f"{prefix}.conv", layer.conv)
    nm.add(f"{prefix}.bias", layer.bias, RGB_BIAS)


def generator_name_map(generator):
    """Name map of a ``Generator`` for the original's ``g_ema`` state dict."""
    nm = NameMap()
    for i, layer in enumerate(generator.style.linears):
        # index 0 of the torch Sequential is the parameter-free PixelNorm
        _add_equal_linear(nm, f"style.{i + 1}", layer)
    nm.add("input.input", generator.const_input.const, NCHW)
    _add_styled_conv(nm, "conv1", generator.conv1)
    _add_to_rgb(nm, "to_rgb1", generator.to_rgb1)
    for i, layer in enumerate(generator.convs):
        _add_styled_conv(nm, f"convs.{i}", layer)
    for i, layer in enumerate(generator.to_rgbs):
        _add_to_rgb(nm, f"to_rgbs.{i}", layer)
    for i, var in enumerate(generator.noises):
        # Fixed-noise buffers: only used with noise_mode='const' (the original
        # decodes with fresh noise), and absent from some checkpoints, which
        # the original tolerates by loading g_ema with strict=False.
        nm.add(f"noises.noise_{i}", var, NCHW, required=False)
    return nm


def idd_encoder_name_map(encoder):
    """Name map of an ``IDDEncoder`` (trunk ``mapping.i``, heads ``heads.h.j``).

    The mean latent is not part of this checkpoint (separate ``mean_wplus.pth``).
    """
    nm = NameMap()
    for i, layer in enumerate(encoder.trunk):
        _add_equal_linear(nm, f"mapping.{i}", layer)
    for j, stacked in enumerate(encoder.heads):
        for h in range(encoder.n_latents):
            nm.add(f"heads.{h}.{j}.weight", stacked.weight, LINEAR, index=h)
            nm.add(f"heads.{h}.{j}.bias", stacked.bias, IDENTITY, index=h)
    return nm


def _add_bn(nm, prefix, bn):
    nm.add(f"{prefix}.weight", bn.weight)
    nm.add(f"{prefix}.bias", bn.bias)
    nm.add(f"{prefix}.running_mean", bn.running_mean)
    nm.add(f"{prefix}.running_var", bn.running_var)
    # torch's step counter; only used by torch when momentum is None
    nm.add_optional(f"{prefix}.num_batches_tracked")


def _add_conv(nm, key, conv):
    nm.add(key, conv.weight, CONV if conv.groups == 1 else DEPTHWISE)
    if conv.bias is not None:
        nm.add(key[:-len("weight")] + "bias", conv.bias)


def arcface_r50_name_map(model):
    """Name map of an ``IRSEBackbone`` (torch ``Backbone(50, mode='ir_se')``)."""
    nm = NameMap()
    _add_conv(nm, "input_layer.0.weight", model.stem_conv)
    _add_bn(nm, "input_layer.1", model.stem_bn)
    nm.add("input_layer.2.weight", model.stem_prelu.weight)
    for u, unit in enumerate(model.units):
        p = f"body.{u}"
        if unit.shortcut_conv is not None:
            _add_conv(nm, f"{p}.shortcut_layer.0.weight", unit.shortcut_conv)
            _add_bn(nm, f"{p}.shortcut_layer.1", unit.shortcut_bn)
        _add_bn(nm, f"{p}.res_layer.0", unit.bn0)
        _add_conv(nm, f"{p}.res_layer.1.weight", unit.conv1)
        _add_bn(nm, f"{p}.res_layer.2", unit.bn1)
        nm.add(f"{p}.res_layer.3.weight", unit.prelu.weight)
        _add_conv(nm, f"{p}.res_layer.4.weight", unit.conv2)
        _add_bn(nm, f"{p}.res_layer.5", unit.bn2)
        if unit.se is not None:
            nm.add(f"{p}.res_layer.6.fc1.weight", unit.se.fc1, CONV1X1_LINEAR)
            nm.add(f"{p}.res_layer.6.fc2.weight", unit.se.fc2, CONV1X1_LINEAR)
    _add_bn(nm, "output_layer.0", model.head_bn2d)
    f = model.final_size
    nm.add("output_layer.3.weight", model.head_linear.kernel,
           flatten_chw_linear(model.out_channels, f, f))
    nm.add("output_layer.3.bias", model.head_linear.bias)
    _add_bn(nm, "output_layer.4", model.head_bn1d)
    return nm


def _add_conv_block(nm, prefix, block):
    _add_conv(nm, f"{prefix}.conv.weight", block.conv)
    _add_bn(nm, f"{prefix}.bn", block.bn)
    if block.prelu is not None:
        nm.add(f"{prefix}.prelu.weight", block.prelu.weight)


def _add_depth_wise(nm, prefix, block):
    _add_conv_block(nm, f"{prefix}.conv", block.conv)
    _add_conv_block(nm, f"{prefix}.conv_dw", block.conv_dw)
    _add_conv_block(nm, f"{prefix}.project", block.project)


def arcface_mb_name_map(model):
    """Name map of a ``MobileFaceNet`` (torch ``MobiFaceNet``)."""
    nm = NameMap()
    _add_conv_block(nm, "conv1", model.conv1)
    _add_conv_block(nm, "conv2_dw", model.conv2_dw)
    _add_depth_wise(nm, "conv_23", model.conv_23)
    for i, b in enumerate(model.conv_3):
        _add_depth_wise(nm, f"conv_3.model.{i}", b)
    _add_depth_wise(nm, "conv_34", model.conv_34)
    for i, b in enumerate(model.conv_4):
        _add_depth_wise(nm, f"conv_4.model.{i}", b)
    _add_depth_wise(nm, "conv_45", model.conv_45)
    for i, b in enumerate(model.conv_5):
        _add_depth_wise(nm, f"conv_5.model.{i}", b)
    _add_conv_block(nm, "conv_6_sep", model.conv_6_sep)
    _add_conv_block(nm, "conv_6_dw", model.conv_6_dw)
    nm.add("linear.weight", model.linear, LINEAR)
    _add_bn(nm, "bn", model.bn)
    return nm


# ---------------------------------------------------------------- loading

def strip_prefix(state_dict, prefix="module."):
    """Drop one leading ``prefix`` (DataParallel's 'module.') from every key."""
    return collections.OrderedDict(
        (k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def load_state_dict(path, subkey=None):
    """Read a torch checkpoint as a flat state dict of numpy arrays.

    Args:
      path: torch checkpoint (zip or legacy format).
      subkey: key of the state dict inside a larger checkpoint dict ('g_ema');
        None: the file is the state dict.
    Returns: OrderedDict {key: np.ndarray}, ``module.`` prefixes stripped.
    """
    sd = torch_pickle.load(path, select=subkey)
    if not isinstance(sd, dict):
        raise torch_pickle.CheckpointFormatError(
            f"{path}{'[' + subkey + ']' if subkey else ''} is a "
            f"{type(sd).__name__}, not a state dict")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise torch_pickle.CheckpointFormatError(
            f"{path}: not a flat state dict; non-tensor entries: {bad[:10]}")
    return strip_prefix(sd)


def load_generator_state_dict(path):
    """The generator state dict: the ``g_ema`` entry when present, else the whole file."""
    try:
        return load_state_dict(path, subkey="g_ema")
    except KeyError:
        return load_state_dict(path)


def load_mean_latent(path):
    """Mean W+ latent from ``mean_wplus.pth`` (a bare tensor [1, n, D] or [n, D]).

    Returns float32 [n_latent, style_dim].
    """
    obj = torch_pickle.load(path)
    if isinstance(obj, dict) and len(obj) == 1:
        obj = next(iter(obj.values()))
    if not isinstance(obj, np.ndarray):
        raise torch_pickle.CheckpointFormatError(
            f"{path}: expected a tensor, got {type(obj).__name__}")
    arr = obj.astype(np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise torch_pickle.CheckpointFormatError(
            f"{path}: mean latent must be [1, n, D] or [n, D], got {obj.shape}")
    return arr


def assign_state_dict(name_map, state_dict, source="<state dict>", strict=True):
    """Check a state dict against a name map completely, then assign it.

    Args:
      name_map: NameMap of the model.
      state_dict: {torch key: np.ndarray}.
      source: name used in error messages.
      strict: True: unexpected keys are errors; False: they are only reported
        (missing, mis-shaped and mis-valued keys are always errors, because
        they would leave the model partly random).
    Returns: dict(assigned=int, unexpected=[keys], ignored=[keys],
      absent_buffers=[optional buffers / fixed kernels the file lacks]).
    Raises: CheckpointMismatchError listing every problem at once; nothing is
      assigned in that case.
    """
    missing, misshaped, misvalued, absent = [], [], [], []
    for key, target in name_map.targets.items():
        if key not in state_dict:
            (missing if target.required else absent).append(key)
        elif tuple(state_dict[key].shape) != target.torch_shape():
            misshaped.append((key, state_dict[key].shape, target.torch_shape()))
    for key, value in name_map.constants.items():
        if key not in state_dict:
            absent.append(key)
        elif state_dict[key].shape != value.shape:
            misshaped.append((key, state_dict[key].shape, value.shape))
        elif not np.allclose(state_dict[key], value, rtol=1e-6, atol=1e-7):
            misvalued.append((key, "fixed filter differs from this implementation's"))
    known = set(name_map.targets) | set(name_map.constants) | name_map.optional
    unexpected = [k for k in state_dict if k not in known]
    if missing or misshaped or misvalued or (strict and unexpected):
        raise CheckpointMismatchError(source, missing, unexpected if strict else (),
                                      misshaped, misvalued)

    pending = collections.OrderedDict()
    for key, target in name_map.targets.items():
        if key not in state_dict:
            continue
        value = target.transform.to_keras(np.asarray(state_dict[key]))
        var = target.variable
        if target.index is None:
            pending[id(var)] = (var, value)
        else:
            if id(var) not in pending:
                pending[id(var)] = (var, np.array(var.numpy()))
            pending[id(var)][1][target.index] = value
    for var, value in pending.values():
        var.assign(np.asarray(value, dtype=var.dtype))
    return {"assigned": len(name_map.targets) - len(
                [k for k in absent if k in name_map.targets]),
            "unexpected": unexpected,
            "ignored": [k for k in state_dict if k in name_map.optional],
            "absent_buffers": absent}


# ---------------------------------------------------------------- configs

def _count(state_dict, pattern):
    rx = re.compile(pattern)
    return len({m.group(1) for k in state_dict for m in [rx.fullmatch(k)] if m})


def infer_generator_config(state_dict):
    """Generator constructor kwargs from a ``g_ema`` state dict's shapes."""
    style_dim = state_dict["style.1.weight"].shape[1]
    n_mlp = _count(state_dict, r"style\.(\d+)\.weight")
    n_rgb = _count(state_dict, r"to_rgbs\.(\d+)\.conv\.weight")
    size = 2 ** (n_rgb + 2)
    channels = {4: int(state_dict["conv1.conv.weight"].shape[1])}
    for j in range(n_rgb):
        channels[2 ** (j + 3)] = int(state_dict[f"convs.{2 * j}.conv.weight"].shape[1])
    cm = 2
    if size >= 64:
        cm = max(1, channels[64] // 256)
    table = default_channels(cm)
    override = {r: c for r, c in channels.items() if table[r] != c}
    return dict(size=size, style_dim=int(style_dim), n_mlp=n_mlp,
                channel_multiplier=cm, channels=override or None)


def infer_idd_encoder_config(state_dict):
    """IDDEncoder constructor kwargs from its state dict."""
    n_trunk = _count(state_dict, r"mapping\.(\d+)\.weight")
    n_latents = _count(state_dict, r"heads\.(\d+)\.0\.weight")
    dim = int(state_dict["heads.0.0.weight"].shape[1])
    return dict(n_latents=n_latents, n_mlp=n_trunk + HEAD_DEPTH, dim=dim)


def infer_arcface_r50_config(state_dict):
    """IRSEBackbone constructor kwargs (units and channels per stage) from its state dict."""
    n_units = _count(state_dict, r"body\.(\d+)\.res_layer\.1\.weight")
    units, channels = [], []
    for u in range(n_units):
        depth = int(state_dict[f"body.{u}.res_layer.1.weight"].shape[0])
        if f"body.{u}.shortcut_layer.0.weight" in state_dict or not units:
            units.append(0)
            channels.append(depth)
        units[-1] += 1
    return dict(stage_units=tuple(units), stage_channels=tuple(channels),
                use_se="body.0.res_layer.6.fc1.weight" in state_dict,
                embedding_size=int(state_dict["output_layer.3.weight"].shape[0]))


def infer_arcface_mb_config(state_dict):
    """MobileFaceNet constructor kwargs from its state dict."""
    blocks = tuple(_count(state_dict, rf"{name}\.model\.(\d+)\.conv\.conv\.weight")
                   for name in ("conv_3", "conv_4", "conv_5"))
    return dict(embedding_size=int(state_dict["linear.weight"].shape[0]),
                residual_blocks=blocks)


_MODELS = {
    "generator": (Generator, generator_name_map, infer_generator_config),
    "idd_encoder": (IDDEncoder, idd_encoder_name_map, infer_idd_encoder_config),
    "arcface_r50": (IRSEBackbone, arcface_r50_name_map, infer_arcface_r50_config),
    "arcface_mb": (MobileFaceNet, arcface_mb_name_map, infer_arcface_mb_config),
}


def build_and_load(kind, path, config=None, strict=True, mean_latent_path=None,
                   subkey=None):
    """Build the Keras model of ``kind`` and fill it from a torch checkpoint.

    Args:
      kind: 'generator', 'idd_encoder', 'arcface_r50' or 'arcface_mb'.
      path: torch checkpoint.
      config: constructor kwargs; None: inferred from the checkpoint's shapes.
      strict: see ``assign_state_dict``.
      mean_latent_path: idd_encoder only: ``mean_wplus.pth`` to store in the model.
      subkey: state-dict key inside the file (default: 'g_ema' if present for
        the generator, the whole file otherwise).
    Returns: (model, config, report).
    """
    if kind not in _MODELS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS[:-1]}")
    cls, make_map, infer = _MODELS[kind]
    if subkey is not None:
        sd = load_state_dict(path, subkey=subkey)
    elif kind == "generator":
        sd = load_generator_state_dict(path)
    else:
        sd = load_state_dict(path)
    if config is None:
        try:
            config = infer(sd)
        except KeyError as err:
            raise CheckpointMismatchError(
                path, missing=[str(err.args[0])]) from None
    model = cls(**config)
    report = assign_state_dict(make_map(model), sd, source=path, strict=strict)
    if kind == "idd_encoder" and mean_latent_path:
        model.set_mean_latent(load_mean_latent(mean_latent_path))
    return model, config, report


def config_path_for(weights_path):
    """Sidecar path: 'x.weights.h5' -> 'x.config.json'."""
    return weights_path[:-len(WEIGHTS_SUFFIX)] + ".config.json"


def convert(kind, input_path, output_path, strict=True, mean_latent_path=None,
            subkey=None):
    """Convert one torch checkpoint file into a Keras weights file (or .npy).

    Args:
      kind: one of KINDS.
      input_path: torch checkpoint.
      output_path: '*.weights.h5' for models (config sidecar '*.config.json'
        written next to it), '*.npy' for kind 'mean_latent'.
    Returns: the report of ``assign_state_dict`` (models) or the array shape.
    """
    # A wrong suffix is refused up front (rather than added): the output is
    # then where the user said, or nowhere.
    if kind == "mean_latent":
        if not output_path.endswith(".npy"):
            raise DataFileError(output_path, "the mean_latent output must end in "
                                "'.npy'; nothing was written")
        arr = load_mean_latent(input_path)
        np.save(output_path, arr)
        return {"shape": arr.shape}
    if not output_path.endswith(WEIGHTS_SUFFIX):
        raise DataFileError(output_path, f"a model output must end in "
                            f"'{WEIGHTS_SUFFIX}'; nothing was written")
    model, config, report = build_and_load(kind, input_path, strict=strict,
                                           mean_latent_path=mean_latent_path,
                                           subkey=subkey)
    model.save_weights(output_path)
    with open(config_path_for(output_path), "w", encoding="utf-8") as f:
        json.dump({"kind": kind, "config": json_safe(config)}, f, indent=1)
    return report


def load_converted(weights_path):
    """Rebuild a model written by ``convert``. Returns (kind, model)."""
    with open(config_path_for(weights_path), encoding="utf-8") as f:
        meta = json.load(f)
    kind, config = meta["kind"], dict(meta["config"])
    if config.get("channels"):
        config["channels"] = {int(k): v for k, v in config["channels"].items()}
    model = _MODELS[kind][0](**config)
    model.load_weights(weights_path)
    return kind, model

"""Parity of the Keras attribute-recovery modules with PyTorch references.

Each torch reference (tests/reference/attr_torch_ref.py, original layout and key names)
is saved with torch.save in zip and legacy formats, read back through our
torch-free unpickler and converter, and compared on the same inputs (fixed
noise). Tolerance: 1e-4 absolute.
"""
import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.reference import attr_torch_ref as ref  # noqa: E402
from attr_recovery.conversion import convert_checkpoint as cc  # noqa: E402
from attr_recovery.conversion import torch_pickle  # noqa: E402
from attr_recovery.nets.equalized import EqualLinear, FusedLeakyReLU  # noqa: E402
from attr_recovery.nets.stylegan2 import Generator, ModulatedConv2d  # noqa: E402
from attr_recovery.nets.upfirdn import make_kernel, upfirdn2d  # noqa: E402

TOL = 1e-4
FORMATS = ("zip", "legacy")


def _save(obj, tmp_path, stem, fmt):
    path = tmp_path / f"{stem}_{fmt}.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    return str(path)


def _max_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("activation", [None, "fused_lrelu"])
@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equal_linear_parity(tmp_path, activation, lr_mul):
    torch.manual_seed(0)
    t = ref.randomize_(ref.EqualLinearT(24, 16, lr_mul=lr_mul, activation=activation))
    path = _save(t.state_dict(), tmp_path, "lin", "zip")
    k = EqualLinear(24, 16, lr_mul=lr_mul, activation=activation)
    nm = cc.NameMap()
    cc._add_equal_linear(nm, "lin", k)
    sd = {f"lin.{key}": v for key, v in cc.load_state_dict(path).items()}
    cc.assign_state_dict(nm, sd)
    x = np.random.default_rng(0).standard_normal((5, 24)).astype(np.float32)
    err = _max_err(k(x), t(torch.from_numpy(x)).detach().numpy())
    assert err <= TOL, err


def test_fused_leaky_relu_parity():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    layer = FusedLeakyReLU(7)
    layer.bias.assign(b)
    want = ref.fused_lrelu_ref(ref.nchw(x), torch.from_numpy(b))
    assert _max_err(layer(x), ref.nhwc(want)) <= 1e-6


@pytest.mark.parametrize("kernel", ["blur", "asymmetric"])
@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)),
                                         (2, 2, (0, 3)), (2, 1, (-1, 2)), (1, 1, (-2, 0))])
def test_upfirdn2d_parity(kernel, up, down, pad):
    rng = np.random.default_rng(2)
    k = make_kernel([1, 3, 3, 1]) * 4 if kernel == "blur" else \
        rng.standard_normal((4, 4)).astype(np.float32)
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    want = ref.upfirdn2d_ref(ref.nchw(x), torch.from_numpy(k), up=up, down=down, pad=pad)
    assert got.shape == ref.nhwc(want).shape
    assert _max_err(got, ref.nhwc(want)) <= 1e-5


@pytest.mark.parametrize("mode", ["plain", "upsample", "downsample", "no_demod", "1x1"])
def test_modulated_conv_parity(tmp_path, mode):
    torch.manual_seed(3)
    k = 1 if mode == "1x1" else 3
    kwargs = dict(upsample=mode == "upsample", downsample=mode == "downsample",
                  demodulate=mode != "no_demod")
    holder = torch.nn.Module()
    holder.conv = ref.randomize_(ref.ModConvT(6, 5, k, 8, **kwargs))
    path = _save(holder.state_dict(), tmp_path, "modconv", "legacy")
    layer = ModulatedConv2d(6, 5, k, 8, **kwargs)
    nm = cc.NameMap()
    cc._add_modconv(nm, "conv", layer)
    cc.assign_state_dict(nm, cc.load_state_dict(path))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8, 8, 6)).astype(np.float32)
    s = rng.standard_normal((3, 8)).astype(np.float32)
    want = ref.nhwc(holder.conv(ref.nchw(x), torch.from_numpy(s)))
    got = layer(x, s)
    assert got.shape == want.shape
    assert _max_err(got, want) <= TOL


def _torch_generator(size, style_dim, n_mlp, cm, channels=None, seed=4):
    torch.manual_seed(seed)
    return ref.randomize_(ref.GeneratorT(size, style_dim, n_mlp, cm, channels), seed).eval()


def test_generator_parity_size32(tmp_path, fmt="zip"):
    """Original channel table (512 up to 32 px), channel_multiplier 1, small style dim."""
    g_t = _torch_generator(32, 64, 2, 1)
    ckpt = {"g": g_t.state_dict(), "g_ema": g_t.state_dict(), "d": {"w": torch.ones(2)},
            "args": argparse.Namespace(size=32, latent=64), "ada_aug_p": 0.0}
    path = _save(ckpt, tmp_path, "gen32", fmt)
    g_k, config, report = cc.build_and_load("generator", path)
    assert config == dict(size=32, style_dim=64, n_mlp=2, channel_multiplier=2,
                          channels=None)
    assert report["unexpected"] == []
    rng = np.random.default_rng(5)
    w = rng.standard_normal((2, g_k.n_latent, 64)).astype(np.float32)
    with torch.no_grad():
        want = ref.nhwc(g_t(torch.from_numpy(w)))
    err_const = _max_err(g_k(w, noise_mode="const"), want)
    assert err_const <= TOL, err_const

    noise = [rng.standard_normal((2, 1, r, r)).astype(np.float32)
             for r in (g_k.noise_resolution(i) for i in range(g_k.num_layers))]
    with torch.no_grad():
        want = ref.nhwc(g_t(torch.from_numpy(w), [torch.from_numpy(n) for n in noise]))
    got = g_k(w, noise=[n.transpose(0, 2, 3, 1) for n in noise])
    assert _max_err(got, want) <= TOL

    # Z input through the mapping network, one code broadcast to every layer.
    z = rng.standard_normal((2, 64)).astype(np.float32)
    with torch.no_grad():
        w_t = g_t.style(torch.from_numpy(z))
        want = ref.nhwc(g_t(w_t[:, None].repeat(1, g_t.n_latent, 1)))
    got = g_k(z, input_is_latent=False, noise_mode="const")
    assert _max_err(got, want) <= TOL


@pytest.mark.parametrize("fmt", FORMATS)
def test_generator_parity_size64_custom_channels(tmp_path, fmt):
    channels = {4: 32, 8: 32, 16: 24, 32: 16, 64: 8}
    g_t = _torch_generator(64, 32, 8, 2, channels, seed=6)
    path = _save({"g_ema": g_t.state_dict()}, tmp_path, "gen64", fmt)
    g_k, config, _ = cc.build_and_load("generator", path)
    assert config["size"] == 64 and config["n_mlp"] == 8
    assert g_k.channels == channels
    w = np.random.default_rng(7).standard_normal((3, 10, 32)).astype(np.float32)
    with torch.no_grad():
        want = ref.nhwc(g_t(torch.from_numpy(w)))
    assert _max_err(g_k(w, noise_mode="const"), want) <= TOL


@pytest.mark.parametrize("fmt", FORMATS)
def test_idd_encoder_parity(tmp_path, fmt):
    torch.manual_seed(8)
    e_t = ref.randomize_(ref.IDDEncoderT(5, 6, dim=32), 8)
    path = _save(e_t.state_dict(), tmp_path, "idd", fmt)
    mean = torch.randn(1, 5, 32)
    mean_path = _save(mean, tmp_path, "mean", fmt)
    e_k, config, _ = cc.build_and_load("idd_encoder", path, mean_latent_path=mean_path)
    assert config == dict(n_latents=5, n_mlp=6, dim=32)
    z = np.random.default_rng(9).standard_normal((4, 32)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    with torch.no_grad():
        delta = e_t(torch.from_numpy(z))
    assert _max_err(e_k(z, add_mean=False), delta.numpy()) <= TOL
    assert _max_err(e_k(z), (mean + delta).numpy()) <= TOL


def test_arcface_r50_parity_reduced(tmp_path, fmt="legacy"):
    """IR-SE with 1/2/1/1 units per stage (stride-2 and identity-shortcut units)."""
    torch.manual_seed(10)
    b_t = ref.randomize_(ref.IRSEBackboneT((1, 2, 1, 1)), 10).eval()
    path = _save({"module." + k: v for k, v in b_t.state_dict().items()}, tmp_path,
                 "r50", fmt)
    b_k, config, report = cc.build_and_load("arcface_r50", path)
    assert config["stage_units"] == (1, 2, 1, 1)
    assert len(report["ignored"]) > 0          # num_batches_tracked
    x = np.random.default_rng(11).uniform(-1, 1, (2, 120, 100, 3)).astype(np.float32)
    with torch.no_grad():
        want = b_t(ref.nchw(x)).numpy()
    got = b_k(x)
    assert _max_err(got, want) <= TOL
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_arcface_mb_parity(tmp_path):
    """Full-size MobileFaceNet (2/3/6 residual blocks)."""
    torch.manual_seed(12)
    m_t = ref.randomize_(ref.MobileFaceNetT(), 12).eval()
    path = _save(m_t.state_dict(), tmp_path, "mb", "zip")
    m_k, config, _ = cc.build_and_load("arcface_mb", path)
    assert config == dict(embedding_size=512, residual_blocks=(2, 3, 6))
    x = np.random.default_rng(13).uniform(-1, 1, (2, 112, 112, 3)).astype(np.float32)
    with torch.no_grad():
        want = m_t(ref.nchw(x)).numpy()
    assert _max_err(m_k(x), want) <= TOL


def test_resize_align_corners_parity():
    from attr_recovery.nets.backbones import resize_align_corners
    x = np.random.default_rng(14).standard_normal((2, 37, 250, 3)).astype(np.float32)
    want = torch.nn.functional.interpolate(ref.nchw(x), (112, 112), mode="bilinear",
                                           align_corners=True)
    assert _max_err(resize_align_corners(x), ref.nhwc(want)) <= 1e-5


def test_full_size_parameter_counts():
    """Original sizes: generator 256 px cm 2, IDDEncoder(14, 8) (about 15.8 M)."""
    g_t = ref.GeneratorT(256, 512, 8, 2)
    g_k = Generator(256, 512, 8, channel_multiplier=2)
    n_t = sum(p.numel() for p in g_t.parameters())
    assert sum(int(np.prod(v.shape)) for v in g_k.trainable_weights) == n_t
    assert g_k.n_latent == 14
    nm = cc.generator_name_map(g_k)
    sd_shapes = {k: tuple(v.shape) for k, v in g_t.state_dict().items()}
    assert set(nm.keys()) == set(sd_shapes)
    for key, target in nm.targets.items():
        assert target.torch_shape() == sd_shapes[key], key

    from attr_recovery.nets.latent_transformer import IDDEncoder
    e_t = ref.IDDEncoderT(14, 8)
    e_k = IDDEncoder(14, 8)
    n_t = sum(p.numel() for p in e_t.parameters())
    assert n_t == 15_759_360
    assert sum(int(np.prod(v.shape)) for v in e_k.trainable_weights) == n_t


def test_torch_pickle_reads_what_torch_wrote(tmp_path):
    """Values, dtypes, views and strides of a mixed checkpoint in both formats."""
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    obj = {
        "view": base[1:5, 2:9:3], "t": base.t(), "same_storage": base[2],
        "f16": torch.randn(3, 4).half(), "bf16": torch.randn(5).bfloat16(),
        "f64": torch.randn(2, 2, dtype=torch.float64), "i64": torch.arange(7),
        "i32": torch.arange(4, dtype=torch.int32), "u8": torch.arange(5, dtype=torch.uint8),
        "i8": torch.tensor([-3, 4], dtype=torch.int8), "b": torch.tensor([True, False]),
        "c64": torch.randn(2, dtype=torch.complex64), "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.randn(2, 3)),
        "nested": [{"x": torch.ones(2)}, (torch.zeros(1), 3)],
        "args": argparse.Namespace(lr=0.002), "size": torch.Size([2, 3]),
        "dtype": torch.float16, "dev": torch.device("cpu"), "bytes": b"\x00\xff",
        "set": {1, 2}, "np": np.arange(4.0), "np_scalar": np.float32(1.5),
    }
    for path in ref.save_both(obj, tmp_path, "mixed"):
        got = torch_pickle.load(path)
        for key in ("view", "t", "same_storage", "f16", "f64", "i64", "i32", "u8", "i8",
                    "b", "c64", "scalar", "empty"):
            want = obj[key].numpy()
            assert got[key].dtype == want.dtype, key
            assert got[key].shape == want.shape, key
            np.testing.assert_array_equal(got[key], want, err_msg=key)
            assert got[key].flags.c_contiguous
        np.testing.assert_array_equal(got["bf16"], obj["bf16"].float().numpy())
        assert got["bf16"].dtype == np.float32
        np.testing.assert_array_equal(got["param"], obj["param"].detach().numpy())
        np.testing.assert_array_equal(got["nested"][0]["x"], np.ones(2, np.float32))
        assert got["nested"][1][1] == 3
        assert got["args"].lr == 0.002
        assert got["size"] == (2, 3) and got["dtype"] == "torch.float16"
        assert got["dev"] == "cpu" and got["bytes"] == b"\x00\xff" and got["set"] == {1, 2}
        np.testing.assert_array_equal(got["np"], np.arange(4.0))
        assert got["np_scalar"] == np.float32(1.5)
        assert list(torch_pickle.load(path, select="nested")[0]) == ["x"]
        with pytest.raises(KeyError, match="no key 'nope'"):
            torch_pickle.load(path, select="nope")


def test_torch_pickle_tensor_with_attributes(tmp_path):
    t = torch.randn(3)
    t.note = "kept by torch via _rebuild_from_type_v2"
    path = tmp_path / "attr.pt"
    torch.save({"t": t}, path)
    np.testing.assert_array_equal(torch_pickle.load(str(path))["t"], t.numpy())


def test_torch_pickle_refuses_real_malicious_save(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    for path in ref.save_both({"w": torch.ones(2), "evil": Evil()}, tmp_path, "evil"):
        with pytest.raises(torch_pickle.UnsafeCheckpointError, match="system"):
            torch_pickle.load(path)
    assert not marker.exists()

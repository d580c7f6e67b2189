"""Checkpoint converter: complete name maps, one error listing every problem, the CLI.

Torch-free: checkpoints are assembled with tests/reference/attr_forge.py from state dicts
shaped by the name maps (parity with real torch modules is in
test_attr_parity.py).
"""
import json

import numpy as np
import pytest
from absl.testing import flagsaver

from attr_recovery.cli import convert_checkpoint as convert_cli
from attr_recovery.conversion import convert_checkpoint as cc
from attr_recovery.nets.latent_transformer import IDDEncoder
from attr_recovery.nets.stylegan2 import Generator
from tests.reference import attr_forge as forge

SMALL_GEN = dict(size=8, style_dim=8, n_mlp=2, channels={4: 8, 8: 4})


def _fake_state_dict(name_map, seed=0):
    rng = np.random.default_rng(seed)
    sd = {k: rng.standard_normal(t.torch_shape()).astype(np.float32)
          for k, t in name_map.targets.items()}
    sd.update({k: v.astype(np.float32) for k, v in name_map.constants.items()})
    return sd


def test_error_lists_every_problem_and_assigns_nothing():
    g = Generator(**SMALL_GEN)
    nm = cc.generator_name_map(g)
    sd = _fake_state_dict(nm)
    del sd["conv1.noise.weight"], sd["style.1.bias"]
    sd["style.9.weight"] = np.zeros((8, 8), np.float32)
    sd["to_rgb1.bias"] = np.zeros((3,), np.float32)                  # torch is [1, 3, 1, 1]
    sd["convs.0.conv.weight"] = np.zeros((1, 4, 8, 3, 3), np.float32).transpose(0, 2, 1, 3, 4)
    sd["convs.0.conv.blur.kernel"] = np.ones((4, 4), np.float32)     # not the [1,3,3,1] blur
    before = g.const_input.const.numpy().copy()
    with pytest.raises(cc.CheckpointMismatchError) as err:
        cc.assign_state_dict(nm, sd, source="g.pt")
    e = err.value
    assert sorted(e.missing) == ["conv1.noise.weight", "style.1.bias"]
    assert e.unexpected == ["style.9.weight"]
    assert [k for k, _, _ in e.misshaped] == ["to_rgb1.bias", "convs.0.conv.weight"]
    assert [k for k, _ in e.misvalued] == ["convs.0.conv.blur.kernel"]
    msg = str(e)
    for text in ("g.pt", "missing keys (2)", "unexpected keys (1): style.9.weight",
                 "mis-shaped key to_rgb1.bias: checkpoint (3,), model expects (1, 3, 1, 1)",
                 "mis-valued key convs.0.conv.blur.kernel"):
        assert text in msg, text
    np.testing.assert_array_equal(g.const_input.const.numpy(), before)


def test_strict_false_tolerates_only_unexpected_keys():
    g = Generator(**SMALL_GEN)
    nm = cc.generator_name_map(g)
    sd = _fake_state_dict(nm)
    sd["extra"] = np.zeros(1, np.float32)
    report = cc.assign_state_dict(nm, sd, strict=False)
    assert report["unexpected"] == ["extra"]
    np.testing.assert_array_equal(g.const_input.const.numpy(),
                                  sd["input.input"].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(g.style.linears[1].weight.numpy(), sd["style.2.weight"].T)
    # fixed-noise and blur-kernel buffers may be absent (kept as initialised)
    del sd["noises.noise_2"], sd["to_rgbs.0.upsample.kernel"]
    report = cc.assign_state_dict(nm, sd, strict=False)
    assert report["absent_buffers"] == ["noises.noise_2", "to_rgbs.0.upsample.kernel"]
    del sd["input.input"]
    with pytest.raises(cc.CheckpointMismatchError, match="missing keys \\(1\\): input.input"):
        cc.assign_state_dict(nm, sd, strict=False)


def test_name_maps_cover_every_variable():
    from attr_recovery.nets.backbones import IRSEBackbone, MobileFaceNet
    models = [(Generator(**SMALL_GEN), cc.generator_name_map),
              (IDDEncoder(3, 5, dim=4), cc.idd_encoder_name_map),
              (IRSEBackbone((1, 2, 1, 1), (16, 32, 32, 64)), cc.arcface_r50_name_map),
              (MobileFaceNet(residual_blocks=(1, 1, 1)), cc.arcface_mb_name_map)]
    for model, make in models:
        mapped = {id(t.variable) for t in make(model).targets.values()}
        unmapped = [v.path for v in model.weights if id(v) not in mapped]
        # the mean latent comes from its own file (mean_wplus.pth)
        want = ["mean_latent"] if isinstance(model, IDDEncoder) else []
        assert [u.rsplit("/", 1)[-1] for u in unmapped] == want, unmapped


def test_prefix_strip_and_g_ema_selection(tmp_path):
    g = Generator(**SMALL_GEN)
    sd = _fake_state_dict(cc.generator_name_map(g))
    path = forge.write_checkpoint(tmp_path / "550000.pt",
                                  {"g_ema": {"module." + k: v for k, v in sd.items()},
                                   "d": {"x": np.zeros(1, np.float32)},
                                   "args": {"size": 8}}, "zip")
    got = cc.load_generator_state_dict(path)
    assert set(got) == set(sd)
    model, config, _ = cc.build_and_load("generator", path)
    assert config == dict(size=8, style_dim=8, n_mlp=2, channel_multiplier=2,
                          channels={4: 8, 8: 4})
    np.testing.assert_array_equal(model.noises[1].numpy(),
                                  sd["noises.noise_1"].transpose(0, 2, 3, 1))


def test_non_state_dicts_are_rejected(tmp_path):
    path = forge.write_checkpoint(tmp_path / "x.pt", {"a": {"b": np.ones(1, np.float32)}},
                                  "zip")
    with pytest.raises(Exception, match="not a flat state dict"):
        cc.load_state_dict(path)


def test_cli_converts_idd_encoder_and_mean_latent(tmp_path):
    enc = IDDEncoder(4, 5, dim=8)
    sd = _fake_state_dict(cc.idd_encoder_name_map(enc), seed=3)
    ckpt = forge.write_checkpoint(tmp_path / "id_delta.pth", sd, "legacy")
    mean = np.random.default_rng(4).standard_normal((1, 4, 8)).astype(np.float32)
    mean_path = forge.write_checkpoint(tmp_path / "mean_wplus.pth", mean, "zip")
    out = str(tmp_path / "idd.weights.h5")
    with flagsaver.flagsaver():
        convert_cli._define_flags()
        convert_cli.FLAGS(["prog", "--kind=idd_encoder", f"--input={ckpt}",
                           f"--output={out}", f"--mean_latent={mean_path}"])
        convert_cli.main(["prog"])
    meta = json.load(open(tmp_path / "idd.config.json"))
    assert meta == {"kind": "idd_encoder",
                    "config": {"n_latents": 4, "n_mlp": 5, "dim": 8}}
    kind, model = cc.load_converted(out)
    assert kind == "idd_encoder"
    np.testing.assert_array_equal(model.mean_latent.numpy(), mean[0])
    np.testing.assert_array_equal(model.heads[3].weight.numpy()[2], sd["heads.2.3.weight"].T)
    np.testing.assert_array_equal(model.trunk[0].bias.numpy(), sd["mapping.0.bias"])

    npy = str(tmp_path / "mean.npy")
    cc.convert("mean_latent", mean_path, npy)
    np.testing.assert_array_equal(np.load(npy), mean[0])
    with pytest.raises(ValueError, match=".weights.h5"):
        cc.convert("idd_encoder", ckpt, str(tmp_path / "x.h5"))

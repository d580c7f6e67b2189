"""The torch-free checkpoint reader: formats, tensor layout, and refusal of code.

Runs without torch: files are assembled by tests/reference/attr_forge.py. (Reading files
written by real torch is covered in test_attr_parity.py.)
"""
import os
import pickle
import zipfile

import numpy as np
import pytest

from attr_recovery.conversion import torch_pickle
from attr_recovery.conversion.torch_pickle import CheckpointFormatError, UnsafeCheckpointError
from tests.reference import attr_forge as forge

FORMATS = ("zip", "legacy")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("big_endian", [False, True])
def test_layouts_and_dtypes(tmp_path, fmt, big_endian):
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    obj = {
        "plain": base,
        # rows 1..4, every third column from 2: offset 12, strides (10, 3)
        "view": forge.Tensor(base, size=(4, 3), stride=(10, 3), offset=12),
        "transposed": forge.Tensor(base, size=(10, 6), stride=(1, 10)),
        "broadcast": forge.Tensor(base, size=(3, 10), stride=(0, 1), offset=20),
        "scalar": forge.Tensor(np.array([7.5], np.float32), size=(), stride=()),
        "empty": forge.Tensor(np.zeros(1, np.float32), size=(0, 4), stride=(4, 1)),
        "f16": np.array([1.5, -2.0], np.float16), "f64": np.array([1e300]),
        "i64": np.array([-(2 ** 40), 3]), "i32": np.array([5], np.int32),
        "u8": np.array([0, 255], np.uint8), "b": np.array([True, False]),
        "nested": [{"x": np.ones(2, np.float32)}, (1, "a", None, 2.5)],
    }
    path = forge.write_checkpoint(tmp_path / f"c_{fmt}.pt", obj, fmt, big_endian)
    got = torch_pickle.load(path)
    np.testing.assert_array_equal(got["plain"], base)
    np.testing.assert_array_equal(got["view"], base[1:5, 2:9:3])
    np.testing.assert_array_equal(got["transposed"], base.T)
    np.testing.assert_array_equal(got["broadcast"], np.tile(base[2], (3, 1)))
    assert got["scalar"].shape == () and got["scalar"] == 7.5
    assert got["empty"].shape == (0, 4)
    for key in ("f16", "f64", "i64", "i32", "u8", "b"):
        assert got[key].dtype == obj[key].dtype and got[key].dtype.isnative, key
        np.testing.assert_array_equal(got[key], obj[key])
    assert got["nested"][1] == (1, "a", None, 2.5)
    for arr in (got["view"], got["transposed"]):
        assert arr.flags.c_contiguous and arr.flags.writeable


@pytest.mark.parametrize("fmt", FORMATS)
def test_select_reads_only_the_subtree(tmp_path, fmt):
    obj = {"g_ema": {"w": np.ones(3, np.float32)}, "d": {"w": np.zeros(2, np.float32)}}
    path = forge.write_checkpoint(tmp_path / "s.pt", obj, fmt)
    assert list(torch_pickle.load(path, select="g_ema")) == ["w"]
    with pytest.raises(KeyError, match="available: \\['d', 'g_ema'\\]"):
        torch_pickle.load(path, select="g")


def _hostile_payloads(marker):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return {
        "os.system, protocol 2": pickle.dumps({"w": Evil()}, protocol=2),
        "os.system, protocol 4 (STACK_GLOBAL)": pickle.dumps(Evil(), protocol=4),
        "builtins.eval": b"\x80\x02c__builtin__\neval\nX\x04\x00\x00\x001+1\x85R.",
        "subprocess.Popen": b"\x80\x02csubprocess\nPopen\n)R.",
        "builtins.getattr": b"\x80\x02cbuiltins\ngetattr\n)R.",
        "torch.load itself": b"\x80\x02ctorch\nload\n)R.",
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_refuses_code_without_running_it(tmp_path, fmt):
    marker = tmp_path / "pwned"
    for what, payload in _hostile_payloads(marker).items():
        path = forge.write_checkpoint(tmp_path / f"evil_{fmt}.pt", {}, fmt,
                                      pickle_bytes=payload)
        with pytest.raises(UnsafeCheckpointError, match="refusing to load global") as err:
            torch_pickle.load(path)
        assert "must never run code" in str(err.value), what
    assert not marker.exists()


def test_refusal_message_names_the_global(tmp_path):
    path = forge.write_checkpoint(tmp_path / "e.pt", {}, "zip",
                                  pickle_bytes=b"\x80\x02cos\nsystem\n)R.")
    with pytest.raises(UnsafeCheckpointError, match="'os.system'"):
        torch_pickle.load(path)


@pytest.mark.parametrize("ops,match", [
    # BUILD on a shared allow-list token would change it for later loads.
    (b"\x80\x02ctorch\nFloatStorage\n}b.", "refusing to set the state"),
    (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b.", "refusing to set the state"),
    # a tensor "subclass" that is not torch.Tensor / Parameter
    (b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor_v2\n"
     b"ccollections\nOrderedDict\n)}tR.", "subclass"),
    # persistent ids other than storages (legacy pickled module source)
    (b"\x80\x02(X\x06\x00\x00\x00moduleX\x01\x00\x00\x00xtQ.", "persistent object"),
    (b"\x80\x02cnumpy\ndtype\nX\x01\x00\x00\x00O\x85R.", "numpy dtype"),
])
def test_refuses_hostile_structures(tmp_path, ops, match):
    path = forge.write_checkpoint(tmp_path / "h.pt", {}, "zip", pickle_bytes=ops)
    with pytest.raises(UnsafeCheckpointError, match=match):
        torch_pickle.load(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_out_of_bounds_views_are_refused(tmp_path, fmt):
    base = np.arange(12, dtype=np.float32)
    for bad in (forge.Tensor(base, size=(4, 4), stride=(4, 1)),
                forge.Tensor(base, size=(3,), stride=(1,), offset=10),
                forge.Tensor(base, size=(2,), stride=(-1,), offset=5)):
        path = forge.write_checkpoint(tmp_path / "oob.pt", {"w": bad}, fmt)
        with pytest.raises(CheckpointFormatError):
            torch_pickle.load(path)


def test_truncated_or_foreign_files(tmp_path):
    path = forge.write_checkpoint(tmp_path / "t.pt",
                                  {"w": forge.Tensor(np.ones(4, np.float32),
                                                     storage_numel=8)}, "zip")
    with pytest.raises(CheckpointFormatError, match="bytes"):
        torch_pickle.load(path)
    legacy = forge.write_checkpoint(tmp_path / "l.pt", {"w": np.ones(4, np.float32)},
                                    "legacy")
    data = open(legacy, "rb").read()
    (tmp_path / "short.pt").write_bytes(data[:-3])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        torch_pickle.load(str(tmp_path / "short.pt"))
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointFormatError, match="not a torch checkpoint"):
        torch_pickle.load(str(tmp_path / "text.pt"))
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("something/else.txt", "x")
    with pytest.raises(CheckpointFormatError, match="data.pkl"):
        torch_pickle.load(str(tmp_path / "z.zip"))


def test_allow_list_is_small_and_explicit():
    allowed = torch_pickle.allowed_globals()
    assert "torch._utils._rebuild_tensor_v2" in allowed
    assert "collections.OrderedDict" in allowed
    for name in allowed:
        assert name.split(".")[0] in ("torch", "collections", "builtins", "_codecs",
                                      "argparse", "numpy"), name
    assert not any(n.endswith(("system", "eval", "exec", "getattr", "Popen"))
                   for n in allowed)

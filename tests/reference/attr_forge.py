"""Write torch-format checkpoint files without torch (tests only).

Assembles the pickle opcodes torch.save emits (protocol 2, persistent storage
ids, ``torch._utils._rebuild_tensor_v2``) for plain Python structures holding
numpy arrays, in the zip or the legacy layout. This lets the checkpoint reader
and converter be tested on machines without torch, and lets tests craft
inconsistent or hostile files on purpose.
"""
import io
import pickle
import struct
import zipfile

import numpy as np

STORAGE_TYPES = {
    np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage",
    np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Raw:
    """Opcodes inserted verbatim (must leave exactly one object on the stack)."""

    def __init__(self, ops):
        self.ops = ops


class Tensor:
    """An array stored as a torch tensor; size/stride/offset may be overridden."""

    def __init__(self, array, size=None, stride=None, offset=0, storage_numel=None):
        self.array = np.ascontiguousarray(array)
        self.size = tuple(self.array.shape) if size is None else tuple(size)
        self.stride = (tuple(s // self.array.itemsize for s in self.array.strides)
                       if stride is None else tuple(stride))
        self.offset = offset
        self.storage_numel = self.array.size if storage_numel is None else storage_numel


def op_global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(i):
    if -2 ** 31 <= i < 2 ** 31:
        return b"J" + struct.pack("<i", i)
    return pickle.dumps(i, protocol=2)[2:-1]


def op_tuple(items):
    return b"(" + b"".join(items) + b"t"


class _Writer:
    def __init__(self, legacy, big_endian):
        self.legacy = legacy
        self.big_endian = big_endian
        self.storages = []      # (key, numel, bytes)

    def ops(self, obj):
        if isinstance(obj, Raw):
            return obj.ops
        if isinstance(obj, np.ndarray):
            obj = Tensor(obj)
        if isinstance(obj, Tensor):
            return self.tensor(obj)
        if isinstance(obj, dict):
            body = b"".join(self.ops(k) + self.ops(v) for k, v in obj.items())
            return b"}" + (b"(" + body + b"u" if obj else b"")
        if isinstance(obj, list):
            return b"]" + (b"(" + b"".join(self.ops(v) for v in obj) + b"e" if obj else b"")
        if isinstance(obj, tuple):
            return op_tuple([self.ops(v) for v in obj])
        if isinstance(obj, bool):
            return b"\x88" if obj else b"\x89"
        if isinstance(obj, int):
            return op_int(obj)
        if isinstance(obj, str):
            return op_str(obj)
        if obj is None:
            return b"N"
        if isinstance(obj, float):
            return b"G" + struct.pack(">d", obj)
        raise TypeError(type(obj))

    def tensor(self, t):
        key = str(len(self.storages))
        dtype = t.array.dtype.newbyteorder(">" if self.big_endian else "<")
        data = t.array.astype(dtype).tobytes()
        self.storages.append((key, t.storage_numel, data))
        pid = [op_str("storage"), op_global("torch", STORAGE_TYPES[t.array.dtype]),
               op_str(key), op_str("cpu"), op_int(t.storage_numel)]
        if self.legacy:
            pid.append(b"N")
        return (op_global("torch._utils", "_rebuild_tensor_v2") + b"("
                + op_tuple(pid) + b"Q" + op_int(t.offset)
                + op_tuple([op_int(s) for s in t.size])
                + op_tuple([op_int(s) for s in t.stride])
                + b"\x89" + op_global("collections", "OrderedDict") + b")R" + b"tR")


def dumps(obj, legacy=False, big_endian=False):
    """(pickle bytes, [(storage key, numel, raw bytes)]) for ``obj``."""
    w = _Writer(legacy, big_endian)
    return b"\x80\x02" + w.ops(obj) + b".", w.storages


def write_checkpoint(path, obj, fmt="zip", big_endian=False, pickle_bytes=None):
    """Write ``obj`` like torch.save would (fmt 'zip' or 'legacy').

    ``pickle_bytes`` replaces the main pickle (storages of ``obj`` still written).
    """
    legacy = fmt == "legacy"
    main, storages = dumps(obj, legacy=legacy, big_endian=big_endian)
    if pickle_bytes is not None:
        main = pickle_bytes
    path = str(path)
    if not legacy:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("archive/data.pkl", main)
            zf.writestr("archive/byteorder", "big" if big_endian else "little")
            for key, _, data in storages:
                zf.writestr(f"archive/data/{key}", data)
            zf.writestr("archive/version", "3\n")
        return path
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001,
                   {"protocol_version": 1001, "little_endian": not big_endian,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        buf.write(pickle.dumps(header, protocol=2))
    buf.write(main)
    buf.write(pickle.dumps([key for key, _, _ in storages], protocol=2))
    for _, numel, data in storages:
        buf.write(struct.pack(">q" if big_endian else "<q", numel))
        buf.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path

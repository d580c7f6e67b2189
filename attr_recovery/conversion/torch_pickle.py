"""Read PyTorch checkpoint files (``torch.save``) without importing torch.

A checkpoint is a pickle, and an ordinary unpickler runs whatever callable a
pickle names. This reader resolves every global a pickle asks for through a
fixed allow-list of *our own* stand-ins (tensor rebuilders that only record
metadata, storage-type tokens, plain containers); any other global, e.g.
``os.system``, stops loading with ``UnsafeCheckpointError`` before anything is
called. The allow-list is what ``torch.save`` really writes for state dicts,
parameters, tensors with attributes, ``torch.Size`` / ``torch.device`` /
dtypes, bytes, sets, and the ``argparse.Namespace`` that training scripts store
(read into a ``types.SimpleNamespace``), plus numpy scalars and arrays of plain
numeric dtypes. Found by disassembling files written by torch 2.13.

Formats:
- zip (torch >= 1.6 default): ``<name>/data.pkl`` + ``<name>/data/<key>``
  raw little- (or big-, per ``<name>/byteorder``) endian storages;
- legacy (``_use_new_zipfile_serialization=False``): pickled magic number,
  protocol 1001, system info, the object, the storage key list, then each
  storage as an int64 element count followed by its bytes. (The pre-1.0 tar
  format is refused.)

Tensors come back as numpy arrays (C-contiguous copies) honouring storage
offset, sizes and strides (bounds-checked against the storage). dtypes:
float32/float64/float16/int*/uint*/bool/complex keep their numpy dtype;
bfloat16 (no numpy dtype) is widened exactly to float32. Quantized, sparse,
nested and meta tensors are refused.

Storages are read lazily: ``load(path, select='g_ema')`` unpickles the whole
structure but reads only the storages of tensors under the selected key.
"""
import collections
import io
import pickle
import struct
import tarfile
import types
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

import numpy as np

from interp_fr.common.errors import InputError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafeCheckpointError(pickle.UnpicklingError, InputError):
    """The checkpoint asks for a global outside the allow-list; nothing was run."""


class CheckpointFormatError(ValueError, InputError):
    """The file is not a readable torch checkpoint (or is corrupt)."""


# ---------------------------------------------------------------- stand-ins

class _Frozen:
    """Base of stand-ins a pickle must not modify.

    The pickle BUILD opcode calls ``__setstate__`` when an object has one;
    raising there stops a checkpoint from rewriting (process-wide) allow-list
    objects or the metadata of tensors already read.
    """

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafeCheckpointError(
            f"refusing to set the state of {type(self).__name__} from a checkpoint")


class _Callable(_Frozen):
    """Wraps an allowed function so that a pickle cannot set its attributes."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return f"<allowed {self.fn.__name__}>"


# ---------------------------------------------------------------- dtypes

class _DType(_Frozen):
    """Stand-in for a torch dtype (``torch.float16`` ...)."""

    __slots__ = ("name", "np_dtype", "itemsize")

    def __init__(self, name, np_dtype, itemsize):
        self.name = name
        self.np_dtype = np_dtype      # None: needs special handling (bfloat16)
        self.itemsize = itemsize

    def __repr__(self):
        return f"torch.{self.name}"


_DTYPES = {}
for _name, _np, _size, _aliases in [
        ("float32", np.float32, 4, ("float",)),
        ("float64", np.float64, 8, ("double",)),
        ("float16", np.float16, 2, ("half",)),
        ("bfloat16", None, 2, ()),
        ("int64", np.int64, 8, ("long",)),
        ("int32", np.int32, 4, ("int",)),
        ("int16", np.int16, 2, ("short",)),
        ("int8", np.int8, 1, ()),
        ("uint8", np.uint8, 1, ()),
        ("uint16", np.uint16, 2, ()),
        ("uint32", np.uint32, 4, ()),
        ("uint64", np.uint64, 8, ()),
        ("bool", np.bool_, 1, ()),
        ("complex64", np.complex64, 8, ("cfloat",)),
        ("complex128", np.complex128, 16, ("cdouble",))]:
    _DTYPES[_name] = _DType(_name, _np, _size)
    for _alias in _aliases:
        _DTYPES[_alias] = _DTYPES[_name]


class _StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` etc.: only carries the dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.name}"


_STORAGE_TYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    # torch >= 2 writes UntypedStorage (byte counts) with _rebuild_tensor_v3,
    # which then names the element dtype itself.
    "UntypedStorage": "uint8",
}


class _TypeToken(_Frozen):
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` as a class object."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_TENSOR_TYPE = _TypeToken("torch.Tensor")
_PARAMETER_TYPE = _TypeToken("torch.nn.Parameter")


# ---------------------------------------------------------------- lazy tensors

class _StorageRef(_Frozen):
    """One storage of the checkpoint: key, dtype, element count, element offset."""

    __slots__ = ("key", "dtype", "numel", "elem_offset")

    def __init__(self, key, dtype, numel, elem_offset=0):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.elem_offset = elem_offset


class LazyTensor(_Frozen):
    """A tensor found in the pickle whose bytes are not read yet.

    Attributes: ``shape`` (tuple), ``dtype`` (torch dtype name), ``requires_grad``.
    """

    __slots__ = ("storage", "offset", "shape", "stride", "dtype_obj",
                 "requires_grad", "attributes")

    def __init__(self, storage, offset, shape, stride, dtype_obj, requires_grad):
        self.storage = storage
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.stride = tuple(int(s) for s in stride)
        self.dtype_obj = dtype_obj
        self.requires_grad = bool(requires_grad)
        self.attributes = None

    @property
    def dtype(self):
        return self.dtype_obj.name

    def __repr__(self):
        return f"LazyTensor(shape={self.shape}, dtype={self.dtype})"


def _as_tuple(v, what):
    if not isinstance(v, (tuple, list)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of ints, got {v!r}")
    return tuple(v)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _StorageRef):
        raise CheckpointFormatError(f"tensor storage must be a storage reference, "
                                    f"got {type(storage).__name__}")
    if not isinstance(storage_offset, int):
        raise CheckpointFormatError(f"storage offset must be an int, got {storage_offset!r}")
    return LazyTensor(storage, storage_offset, _as_tuple(size, "size"),
                      _as_tuple(stride, "stride"), storage.dtype, False)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    t.requires_grad = bool(requires_grad)
    return t


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad,
                       backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, _DType):
        raise CheckpointFormatError(f"tensor dtype must be a torch dtype, got {dtype!r}")
    t = _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad)
    t.dtype_obj = dtype
    return t


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None):
    if not isinstance(data, LazyTensor):
        raise CheckpointFormatError("parameter data must be a tensor")
    data.requires_grad = bool(requires_grad)
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad)


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3,
               _rebuild_parameter, _rebuild_parameter_with_state)


def _rebuild_from_type_v2(func, new_type, args, state):
    # torch uses this for tensors carrying Python attributes (t.foo = ...)
    # and for tensor subclasses; only plain tensors / parameters are accepted.
    if (not isinstance(func, _Callable) or func.fn not in _REBUILDERS
            or new_type not in (_TENSOR_TYPE, _PARAMETER_TYPE)):
        raise UnsafeCheckpointError(
            f"refusing tensor subclass rebuild ({func!r}, {new_type!r})")
    t = func(*args)
    if state:
        t.attributes = dict(state) if isinstance(state, dict) else state
    return t


def _refuse_kind(kind):
    def refuse(*args, **kwargs):
        raise CheckpointFormatError(f"{kind} tensors are not supported")
    return refuse


# ---------------------------------------------------------------- misc stand-ins

def _codecs_encode(text, encoding="latin1"):
    # Protocol-2 pickles (torch's default) spell bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"refusing _codecs.encode({type(text).__name__}, "
                                    f"{encoding!r})")
    return text.encode("latin1")


def _torch_size(dims=()):
    return tuple(_as_tuple(tuple(dims), "torch.Size"))


def _torch_device(kind, index=None):
    if not isinstance(kind, str) or not (index is None or isinstance(index, int)):
        raise CheckpointFormatError(f"bad torch.device({kind!r}, {index!r})")
    return kind if index is None else f"{kind}:{index}"


def _safe_bytearray(data=b""):
    if not isinstance(data, (bytes, bytearray, list)):
        raise UnsafeCheckpointError("bytearray only from bytes or a list")
    return bytearray(data)


class _NumpyDType:
    """Stand-in for ``numpy.dtype(spec)``: plain numeric dtypes only."""

    def __init__(self, spec, align=False, copy=True):
        dt = np.dtype(spec) if isinstance(spec, str) and len(spec) <= 4 else None
        if dt is None or dt.kind not in "biufc":
            raise UnsafeCheckpointError(f"refusing numpy dtype {spec!r}")
        self.dtype = dt

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|"):
            if state[1] != "|":
                self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(dtype, data=None):
    if (not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes)
            or not isinstance(getattr(dtype, "dtype", None), np.dtype)):
        raise UnsafeCheckpointError("refusing numpy scalar with non-numeric data")
    if len(data) != dtype.dtype.itemsize:
        raise CheckpointFormatError("numpy scalar byte count mismatch")
    return np.frombuffer(data, dtype=dtype.dtype)[0].astype(dtype.dtype.newbyteorder("="))


class _NumpyArray:
    """Stand-in for ``numpy.ndarray`` under reconstruction; becomes an array in BUILD."""

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        try:
            _, shape, dtype, fortran, raw = state
        except (TypeError, ValueError):
            raise CheckpointFormatError("bad numpy array state") from None
        if (not isinstance(dtype, _NumpyDType) or not isinstance(raw, (bytes, bytearray))
                or not isinstance(getattr(dtype, "dtype", None), np.dtype)):
            raise UnsafeCheckpointError("refusing numpy array with non-numeric data")
        shape = _as_tuple(tuple(shape), "numpy shape")
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dtype.dtype.itemsize:
            raise CheckpointFormatError("numpy array byte count mismatch")
        arr = np.frombuffer(bytes(raw), dtype=dtype.dtype).reshape(
            shape, order="F" if fortran else "C")
        self.array = arr.astype(dtype.dtype.newbyteorder("="), copy=True)


def _numpy_reconstruct(cls, shape, typecode):
    if cls is not _NumpyArray:
        raise UnsafeCheckpointError("refusing numpy _reconstruct of a non-ndarray")
    return _NumpyArray()


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): _safe_bytearray,
    ("_codecs", "encode"): _codecs_encode,
    ("argparse", "Namespace"): types.SimpleNamespace,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._utils", "_rebuild_qtensor"): _refuse_kind("quantized"),
    ("torch._utils", "_rebuild_sparse_tensor"): _refuse_kind("sparse"),
    ("torch._utils", "_rebuild_nested_tensor"): _refuse_kind("nested"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _refuse_kind("meta"),
    ("torch._utils", "_rebuild_wrapper_subclass"): _refuse_kind("wrapper-subclass"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): _refuse_kind("numpy-backed"),
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
}
for _name, _dt in _STORAGE_TYPES.items():
    _ALLOWED[("torch", _name)] = _StorageType(_name, _DTYPES[_dt])
_ALLOWED[("torch.storage", "UntypedStorage")] = _ALLOWED[("torch", "UntypedStorage")]
for _name, _dt in _DTYPES.items():
    _ALLOWED[("torch", _name)] = _dt
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "scalar")] = _numpy_scalar
    _ALLOWED[(_mod, "_reconstruct")] = _numpy_reconstruct
_ALLOWED[("numpy", "dtype")] = _NumpyDType
_ALLOWED[("numpy", "ndarray")] = _NumpyArray


def allowed_globals():
    """Sorted 'module.name' strings the unpickler accepts."""
    return sorted(f"{m}.{n}" for m, n in _ALLOWED)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that maps globals through ``_ALLOWED`` and storages to refs."""

    def __init__(self, file, source, storage_factory):
        super().__init__(file, encoding="utf-8")
        self._source = source
        self._storage_factory = storage_factory

    def find_class(self, module, name):
        # Protocol-2 pickles use Python 2 names (__builtin__.set); map them the
        # way the stock unpickler's find_class would.
        if (module, name) in NAME_MAPPING:
            module, name = NAME_MAPPING[(module, name)]
        elif module in IMPORT_MAPPING:
            module = IMPORT_MAPPING[module]
        try:
            obj = _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to load global '{module}.{name}' from {self._source}: a "
                "checkpoint may only hold tensors, storages and plain containers, "
                "and loading must never run code") from None
        if isinstance(obj, types.FunctionType):
            return _Callable(obj)
        return obj

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointFormatError(f"bad persistent id {pid!r} in {self._source}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage":
            raise UnsafeCheckpointError(
                f"refusing persistent object of kind {kind!r} in {self._source} "
                "(only storages are allowed)")
        return self._storage_factory(pid[1:])


# ---------------------------------------------------------------- materialising

def _to_numpy(tensor, read_storage, big_endian):
    ref = tensor.storage
    dt = tensor.dtype_obj
    if (not isinstance(ref, _StorageRef) or not isinstance(dt, _DType)
            or not isinstance(ref.dtype, _DType)):
        raise CheckpointFormatError("corrupt tensor record")
    shape = _as_tuple(tensor.shape, "size")
    stride = _as_tuple(tensor.stride, "stride")
    if not isinstance(tensor.offset, int) or not isinstance(ref.elem_offset, int) \
            or ref.elem_offset < 0:
        raise CheckpointFormatError("corrupt tensor offset")
    if len(shape) != len(stride):
        raise CheckpointFormatError(f"size {shape} and stride {stride} differ in rank")
    if any(s < 0 for s in shape) or any(s < 0 for s in stride) or tensor.offset < 0:
        raise CheckpointFormatError(f"negative size/stride/offset in tensor {shape}")
    raw_dtype = np.dtype(np.uint16) if dt.np_dtype is None else np.dtype(dt.np_dtype)
    if big_endian:
        raw_dtype = raw_dtype.newbyteorder(">")
    storage_bytes = read_storage(ref.key)
    itemsize = raw_dtype.itemsize
    # The storage element size can differ from the tensor's (untyped storages).
    n_elems = (len(storage_bytes) - ref.elem_offset * ref.dtype.itemsize) // itemsize
    start = tensor.offset + ref.elem_offset * ref.dtype.itemsize // itemsize
    if 0 in shape:
        arr = np.zeros(shape, dtype=raw_dtype)
    else:
        last = start + sum((n - 1) * s for n, s in zip(shape, stride))
        if last >= n_elems:
            raise CheckpointFormatError(
                f"tensor of size {shape}, stride {stride}, offset {tensor.offset} "
                f"reads past its storage '{ref.key}' ({n_elems} elements)")
        flat = np.frombuffer(storage_bytes, dtype=raw_dtype, count=n_elems)
        arr = np.lib.stride_tricks.as_strided(
            flat[start:], shape=shape, strides=[s * itemsize for s in stride],
            writeable=False).copy()
    arr = arr.astype(raw_dtype.newbyteorder("="), copy=False)
    if dt.np_dtype is None:
        # bfloat16 is the top half of a float32: widening is exact.
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _materialize(obj, read_storage, big_endian, memo):
    oid = id(obj)
    if oid in memo:
        return memo[oid]
    if isinstance(obj, LazyTensor):
        out = _to_numpy(obj, read_storage, big_endian)
    elif isinstance(obj, _NumpyArray):
        out = getattr(obj, "array", None)
        if out is None:
            raise CheckpointFormatError("numpy array without data")
    elif isinstance(obj, _DType):
        out = repr(obj)
    elif isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, (collections.OrderedDict,)) else {}
        memo[oid] = out
        for k, v in obj.items():
            out[k] = _materialize(v, read_storage, big_endian, memo)
        return out
    elif isinstance(obj, list):
        out = []
        memo[oid] = out
        out.extend(_materialize(v, read_storage, big_endian, memo) for v in obj)
        return out
    elif isinstance(obj, tuple):
        out = tuple(_materialize(v, read_storage, big_endian, memo) for v in obj)
    elif isinstance(obj, types.SimpleNamespace):
        out = types.SimpleNamespace()
        memo[oid] = out
        for k, v in vars(obj).items():
            setattr(out, k, _materialize(v, read_storage, big_endian, memo))
        return out
    else:
        out = obj
    memo[oid] = out
    return out


def _select(obj, select):
    if select is None:
        return obj
    keys = select.split("/") if isinstance(select, str) else list(select)
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            have = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise KeyError(f"checkpoint has no key {key!r} (select={select!r}); "
                           f"available: {have}")
        obj = obj[key]
    return obj


# ---------------------------------------------------------------- formats

def _load_zip(path, select):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise CheckpointFormatError(
                f"{path}: zip checkpoint must hold exactly one '<name>/data.pkl', "
                f"found {pkl}")
        prefix = pkl[0][:-len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            order = zf.read(prefix + "byteorder").decode("ascii").strip()
            if order not in ("little", "big"):
                raise CheckpointFormatError(f"{path}: unknown byteorder {order!r}")
            big_endian = order == "big"
        storages = {}

        def make_storage(args):
            if len(args) != 4:
                raise CheckpointFormatError(f"{path}: bad storage id {args!r}")
            storage_type, key, _location, numel = args
            if not isinstance(storage_type, _StorageType):
                raise CheckpointFormatError(f"{path}: bad storage type {storage_type!r}")
            key = str(key)
            if key not in storages:
                storages[key] = _StorageRef(key, storage_type.dtype, int(numel))
            return storages[key]

        unpickler = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path, make_storage)
        obj = _select(unpickler.load(), select)
        cache = {}

        def read_storage(key):
            if key not in cache:
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise CheckpointFormatError(f"{path}: storage record {name} missing")
                data = zf.read(name)
                ref = storages[key]
                if len(data) < ref.numel * ref.dtype.itemsize:
                    raise CheckpointFormatError(
                        f"{path}: storage {key} has {len(data)} bytes, expected "
                        f"{ref.numel * ref.dtype.itemsize}")
                cache[key] = data[:ref.numel * ref.dtype.itemsize]
            return cache[key]

        return _materialize(obj, read_storage, big_endian, {})


def _load_legacy(path, select):
    with open(path, "rb") as f:
        def plain_load():
            return _RestrictedUnpickler(f, path, _no_storage).load()

        def _no_storage(args):
            raise CheckpointFormatError(f"{path}: storage outside the main object")

        try:
            magic = plain_load()
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            if isinstance(err, UnsafeCheckpointError):
                raise
            raise CheckpointFormatError(f"{path}: not a torch checkpoint ({err})") from None
        if magic != LEGACY_MAGIC_NUMBER:
            raise CheckpointFormatError(f"{path}: not a torch checkpoint (bad magic number)")
        protocol = plain_load()
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise CheckpointFormatError(f"{path}: unsupported legacy protocol {protocol!r}")
        sys_info = plain_load()
        big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False

        roots = {}
        views = {}

        def make_storage(args):
            if len(args) != 5:
                raise CheckpointFormatError(f"{path}: bad legacy storage id {args!r}")
            storage_type, root_key, _location, numel, view_metadata = args
            if not isinstance(storage_type, _StorageType):
                raise CheckpointFormatError(f"{path}: bad storage type {storage_type!r}")
            root_key = str(root_key)
            if root_key not in roots:
                roots[root_key] = _StorageRef(root_key, storage_type.dtype, int(numel))
            root = roots[root_key]
            if view_metadata is None:
                return root
            view_key, offset, view_size = view_metadata
            if (str(view_key), root_key) not in views:
                views[(str(view_key), root_key)] = _StorageRef(
                    root_key, root.dtype, int(view_size), int(offset))
            return views[(str(view_key), root_key)]

        obj = _RestrictedUnpickler(f, path, make_storage).load()
        keys = plain_load()
        if not isinstance(keys, list):
            raise CheckpointFormatError(f"{path}: bad legacy storage key list")
        count_fmt = ">q" if big_endian else "<q"
        # Storages follow in key order: int64 element count, then the bytes.
        # Record where each one lies and read only the ones needed.
        locations = {}
        for key in keys:
            key = str(key)
            if key not in roots:
                raise CheckpointFormatError(f"{path}: storage {key} not referenced")
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointFormatError(f"{path}: truncated storage {key}")
            (count,) = struct.unpack(count_fmt, header)
            nbytes = count * roots[key].dtype.itemsize
            if count != roots[key].numel:
                raise CheckpointFormatError(f"{path}: storage {key} holds {count} "
                                            f"elements, expected {roots[key].numel}")
            locations[key] = (f.tell(), nbytes)
            f.seek(nbytes, io.SEEK_CUR)
        obj = _select(obj, select)
        cache = {}

        def read_storage(key):
            if key not in cache:
                if key not in locations:
                    raise CheckpointFormatError(f"{path}: storage {key} has no data")
                pos, nbytes = locations[key]
                f.seek(pos)
                data = f.read(nbytes)
                if len(data) != nbytes:
                    raise CheckpointFormatError(f"{path}: truncated storage {key}")
                cache[key] = data
            return cache[key]

        return _materialize(obj, read_storage, big_endian, {})


def load(path, select=None):
    """Load a torch checkpoint into nested Python containers of numpy arrays.

    Args:
      path: file written by ``torch.save`` (zip or legacy format).
      select: optional key (``'g_ema'``), ``'a/b'`` path or list of keys into
        nested dicts; only the selected part is returned and only its tensor
        bytes are read.

    Returns:
      the saved object with tensors (and parameters) as numpy arrays; dicts,
      OrderedDicts, lists, tuples, sets, numbers and strings as saved;
      ``argparse.Namespace`` as ``types.SimpleNamespace``; torch dtypes as
      strings like 'torch.float16'; ``torch.Size`` as tuple; ``torch.device``
      as string.

    Raises:
      UnsafeCheckpointError: the pickle names a global outside the allow-list
        (nothing from it has been called).
      CheckpointFormatError: not a torch checkpoint or inconsistent contents.
      KeyError: ``select`` names a missing key.
    """
    path = str(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path, select)
    if tarfile.is_tarfile(path):
        raise CheckpointFormatError(f"{path}: the pre-1.0 tar checkpoint format is "
                                    "not supported")
    return _load_legacy(path, select)

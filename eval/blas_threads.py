"""Limit OpenBLAS's threads for a block of NumPy work (best effort).

Used by the IJB-A / IJB-C evaluations, whose many small and medium matrix
products slow down several times when OpenBLAS threads spin for cores that other
jobs hold.
"""
import contextlib
import functools
import os


_BLAS_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
                 "scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_")


@functools.lru_cache(maxsize=None)
def _loaded_openblas():
    """(setter, getter) pairs of the OpenBLAS libraries loaded in this process."""
    import ctypes
    found = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if line.count("/")}
    except OSError:
        return ()
    for path in sorted(paths):
        if "openblas" not in os.path.basename(path).lower():
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _BLAS_SETTERS:
            setter = getattr(lib, name, None)
            getter = getattr(lib, name.replace("set_", "get_"), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return tuple(found)


@contextlib.contextmanager
def blas_threads(n):
    """Temporarily limits OpenBLAS to ``n`` threads (best effort; ``None`` = no change).

    The evaluation is many small and medium matrix products. On a machine whose
    cores are busy, OpenBLAS worker threads that spin waiting for a core make
    those products many times slower (measured 3-10x here with 2 cores shared by
    other jobs); one thread is never much slower. Only OpenBLAS (the library
    numpy's wheels ship) is handled; elsewhere this does nothing.
    """
    libs = _loaded_openblas() if n else []
    before = [getter() for _, getter in libs]
    for setter, _ in libs:
        setter(int(n))
    try:
        yield
    finally:
        for (setter, _), old in zip(libs, before):
            setter(old)

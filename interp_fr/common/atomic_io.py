"""Atomic file output: a reader never sees a half-written file.

Every output of the project (features, checkpoints, reports, data files) is
written to a temporary file in the destination folder and moved into place with
``os.replace``, which is atomic on POSIX and Windows when both paths are on the
same file system. A crash therefore leaves either the old file or the new one.
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Opens a temporary file that replaces ``path`` when the block succeeds.

    Args:
        path: destination file path. Its folder is created if missing.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Yields:
        The open temporary file object. If the block raises, the temporary file
        is removed and ``path`` is left untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports modes 'wb' and 'w', not {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_save_text(path, text):
    """Writes ``text`` (str) to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def atomic_save_keras_weights(model, path):
    """``model.save_weights(path)`` atomically (``path`` ends in .weights.h5).

    Keras insists on the suffix, so the temporary name in the same folder keeps
    it; the finished file replaces ``path`` in one step.
    """
    path = os.fspath(path)
    if not path.endswith(KERAS_WEIGHTS_SUFFIX):
        raise ValueError(f"Keras weights files must end in '{KERAS_WEIGHTS_SUFFIX}', "
                         f"got {path}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp" + KERAS_WEIGHTS_SUFFIX,
                               dir=folder)
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path

"""The exception types for bad input, and the one check for non-finite values."""
import numpy as np

# Bad rows named in a message; more would make the one error line unreadable.
MAX_ROWS_NAMED = 5


class InputError(Exception):
    """Marks an exception as "the user's input is wrong", not a bug.

    A mixin: each input error keeps its usual base (mostly ``ValueError``) and
    adds this one. Command lines (`interp_fr.common.cli.run`) report any ``InputError``
    as one line, ``error: <message>``, and exit with status 2; other exceptions
    keep their traceback. So the message must say everything the user needs:
    the file, and what is wrong with it.
    """


class DataFileError(ValueError, InputError):
    """A data or side file is missing, malformed, or inconsistent.

    The message always starts with the offending file's path, then says what is
    wrong, so that a user with many files knows which one to fix.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def check_finite(path, values, what="values", unit="row", numbers=None,
                 stream=False):
    """Refuses NaN or infinite values, naming the first rows that hold them.

    A NaN in a feature or map file does not stop the computations downstream:
    it silently changes their results. So every float input is checked when it
    is read. Integer arrays (images) cannot hold NaN and pass at no cost.

    Args:
        path: the file the values came from (named in the message).
        values: array; its first axis is the rows (a 1-D array: one value a row).
        what: what the values are, for the message ("feature values").
        unit: what a row is called, singular ("line", "row", "image").
        numbers: callable(int64 array of 0-based bad rows) -> the numbers to
            print for them (e.g. text line numbers); default: row + 1.
        stream: ``values`` is one block of a file read in order, and reading
            stops here: the message says that later rows were not checked.

    Raises:
        DataFileError: ``path: NaN or infinite <what> on <unit>s 3, 8 ...``.
    """
    a = np.asarray(values)
    if not np.issubdtype(a.dtype, np.inexact) or a.size == 0:
        return
    finite = np.isfinite(a)
    if finite.all():
        return
    bad = np.flatnonzero(~finite.reshape(len(a), -1).all(axis=1))
    shown = bad[:MAX_ROWS_NAMED]
    shown_numbers = numbers(shown) if numbers else shown + 1
    listed = ", ".join(str(int(n)) for n in shown_numbers)
    plural = "s" if len(bad) > 1 else ""
    more = " and more" if len(bad) > len(shown) else ""
    later = f" (later {unit}s not checked)" if stream else ""
    raise DataFileError(path, f"NaN or infinite {what} on {unit}{plural} "
                        f"{listed}{more}{later}")


def text_line_numbers(path, rows, comments="#"):
    """1-based line numbers of the data rows ``rows`` of a ``numpy.loadtxt`` file.

    ``loadtxt`` skips blank and comment-only lines, so row i is line i + 1 only
    for files without them; this counts them as ``loadtxt`` does. Reads the
    file once (only called to word an error).
    """
    wanted = {int(r) for r in rows}
    found, row = {}, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.split(comments, 1)[0].strip():
                continue
            if row in wanted:
                found[row] = lineno
                if len(found) == len(wanted):
                    break
            row += 1
    return [found.get(int(r), int(r) + 1) for r in rows]

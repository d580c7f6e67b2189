"""The one exception type for malformed input files."""


class DataFileError(ValueError):
    """A data or side file is missing, malformed, or inconsistent.

    The message always starts with the offending file's path, then says what is
    wrong, so that a user with many files knows which one to fix.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

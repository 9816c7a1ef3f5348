"""The one exception type of the data layer."""

from __future__ import annotations

from os import PathLike


class DataError(Exception):
    """A dataset problem the user can fix: a missing root, a malformed file, an inconsistent split.

    The message always starts with the offending file (and its 1-based line number when there is one),
    like a compiler error: ``path/skeleton_pos.txt:12: expected 91 comma-separated fields, got 88``.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)

    def __reduce__(self):  # survive pickling across processes (Ray workers, multiprocessing) intact
        return (DataError, (self.reason, self.path, self.line))


def many_files_error(problem: str, paths: list[str], where: str | PathLike[str]) -> DataError:
    """One DataError for a problem shared by several files: names the file itself when there is one,
    otherwise ``where`` followed by every file (all of them, not just the first)."""
    if len(paths) == 1:
        return DataError(problem, paths[0])
    return DataError(f"{len(paths)} files: {problem}: {', '.join(paths)}", where)

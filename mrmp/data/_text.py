"""Strict, fast parsing of the numeric text tables both datasets use (one frame per line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (BOM tolerated); any OS or decoding problem becomes a DataError naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file (byte {exc.start})", path) from None


def parse_table(path: Path, fields: int, sep: str | None, what: str) -> np.ndarray:
    """Parse a file of ``fields`` numbers per line into float64 ``(lines, fields)``.

    Lines are stripped and empty ones skipped; ``sep`` is the field separator (None: any whitespace). Every
    line must have exactly ``fields`` finite numbers, otherwise a DataError names the file and the 1-based
    line. ``what`` describes the separator in messages (``comma-separated``). An empty file gives 0 rows.
    """
    text = read_text(path)
    rows: list[list[str]] = []
    numbers: list[int] = []
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(sep)
        if len(parts) != fields:
            raise DataError(f"expected {fields} {what} fields, got {len(parts)}", path, i)
        rows.append(parts)
        numbers.append(i)
    if not rows:
        return np.zeros((0, fields), dtype=np.float64)
    try:
        values = np.array([f for r in rows for f in r], dtype=np.float64).reshape(len(rows), fields)
    except ValueError:
        _raise_first_bad(path, rows, numbers)
        raise  # unreachable: _raise_first_bad always raises
    finite = np.isfinite(values)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise DataError(f"field {c + 1} is not a finite number: {rows[r][c].strip()!r}", path, numbers[r])
    return values


def _raise_first_bad(path: Path, rows: list[list[str]], numbers: list[int]) -> None:
    for parts, n in zip(rows, numbers):
        for c, tok in enumerate(parts):
            try:
                np.array([tok], dtype=np.float64)
            except ValueError:
                raise DataError(f"field {c + 1} is not a number: {tok.strip()!r}", path, n) from None
    raise DataError("unparseable numbers", path)

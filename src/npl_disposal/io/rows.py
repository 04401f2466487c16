"""Where a table's rows are in their file: numbers that stay right past blank rows.

A problem names the row a user finds in the file. Readers skip blank rows;
:class:`RowNumbers` carries each data row's number below the header (a workbook's
reader records the rows it drops, a CSV file is scanned for blank lines only when a
problem is reported).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RowNumbers", "row_numbers"]


class RowNumbers:
    """Each data row's number in its file: rows below the header, blank rows counted.

    Readers skip a file's blank rows; a problem in the row after two blank ones is then
    two rows further down than its place in the table. A workbook's reader records the
    rows as it drops them (``below``); a CSV file is scanned for blank lines only when a
    problem is reported (``path``), so a clean read costs nothing.
    """

    def __init__(
        self,
        size: int,
        path: Path | None = None,
        encoding: str = "utf-8",
        below: np.ndarray | None = None,
        header: int | None = None,
    ) -> None:
        """``header``: the file's row (line) of the header, 1-based; found when None."""
        self.size, self.path, self.encoding = size, path, encoding
        self._below, self._scanned = below, path is None
        self._header = header

    def __deepcopy__(self, memo: dict[int, object]) -> RowNumbers:
        return self  # never changed once made: pandas copying a frame's attrs shares it

    def in_file(self, row: int) -> int:
        """The file's own row (line, sheet row) of the 0-based table row ``row``."""
        if self._header is None:
            self._header = _csv_header_line(self.path, self.encoding)
        return self._header + int(self.of(np.array([row]))[0])

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The 1-based numbers of the 0-based table rows ``rows``."""
        if not self._scanned:
            self._below, self._scanned = _csv_rows(self.path, self.encoding), True
        if self._below is None or len(self._below) != self.size:  # no blank rows (or unsure)
            return rows + 1
        return self._below[rows]


def _csv_rows(path: Path | None, encoding: str) -> np.ndarray | None:
    """Each record's number below the header in the CSV at ``path``; None if no blank line."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip(b"\n")
        if b"\n\n" not in lines:
            return None
        text = data.decode("utf-8-sig" if encoding.startswith("utf-8") else encoding)
    except (OSError, UnicodeDecodeError):
        return None
    records = (bool(record) for record in csv.reader(io.StringIO(text, newline="")))
    filled = np.fromiter(records, dtype=bool)
    start = int(np.argmax(filled))  # the header: blank lines above it are not counted
    return np.flatnonzero(filled[start + 1 :]) + 1


def _csv_header_line(path: Path | None, encoding: str) -> int:
    """The line of a CSV file's header: the first line that is not blank (1-based)."""
    if path is None:
        return 1
    try:
        with open(path, encoding="utf-8-sig" if encoding.startswith("utf-8") else encoding,
                  errors="replace", newline="") as f:  # fmt: skip
            for number, line in enumerate(f, start=1):
                if line.strip("\r\n"):
                    return number
    except OSError:
        pass
    return 1


def row_numbers(frame: pd.DataFrame) -> RowNumbers | None:
    """The row numbers of a table :func:`read_table` read (None: its rows as they are)."""
    rows = frame.attrs.get("rows")
    return rows if isinstance(rows, RowNumbers) else None

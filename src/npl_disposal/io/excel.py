"""Reading Excel workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) as input tables.

python-calamine (an optional extra: ``pip install 'npl-disposal[xlsx]'``) reads the
first visible sheet; the first non-empty row is the header, as in a CSV file, so a
problem in data row ``r`` is reported as row ``r`` (Excel's row ``r + 1`` when the
header is on row 1; blank rows are counted, not read). Cells arrive typed: identifier
and text columns are turned into text (a whole number ``123.0`` as ``"123"``, a date as
``2024-06-30``), number columns keep their numbers, and text in them is parsed as in a
CSV file; the same validation follows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.exceptions import ExcelUnavailableError
from npl_disposal.io.schema import NA_TEXTS, Column, alias_map, normalise_header

__all__ = ["EXCEL_SUFFIXES", "is_workbook", "read_excel_table"]

#: File names read as workbooks.
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
#: The first bytes of a zip archive (xlsx, ods) and of an OLE2 file (xls).
_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_TEXT_KINDS = ("id", "text", "class", "bool")
XLSX_HINT = "install it with: pip install 'npl-disposal[xlsx]' (python-calamine)"


def is_workbook(path: Path) -> bool:
    """Whether ``path`` is named or shaped as a workbook (an .xlsx saved as .csv too)."""
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) in _MAGIC


def read_excel_table(path: Path, columns: tuple[Column, ...]) -> pd.DataFrame:
    """The first visible sheet of the workbook at ``path`` as a raw table (headers as written).

    Raises :class:`~npl_disposal.ExcelUnavailableError` without python-calamine and a
    ValueError naming the file when it cannot be read.
    """
    rows, first = _sheet_rows(path)
    kept = [i for i, row in enumerate(rows) if any(not _empty(cell) for cell in row)]
    rows = [rows[i] for i in kept]
    if not rows:
        raise ValueError(f"{path.name}: the sheet is empty; it needs a header row")
    header = [_header(cell, j) for j, cell in enumerate(rows[0])]
    kinds = {c.name: c.kind for c in columns}
    aliases = alias_map(columns)
    data: dict[str, pd.Series] = {}
    repeated: list[str] = []
    for j, name in enumerate(header):
        if name in data:
            repeated.append(name)
            continue
        cells = [row[j] if j < len(row) else "" for row in rows[1:]]
        kind = kinds.get(aliases.get(normalise_header(name), ""), "")
        data[name] = _as_text(cells) if kind in _TEXT_KINDS else _as_values(cells)
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows) - 1))
    frame.attrs["repeated"] = sorted(set(repeated))
    below = np.asarray(kept[1:], dtype=np.int64) - kept[0]  # blank rows counted
    frame.attrs["below"] = below if below.size and below[-1] != below.size else None
    frame.attrs["header_row"] = first + kept[0] + 1  # the sheet's row, 1-based
    return frame


def _sheet_rows(path: Path) -> tuple[list[list[Any]], int]:
    """The first visible sheet's used rows, and the sheet row (0-based) of the first."""
    try:
        from python_calamine import load_workbook
    except ImportError as exc:
        raise ExcelUnavailableError(
            f"{path.name}: reading an Excel workbook needs python-calamine; {XLSX_HINT}; "
            "or save the sheet as CSV"
        ) from exc
    try:
        book = load_workbook(str(path))
        sheets = getattr(book, "sheets_metadata", [])
        visible = [m.name for m in sheets if str(m.visible).endswith(".Visible")]
        sheet = book.get_sheet_by_name(visible[0]) if visible else book.get_sheet_by_index(0)
        rows: list[list[Any]] = sheet.to_python()
        first = int(sheet.start[0]) if sheet.start is not None else 0
    except Exception as exc:  # calamine's errors: not a workbook, encrypted, damaged
        raise ValueError(
            f"{path.name}: cannot read it as an Excel workbook ({exc}); save it as .xlsx or CSV"
        ) from exc
    return rows, first


def _empty(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and cell.strip() == "")


def _blank(cell: object) -> bool:
    """Whether a value is missing: empty, or a text a CSV reader takes for missing (``n/a``)."""
    return _empty(cell) or (isinstance(cell, str) and cell in _NA_TEXTS)


_NA_TEXTS = frozenset(NA_TEXTS)


def _header(cell: object, j: int) -> str:
    if _empty(cell):
        return f"Unnamed: {j}"  # as pandas names a CSV's empty header
    return _text(cell)


def _text(cell: object) -> str:
    """A cell as the text a person typed: ``123.0`` as ``123``, a date as ISO."""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime) and cell.time() == dt.time(0):
        return cell.date().isoformat()
    if isinstance(cell, (dt.datetime, dt.date, dt.time)):
        return cell.isoformat()
    return str(cell)


def _as_text(cells: list[Any]) -> pd.Series:
    return pd.Series([None if _blank(c) else _text(c) for c in cells], dtype=object)


def _as_values(cells: list[Any]) -> pd.Series:
    """Numbers stay numbers (float64 when every cell is one); text is left for the parser."""
    values = [None if _blank(c) else c for c in cells]
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
           for v in values):  # fmt: skip
        return pd.Series([float("nan") if v is None else float(v) for v in values],
                         dtype="float64")  # fmt: skip
    return pd.Series([v if v is None or isinstance(v, str) else _text_number(v)
                      for v in values], dtype=object)  # fmt: skip


def _text_number(cell: object) -> str:
    """A typed cell in a column that also holds text: as text, for the number parser."""
    if isinstance(cell, float):
        return repr(cell)
    return _text(cell) if isinstance(cell, (bool, dt.date)) else str(cell)

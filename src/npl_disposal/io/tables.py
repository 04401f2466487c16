"""Reading and cleaning input tables: files, headers and dtypes.

Every table (loans, branches, options, history) goes through :func:`read_table`
and :func:`clean_columns`; the checks append to a
:class:`~npl_disposal.io.problems.ProblemLog`, which raises one
:class:`~npl_disposal.exceptions.PortfolioValidationError` listing every problem of
every row at once (rows numbered as in the file: :mod:`npl_disposal.io.rows`). CSV
outputs are written by :mod:`npl_disposal.io.csv_output`.
"""

from __future__ import annotations

import codecs
import csv
import importlib
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from npl_disposal.io._ids import starts_with_any
from npl_disposal.io.excel import is_workbook, read_excel_table
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.rows import RowNumbers, row_numbers
from npl_disposal.io.schema import (
    BOOL_ALIASES,
    BOOL_ALLOWED,
    CLASS_ALIASES,
    NA_TEXTS,
    NPL_CLASSES,
    PERFORMING_CLASSES,
    Column,
    alias_map,
    normalise_header,
)

TableSource = Union[pd.DataFrame, str, "os.PathLike[str]"]

_TEXT_KINDS = ("id", "text", "class", "bool")
#: A number written with thousands separators: groups of three digits after the first,
#: a decimal point after them (``1,234,567.89``; ``，`` as written in Chinese text too).
_GROUPED = r"[+-]?\d{1,3}(?:[,，]\d{3})+(?:\.\d*)?"
#: The texts a CSV cell is missing by: those a workbook's cell is too (one definition).
_NA: dict[str, Any] = {"na_values": list(NA_TEXTS), "keep_default_na": False}
#: Text kinds read from Parquet as dictionaries (loan_id excepted): few distinct values.
_FEW_VALUES = ("id", "text", "class")


#: First characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = "=+-@\t\r"
#: After ``+`` or ``-``: a signed number or a dash placeholder (``-``, ``-5``), no formula.
_SIGNED_PLAIN = r"[+-][\d\s.,%+-]*"
FORMULA_PROBLEM = "Excel would read it as a formula"
FORMULA_ALLOWED = "text not starting with =, @, or + / - followed by more than a number"


def formula_like(text: pd.Series) -> np.ndarray:
    """Mask of the texts a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``@x``).

    Texts starting with ``=``, ``@``, a tab or a carriage return, or with ``+`` / ``-``
    followed by anything but a number (``-`` alone, ``-5`` and ``+86 10`` stay text).
    Vectorised: the rare candidates alone are matched against the pattern.
    """
    starts = starts_with_any(text, _FORMULA_START)
    if not starts.any():
        return starts
    rows = np.flatnonzero(starts)
    plain = text.iloc[rows].str.fullmatch(_SIGNED_PLAIN).fillna(False).to_numpy(dtype=bool)
    starts[rows[plain]] = False
    return starts


def _flag_formulas(
    text: pd.Series, codes: np.ndarray | None, col: Column, raw: pd.Series, log: ProblemLog
) -> None:
    """Flag the cells of ``raw`` holding a formula; ``text`` its categories when ``codes``."""
    bad = formula_like(text)
    if codes is not None:
        bad = np.append(bad, False)[codes]
    log.flag(bad, col.name, raw, FORMULA_PROBLEM, FORMULA_ALLOWED)


def source_name(source: TableSource, default: str) -> str:
    """File name used in messages: the path's name, or ``default`` for a DataFrame."""
    return default if isinstance(source, pd.DataFrame) else Path(source).name


def read_table(source: TableSource, columns: tuple[Column, ...]) -> pd.DataFrame:
    """Read a CSV / Parquet / Excel file or copy a DataFrame, with canonical headers.

    Identifier and text columns are read as text so that ``000123`` keeps its
    zeros. CSV files are tried as UTF-8 (with or without BOM), then GB18030,
    the encoding of most Chinese spreadsheet exports. Workbooks (``.xlsx`` and the
    like, :mod:`npl_disposal.io.excel`) are read through python-calamine.
    """
    if isinstance(source, pd.DataFrame):
        # A new frame: changing it never changes the caller's (pandas copies on write, or
        # rename copies). No deep copy: it would consolidate every block of a large table.
        out = _canonical(source, _header_map(source.columns, columns))
        out.attrs.pop("rows", None)  # its rows are the frame's own
        return out
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file; give the path of a CSV, Parquet or Excel file"
        )
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, columns)
    if is_workbook(path):
        frame = read_excel_table(path, columns)
        frame.attrs["rows"] = RowNumbers(len(frame), below=frame.attrs.pop("below", None),
                                         header=frame.attrs.pop("header_row", 1))  # fmt: skip
        return _canonical(frame, _header_map(frame.columns, columns))
    ahead = _read_already(path, columns)
    return ahead if ahead is not None else _read_csv(path, columns)


class _ReadAhead:
    """One CSV file read on a thread of its own; :func:`read_table` takes the frame."""

    def __init__(self, path: Path, columns: tuple[Column, ...], stat: os.stat_result) -> None:
        self.path, self.columns, self.stat = path, columns, stat
        self.done = threading.Event()
        self.frame: pd.DataFrame | None = None

    def read(self) -> None:
        try:
            self.frame = _read_csv(self.path, self.columns)
        except Exception:  # the caller's own read raises it again, in its words
            self.frame = None
        finally:
            self.done.set()


#: Modules a CSV read imports when it first runs.
_READ_IMPORTS = (
    "pandas.io.parsers.arrow_parser_wrapper",
    "pyarrow.csv",
    "pyarrow.pandas_compat",
    "pyarrow.vendored.version",
)
#: Files being read ahead (:func:`read_ahead`), by resolved path.
_AHEAD: dict[str, _ReadAhead] = {}
_AHEAD_LOCK = threading.Lock()


def read_ahead(tables: Sequence[tuple[object, tuple[Column, ...]]]) -> None:
    """Start reading the CSV ``tables`` (path, columns), in order, on one thread.

    The command line calls it as soon as pandas is imported, so that Arrow parses the
    files on the other core while the rest of the program is imported (benchmarks/
    README.md, design measurements). :func:`read_table` given the same path and columns
    waits for that read and takes its frame, if the file is unchanged since and the read
    succeeded; otherwise (a bad file too) it reads the file itself, as it would have.
    Files that are not CSV by their name or first bytes are left to :func:`read_table`,
    and every file where pyarrow is not installed.
    """
    # What the read imports is imported here, not on the thread beside the caller's imports.
    try:
        for module in _READ_IMPORTS:
            importlib.import_module(module)
    except ImportError:  # no pyarrow: nothing to parse ahead; each table is read when asked
        return
    codecs.lookup("utf-8-sig")
    reads: list[_ReadAhead] = []
    for source, columns in tables:
        if not isinstance(source, (str, os.PathLike)):
            continue
        path = Path(source)
        try:
            if path.suffix.lower() in (".parquet", ".pq") or is_workbook(path):
                continue
            key, stat = str(path.resolve()), path.stat()
        except OSError:
            continue
        with _AHEAD_LOCK:
            if key not in _AHEAD:
                _AHEAD[key] = _ReadAhead(path, columns, stat)
                reads.append(_AHEAD[key])
    if reads:
        threading.Thread(target=_read_each, args=(reads,), name="npl-read-ahead",
                         daemon=True).start()  # fmt: skip


def _read_each(reads: list[_ReadAhead]) -> None:
    for ahead in reads:
        ahead.read()


def forget_read_ahead() -> None:
    """Drop the reads :func:`read_ahead` started that nobody took (a run that stopped early)."""
    with _AHEAD_LOCK:
        _AHEAD.clear()


def _read_already(path: Path, columns: tuple[Column, ...]) -> pd.DataFrame | None:
    """The frame :func:`read_ahead` read of ``path`` with ``columns``, once; else None."""
    if not _AHEAD:
        return None
    try:
        key = str(path.resolve())
    except OSError:
        return None
    with _AHEAD_LOCK:
        ahead = _AHEAD.get(key)
        if ahead is None or ahead.columns is not columns:
            return None
        del _AHEAD[key]
    ahead.done.wait()
    try:
        stat = path.stat()
    except OSError:
        return None
    same = (stat.st_mtime_ns, stat.st_size, stat.st_ino) == (
        ahead.stat.st_mtime_ns, ahead.stat.st_size, ahead.stat.st_ino)  # fmt: skip
    return ahead.frame if same else None


def _canonical(frame: pd.DataFrame, mapping: dict[object, str]) -> pd.DataFrame:
    """``frame`` with canonical headers; ``attrs["headers"]`` keeps the ones written otherwise.

    Problems then name a column as its file does: ``贷款余额 (balance)``.
    """
    out = frame.rename(columns=mapping)
    out.attrs["headers"] = {name: str(written) for written, name in mapping.items()
                            if normalise_header(written) != name}  # fmt: skip
    return out


def _header_map(headers: Iterable[object], columns: tuple[Column, ...]) -> dict[object, str]:
    aliases = alias_map(columns)
    return {h: aliases[normalise_header(h)] for h in headers if normalise_header(h) in aliases}


def _read_parquet(path: Path, columns: tuple[Column, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path, read_dictionary=_dictionary_columns(path, columns))
    except ImportError as exc:
        raise ImportError(
            f"{path.name}: reading Parquet needs pyarrow; "
            "install it with: pip install 'npl-disposal[parquet]'"
        ) from exc
    return _canonical(frame, _header_map(frame.columns, columns))


def _dictionary_columns(path: Path, columns: tuple[Column, ...]) -> list[str] | None:
    """The file's text columns with few distinct values (all but ``loan_id``), if any.

    Read dictionary-encoded, they arrive as categoricals: Arrow skips building a string
    per row that pandas would hash back into categories (benchmarks/README.md, design
    measurements).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {c.name: c.kind for c in columns}
    schema = pq.read_schema(path)
    names = _header_map(schema.names, columns)
    wanted = [
        field.name
        for field in schema
        if (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
        and names.get(field.name, "loan_id") != "loan_id"
        and kinds[names[field.name]] in _FEW_VALUES
    ]
    return wanted or None


def _read_csv(path: Path, columns: tuple[Column, ...]) -> pd.DataFrame:
    kinds = {c.name: c.kind for c in columns}
    last_error: UnicodeDecodeError | None = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            header = pd.read_csv(path, nrows=0, encoding=encoding).columns
            repeated = _repeated(path, encoding, header)
            mapping = _header_map(header.drop(list(repeated)), columns)
            as_text = {h: str for h, name in mapping.items() if kinds[name] in _TEXT_KINDS}
            frame = _read_rows(path, encoding, as_text).drop(columns=list(repeated))
            frame = _canonical(frame, mapping)
            frame.attrs["repeated"] = sorted(set(repeated.values()))
            frame.attrs["rows"] = RowNumbers(len(frame), path, encoding)
            return frame
        except UnicodeDecodeError as exc:
            last_error = exc
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path.name}: the file is empty; it needs a header row") from exc
        except (pd.errors.ParserError, ValueError) as exc:  # pyarrow's parse errors too
            hint = _csv_title_hint(path, encoding, columns)
            if hint is not None:
                raise ValueError(f"{path.name}: {hint}; delete the lines above it") from exc
            raise ValueError(
                f"{path.name}: not a well-formed CSV ({exc}); every row needs one cell per "
                "column of the header, separated by commas"
            ) from exc
    raise ValueError(
        f"{path.name}: cannot decode the file as UTF-8 or GB18030; save it as UTF-8 CSV"
    ) from last_error


def _read_rows(path: Path, encoding: str, as_text: dict[object, type[str]]) -> pd.DataFrame:
    """Every row of the CSV file in ``encoding``, the ``as_text`` columns as text.

    Arrow reads UTF-8 as it stands (skipping a byte-order mark) on its own threads; told
    ``utf-8-sig`` it would pass the whole file through Python's decoder first, which
    only finds out whether the file is UTF-8. Read as UTF-8 it says so too: a text
    column that is not UTF-8 fails and any other column comes back as bytes. Only
    then is the file read again through the decoder, which raises the
    ``UnicodeDecodeError`` that has it tried as GB18030.
    """
    engine = _csv_engine()
    if encoding == "utf-8-sig" and engine == "pyarrow":
        try:
            frame = pd.read_csv(path, encoding="utf-8", dtype=as_text, engine=engine, **_NA)
        except ValueError:  # not UTF-8, or not a well-formed CSV: the decoder's read says
            pass
        else:
            if not any(dtype == np.dtype(object) for dtype in frame.dtypes):  # no bytes: UTF-8
                return frame
    return pd.read_csv(path, encoding=encoding, dtype=as_text, engine=engine, **_NA)


def _repeated(path: Path, encoding: str, header: pd.Index) -> dict[str, str]:
    """Headers a CSV names twice: pandas' renamed copy (``x.1``) -> the name written."""
    raw = pd.read_csv(path, nrows=1, header=None, encoding=encoding, dtype=str)
    written = ["" if pd.isna(h) else str(h) for h in raw.iloc[0]] if len(raw) else []
    seen: set[str] = set()
    out: dict[str, str] = {}
    for name, read in zip(written, header, strict=False):
        if name and name in seen and str(read) != name:  # empty headers: pandas' Unnamed
            out[str(read)] = name
        seen.add(name)
    return out


def _csv_engine() -> str:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "c"
    return "pyarrow"


def check_headers(frame: pd.DataFrame, columns: tuple[Column, ...], log: ProblemLog) -> None:
    """Flag missing required columns and headers mapped twice to one canonical name."""
    for name in frame.attrs.get("repeated", ()):
        log.note(str(name), "the header names this column twice", "each column once")
    names = list(frame.columns)
    for name in {n for n in names if names.count(n) > 1}:
        log.note(
            str(name),
            "two columns map to this name (an alias and the name itself?)",
            "one column per name",
        )
    missing = [col for col in columns if col.required and col.name not in frame.columns]
    have = len([col for col in columns if col.required]) - len(missing)
    rows = frame.head(_HEADER_SEARCH).itertuples(index=False, name=None)
    below = _header_row(rows, columns, have) if missing else None
    if below is not None:
        numbers = row_numbers(frame) or RowNumbers(len(frame), header=1)
        log.note("", _below_title("row", numbers.in_file(below)),
                 "the header on the first row: delete the rows above it")  # fmt: skip
    for col in missing:
        accepted = ", ".join((col.name, *col.aliases[:4]))
        log.note(col.name, "required column is missing", f"a header such as {accepted}")


def _below_title(unit: str, number: int) -> str:
    return (f"the header seems to be on {unit} {number} (the column names are there); "
            f"{unit}s above it, such as a title, are read as the header")  # fmt: skip


#: How many of a table's first rows are searched for a header written below a title.
_HEADER_SEARCH = 10


def _header_row(
    rows: Iterable[Sequence[object]], columns: tuple[Column, ...], have: int
) -> int | None:
    """The first of ``rows`` naming more required columns than ``have`` (the header's).

    Bank exports often put a title (某某银行 不良贷款清单) above the header; a row holding
    at least half the required columns' names is taken for the real header.
    """
    aliases = alias_map(columns)
    required = {col.name for col in columns if col.required}
    for i, row in enumerate(rows):
        found = {aliases.get(normalise_header(v)) for v in row if isinstance(v, str)} & required
        if len(found) > have and 2 * len(found) >= len(required):
            return i
    return None


def _csv_title_hint(path: Path, encoding: str, columns: tuple[Column, ...]) -> str | None:
    """Where a CSV file's header seems to be, when lines above it (a title) are not the header.

    A title line of one cell makes the rows below it malformed for the reader; the file's
    first lines are searched for the column names instead.
    """
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as f:
            lines = [line for _, line in zip(range(_HEADER_SEARCH), f, strict=False)]
    except OSError:
        return None
    records = list(csv.reader(lines))
    at = _header_row(records, columns, have=0)
    if at is None or at == 0:
        return None
    return _below_title("line", at + 1)


def clean_columns(
    frame: pd.DataFrame,
    columns: tuple[Column, ...],
    log: ProblemLog,
    ids_as_text: bool = False,
    categorical: tuple[str, ...] = (),
    clean: tuple[str, ...] = (),
) -> None:
    """Convert every present canonical column to its dtype in place, flagging bad cells.

    Identifiers become Python strings (object), or with ``ids_as_text`` stay pandas
    text (Arrow-backed where installed): the options table's three million ids are
    only looked up, and the lookup is faster on Arrow text. Identifiers named in
    ``categorical`` (a loan's branch) become categorical. Those, text and class
    columns are cleaned through their distinct values, not cell by cell.
    Columns named in ``clean`` are known clean already and left as they are.
    """
    if frame.columns.duplicated().any():
        frame.drop(columns=frame.columns[frame.columns.duplicated()], inplace=True)
    for col in columns:
        if col.name not in frame.columns or col.name in clean:
            continue
        raw = frame[col.name]
        if col.kind == "id" and col.name in categorical:
            frame[col.name] = _categorical_id(_as_categorical(raw), col, log)
        elif col.kind == "id":
            frame[col.name] = _to_id(raw, col, log, ids_as_text)
        elif col.kind == "text":
            frame[col.name] = _to_text(_as_categorical(raw), col, log)
        elif col.kind == "bool":
            frame[col.name] = _to_bool(raw, col, log)
        elif col.kind == "class":
            frame[col.name] = _to_class(raw, col, log)
        else:
            frame[col.name] = _to_number(raw, col, log)


def _to_id(raw: pd.Series, col: Column, log: ProblemLog, as_text: bool = False) -> pd.Series:
    if as_text and isinstance(raw.dtype, pd.CategoricalDtype):
        return _categorical_id(raw, col, log)
    text = raw.astype("string").str.strip()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    if col.required:
        log.flag(missing, col.name, raw, "missing", "a non-empty identifier")
    _flag_formulas(text, None, col, raw, log)
    if as_text:
        return text.mask(missing)
    return text.astype(object).where(~missing, None)


def _categorical_id(raw: pd.Series, col: Column, log: ProblemLog) -> pd.Series:
    """A categorical id column cleaned through its categories, not cell by cell.

    The categories are stripped (two that differ only by spaces merge) and an
    empty one counts as missing, as for text ids.
    """
    cleaned = _stripped_categories(raw, empty_is_missing=True)
    if col.required:
        log.flag(cleaned.isna().to_numpy(), col.name, raw, "missing", "a non-empty identifier")
    _flag_categories(cleaned, col, raw, log)
    return cleaned


def _flag_categories(cleaned: pd.Series, col: Column, raw: pd.Series, log: ProblemLog) -> None:
    """Flag formulas among a categorical column's values, one check per category."""
    categories = pd.Series(cleaned.cat.categories, dtype="string")
    _flag_formulas(categories, cleaned.cat.codes.to_numpy(), col, raw, log)


def _as_categorical(raw: pd.Series) -> pd.Series:
    """The column dictionary-encoded (a few hundred branches in ten million rows)."""
    return raw if isinstance(raw.dtype, pd.CategoricalDtype) else raw.astype("category")


def _to_text(raw: pd.Series, col: Column, log: ProblemLog) -> pd.Series:
    """A categorical text column with its categories stripped (equal ones merged)."""
    cleaned = _stripped_categories(raw, empty_is_missing=False)
    _flag_categories(cleaned, col, raw, log)
    return cleaned


def _stripped_categories(raw: pd.Series, empty_is_missing: bool) -> pd.Series:
    """The categorical ``raw`` with its categories stripped; ones equal after that merge."""
    stripped = raw.cat.categories.astype("string").str.strip()
    if empty_is_missing:
        stripped = stripped.where(stripped != "", None)
    return rename_categories(raw, stripped)


def rename_categories(raw: pd.Series, names: Sequence[object] | pd.Index) -> pd.Series:
    """The categorical ``raw`` with category ``i`` renamed ``names[i]``; equal names merge.

    A missing name makes its cells missing.
    """
    recode, uniques = pd.factorize(pd.Index(names, dtype="string"), use_na_sentinel=True)
    categories = pd.Index(uniques, dtype="string")
    if len(uniques) == len(recode) and bool((recode == np.arange(len(recode))).all()):
        return raw.cat.rename_categories(categories)  # clean already: the codes stand
    codes = raw.cat.codes.to_numpy()
    codes = np.where(codes >= 0, np.append(recode, -1)[codes], -1)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=raw.index)


def _to_number(raw: pd.Series, col: Column, log: ProblemLog) -> pd.Series:
    ambiguous = np.zeros(len(raw), dtype=bool)
    if pd.api.types.is_bool_dtype(raw.dtype):
        values = pd.Series(np.nan, index=raw.index)
        bad = np.ones(len(raw), dtype=bool)
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.astype("float64")
        bad = np.zeros(len(raw), dtype=bool)
    else:
        values, bad, ambiguous = _parse_numbers(raw)
    values = values.where(~np.isinf(values.to_numpy()), np.nan)
    log.flag(bad, col.name, raw, "not a number", _allowed_number(col))
    log.flag(ambiguous, col.name, raw,
             "ambiguous number: a comma here may be a decimal comma or a thousands separator",
             "digits with a decimal point, thousands grouped by commas or not: 1234.56 or "
             "1,234.56")  # fmt: skip
    if col.required:
        missing = values.isna().to_numpy() & ~bad & ~ambiguous
        log.flag(missing, col.name, raw, "missing", _allowed_number(col))
    return values.astype("float64")


def _parse_numbers(raw: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Numbers written as text: the values, the cells not numbers, the ambiguous cells.

    A cell is ambiguous when its commas are not thousands separators (``1.234,56``,
    ``1,5``): it is refused, not guessed. Spaces and ``元`` are dropped; commas (also
    ``，``) are thousands separators only in groups of three digits before any decimal
    point.
    """
    text = raw.astype("string").str.replace(r"[\s元]", "", regex=True)
    grouped = text.str.contains(r"[,，]", regex=True).fillna(False).to_numpy(dtype=bool)
    ambiguous = grouped & ~text.str.fullmatch(_GROUPED).fillna(False).to_numpy(dtype=bool)
    text = text.str.replace(r"[,，]", "", regex=True)
    values = pd.to_numeric(text.replace("", pd.NA), errors="coerce").astype("float64")
    bad = (values.isna() & text.notna() & (text != "")).to_numpy(dtype=bool) & ~ambiguous
    return values.where(~ambiguous, np.nan), bad, ambiguous


def _allowed_number(col: Column) -> str:
    if col.kind == "share":
        return "a number in [0, 1]"
    return f"a number in {col.unit}"


def _to_bool(raw: pd.Series, col: Column, log: ProblemLog) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw.dtype) and not raw.isna().any():
        return raw.astype(bool)
    # Distinct spellings first (a handful in a million rows), then each one cleaned.
    codes, uniques = pd.factorize(raw.astype("string"))
    mapped = [BOOL_ALIASES.get(str(u).strip().lower(), None) for u in uniques]
    # Per spelling, then per cell through the codes (code -1, missing, takes the last entry).
    known = np.array([m is not None for m in mapped] + [False])
    true = np.array([m is True for m in mapped] + [False])
    bad = ~known[codes] & (codes >= 0)
    log.flag(bad, col.name, raw, "not a yes/no value", BOOL_ALLOWED)
    missing = codes < 0
    if col.required:
        log.flag(missing, col.name, raw, "missing", BOOL_ALLOWED)
    return pd.Series(true[codes], index=raw.index)


def _to_class(raw: pd.Series, col: Column, log: ProblemLog) -> pd.Series:
    """Loan classes through their distinct spellings, not cell by cell."""
    encoded = _as_categorical(raw)
    codes = encoded.cat.codes.to_numpy()
    uniques = encoded.cat.categories.astype("string").str.strip().str.lower()
    mapped = [CLASS_ALIASES.get(str(u), None) for u in uniques]
    known = np.array([c is not None for c in mapped] + [False])
    npl = np.array([NPL_CLASSES.index(c) if c in NPL_CLASSES else -1 for c in mapped] + [-1])
    bad = ~known[codes]
    performing = np.isin(np.asarray(uniques, dtype=object), PERFORMING_CLASSES)
    is_performing = np.append(performing, False)[codes]
    allowed = "substandard, doubtful, loss (次级, 可疑, 损失)"
    log.flag(
        is_performing,
        col.name,
        raw,
        "a performing class is not an NPL; leave performing loans out",
        allowed,
    )
    log.flag(bad & ~is_performing, col.name, raw, "unknown loan class", allowed)
    classes = pd.Categorical.from_codes(npl[codes], categories=NPL_CLASSES, ordered=True)
    return pd.Series(classes, index=raw.index)

"""Loan ids and other text columns at scale: locating ids, building text columns.

Matching three million option rows to a million loans by text is the costliest
step of reading an options table. Rows listed in portfolio order (as
``value_options`` writes them) are matched by comparing neighbours; others by
Arrow's hash lookup (``pyarrow.compute.index_in``), several times faster than a
pandas index of Python strings (benchmarks/README.md, design measurements). pandas does it
where pyarrow is not installed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "as_text",
    "as_text_codes",
    "duplicated",
    "equal_values",
    "in_order",
    "locate",
    "positions_in",
    "repeated_keys",
    "starts_with_any",
]


def locate(ids: pd.Series | np.ndarray, keys: pd.Series | np.ndarray) -> np.ndarray:
    """Position of each key in ``ids`` (unique), ``-1`` where absent or missing (int64)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow ships with the test extra
        return pd.Index(ids).get_indexer(keys).astype(np.int64)
    try:
        key_text, id_text = _text(keys, pa), _text(ids, pa)
        in_order = _in_order(id_text, key_text, pa, pc)
        if in_order is not None:
            return in_order
        found = pc.index_in(key_text, value_set=id_text)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pd.Index(ids).get_indexer(keys).astype(np.int64)  # e.g. ids that are not text
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def positions_in(column: pd.Series, names: Sequence[object] | pd.Index) -> np.ndarray:
    """Each value's position in ``names`` (-1 if absent or missing), int64.

    Only the distinct values are looked up: a categorical's categories, or the
    column dictionary-encoded first (ten million channel or branch names hold a
    handful of values).
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, uniques = column.cat.codes.to_numpy(), column.cat.categories
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    index = pd.Index(list(names), dtype=object)
    lookup = np.append(index.get_indexer(pd.Index(uniques).astype(object)), -1).astype(np.int64)
    return lookup[codes]


#: Ids up to which :func:`duplicated` proves them distinct with a set (a few tens of MB).
SET_IDS = 1_000_000


def duplicated(values: pd.Series) -> np.ndarray:
    """Mask of the values present more than once (missing values never count).

    Text ids, the usual case, are proven distinct without pandas hashing them into a
    table: up to :data:`SET_IDS` of them by a Python set as large as the ids (half the
    time of the hashes at 100,000), more by hashing them to 64 bits and sorting the
    hashes, in a fixed 16 bytes an id, about six times faster than pandas
    (benchmarks/README.md, design measurements). Otherwise, or for other values,
    pandas marks the duplicates exactly.
    """
    present = values.notna().to_numpy(dtype=bool)
    text = values.to_numpy(dtype=object)[present]
    if pd.api.types.infer_dtype(text, skipna=False) == "string":
        if text.size <= SET_IDS:
            distinct = len(set(text)) == text.size
        else:
            hashed = np.sort(pd.util.hash_array(text, categorize=False))
            distinct = not bool((hashed[1:] == hashed[:-1]).any())
        if distinct:
            return np.zeros(len(values), dtype=bool)
    return values.duplicated(keep=False).to_numpy(dtype=bool) & present


def repeated_keys(key: np.ndarray) -> np.ndarray:
    """Mask of the integer keys present more than once.

    Keys already increasing (tables the library writes come sorted) need no sort.
    """
    if key.size < 2 or bool((key[1:] > key[:-1]).all()):
        return np.zeros(key.size, dtype=bool)
    order = np.argsort(key, kind="stable")
    same = key[order[1:]] == key[order[:-1]]
    out = np.zeros(key.size, dtype=bool)
    out[order[1:][same]] = True
    out[order[:-1][same]] = True
    return out


def in_order(ids: np.ndarray, keys: np.ndarray) -> np.ndarray | None:
    """Positions when ``keys`` run through ``ids`` in order (each id's keys together), else None.

    Tables derived from the portfolio, such as the options of ``value_options``,
    list each loan's rows together in portfolio order. Then two passes of
    comparisons place every key, where a hash lookup would take several times as
    long. Each run's first key is checked
    against its id, so the positions are exact or this returns None. Runs are
    found by object address when each id's keys are one object (as there), else
    by Python equality; see :func:`locate` for Arrow text.
    """
    n, k = len(ids), len(keys)
    if n == 0 or k < n:
        return None
    start = np.ones(k, dtype=bool)
    try:
        address = _addresses(keys)  # usually each id's keys are one object
        start[1:] = address[1:] != address[:-1]
        if int(start.sum()) != n:  # else by value
            start[1:] = keys[1:] != keys[:-1]
        return _positions(
            start, n, lambda: bool(equal_values(keys, ids, np.flatnonzero(start)).all())
        )
    except (TypeError, ValueError):  # values that do not compare one to one
        return None


def equal_values(a: np.ndarray, b: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """``a[at] == b`` (``a == b`` without ``at``) elementwise for object arrays.

    Tables derived from the portfolio (options from ``value_options``, a plan's
    ids) hold the portfolio's own id objects, and two references to one object
    are equal: addresses are compared first, without touching the objects (an
    eighth of the time of Python's ``==`` on each pair).
    Only pairs of different objects are compared by value.
    """
    left = _addresses(a)
    same = (left if at is None else left[at]) == _addresses(b)
    differ = np.flatnonzero(~same)
    if differ.size:
        rows = differ if at is None else at[differ]
        same[differ] = np.asarray(a[rows] == b[differ], dtype=bool)
    return same


def _addresses(values: np.ndarray) -> np.ndarray:
    """The address of each element's object (object arrays), as a new array."""
    flat = np.ascontiguousarray(values, dtype=object).ravel()
    if flat.size == 0:
        return np.zeros(0, dtype=np.uintp)
    cells = (ctypes.c_size_t * flat.size).from_address(flat.ctypes.data)  # pointer-sized
    return np.ctypeslib.as_array(cells).copy()  # a copy: flat may go


def _in_order(ids: Any, keys: Any, pa: Any, pc: Any) -> np.ndarray | None:
    """:func:`in_order` for Arrow arrays."""
    n, k = len(ids), len(keys)
    if n == 0 or k < n or keys.null_count:
        return None
    start = np.ones(k, dtype=bool)
    start[1:] = pc.not_equal(keys.slice(1), keys.slice(0, k - 1)).to_numpy(zero_copy_only=False)
    return _positions(start, n, lambda: pc.all(pc.equal(keys.filter(pa.array(start)), ids)).as_py())


def _positions(start: np.ndarray, n: int, heads_match: Callable[[], bool]) -> np.ndarray | None:
    """Each key's run number, if there are ``n`` runs whose first keys match the ids."""
    if int(start.sum()) != n or not heads_match():
        return None
    return np.cumsum(start, dtype=np.int64) - 1


def _text(values: pd.Series | np.ndarray, pa: Any) -> Any:
    """The values as an Arrow large_string array (nulls for missing)."""
    array = values.array if isinstance(values, pd.Series) else values
    if hasattr(array, "__arrow_array__"):
        out = pa.array(array)
    else:
        out = pa.array(np.asarray(array, dtype=object), from_pandas=True)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out.cast(pa.large_string())


def as_text(values: np.ndarray) -> Any:
    """Python strings as pandas' default text column, built by Arrow where that is its storage.

    pandas 3 stores text in Arrow; converting a million Python strings through
    Arrow directly takes half the time of letting pandas infer them. Elsewhere
    the values are returned unchanged.
    """
    dtype = pd.Series(["x"]).dtype
    if getattr(dtype, "storage", None) != "pyarrow":
        return values
    import pyarrow as pa

    return pd.array(pa.array(values, type=pa.large_string(), from_pandas=True), dtype=dtype)


def as_text_codes(codes: np.ndarray, names: tuple[str, ...]) -> Any:
    """``names[codes]`` as pandas' default text column (Arrow decodes it, where used)."""
    dtype = pd.Series(["x"]).dtype
    if getattr(dtype, "storage", None) != "pyarrow":
        return np.asarray(names, dtype=object)[codes]
    import pyarrow as pa

    coded = pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(names), type=pa.large_string())
    )
    return pd.array(coded.cast(pa.large_string()), dtype=dtype)


def starts_with_any(text: pd.Series, chars: str) -> np.ndarray:
    """Mask of the texts whose first character is one of the ASCII ``chars`` (missing: no).

    Arrow text is judged by the first byte of each value, read off its buffers, five
    times faster than ``str.startswith`` (an ASCII character is its own byte in UTF-8).
    """
    array = text.array
    pa = _pyarrow() if hasattr(array, "__arrow_array__") and chars.isascii() else None
    if pa is not None:
        values = pa.array(array)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return _first_byte_in(values, np.frombuffer(chars.encode(), dtype=np.uint8), pa)
    starts = text.astype("string").str.startswith(tuple(chars))
    return starts.fillna(False).to_numpy(dtype=bool)


def _pyarrow() -> Any:
    """pyarrow, or None where it is not installed (pandas' own text arrays then)."""
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _first_byte_in(values: Any, chars: np.ndarray, pa: Any) -> np.ndarray:
    """:func:`starts_with_any` on an Arrow string array."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)
    wide = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=wide)[values.offset : values.offset + n + 1]
    data = values.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    if body.size == 0:  # every value empty or missing
        return np.zeros(n, dtype=bool)
    filled = offsets[1:] > offsets[:-1]
    first = body[np.minimum(offsets[:-1], body.size - 1)]
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    return filled & valid & np.isin(first, chars)

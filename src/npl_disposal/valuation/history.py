"""A loan-month history (``loan_id, period, state``), read, checked and encoded as integers.

Every problem of every row is collected before one
:class:`~npl_disposal.PortfolioValidationError` is raised; a valid history becomes
integer codes sorted by loan and month, ready for :mod:`.estimation`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.exceptions import MigrationMatrixError, MigrationWarning
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import LOAN_COLUMNS, Column
from npl_disposal.io.tables import TableSource, check_headers, read_table, source_name
from npl_disposal.valuation.states import (
    ABSORBING_STATES,
    ALLOWED_STATES,
    STATES,
    canonical_state,
    normalised_state,
)

__all__ = ["HISTORY_COLUMNS", "Encoded", "encode_history"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Columns of a loan-month history and the headers accepted for them.
HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("loan_id", "id", True, "identifier", LOAN_COLUMNS[0].aliases),
    Column(
        "period",
        "number",
        True,
        "integer month number",
        ("期数", "期次", "月份", "数据期", "统计期", "报告期", "month", "period_month"),
    ),
    Column(
        "state",
        "class",
        True,
        "loan state",
        ("状态", "贷款状态", "五级分类", "风险分类", "贷款分类", "分类", "class", "classification"),
    ),
)


@dataclass(frozen=True)
class Encoded:
    """A validated history as integer codes, sorted by (loan, period)."""

    states: tuple[str, ...]
    absorbing: BoolArray
    from_codes: NDArray[np.int16]  # from-state of each consecutive-month pair
    to_codes: NDArray[np.int16]
    n_loans: int
    n_records: int
    n_gaps: int



@dataclass
class _Issue:
    mask: BoolArray
    column: str
    problem: str | NDArray[np.object_]
    allowed: str


def encode_history(
    history: TableSource, states: Sequence[str] | None, absorbing: Sequence[str] | None
) -> Encoded:
    """Read and check a history; its consecutive-month pairs as state codes.

    ``states`` and ``absorbing`` are those of
    :class:`~npl_disposal.valuation.estimation.MigrationEstimator`. Every problem of
    every row is collected before one error is raised.
    """
    name = source_name(history, "history")
    frame = read_table(history, HISTORY_COLUMNS)
    log = ProblemLog(name)
    check_headers(frame, HISTORY_COLUMNS, log)
    log.raise_if_any(_WHAT)
    if len(frame) == 0:
        log.note("loan_id", "the history has no rows", "one row per loan and month")
        log.raise_if_any(_WHAT)
    cells = _Cells.of(frame, states, absorbing)
    loans, period, codes, where, same, step, dup, leaves = _sorted(cells)
    issues = cells.issues
    if dup.any():
        issues.append(_duplicates(dup, where, len(frame)))
    if leaves.any():
        issues.append(_leaving(leaves, where, codes, period, cells.chosen, len(frame)))
    consecutive = same & (step == 1)
    gaps = same & (step > 1)
    if not any(issue.mask.any() for issue in issues) and not consecutive.any():
        log.note(
            "period",
            "no loan has records in two consecutive months, so no migration can be counted"
            + _yyyymm_hint(period),
            _ALLOWED_PERIOD,
        )
    _raise_issues(frame, name, issues, log, _WHAT)
    if gaps.any() and _looks_yyyymm(period) and (step[gaps] == 89).any():
        warnings.warn(
            "periods look like yyyymm numbers: December -> January pairs are 89 apart and "
            "were skipped as gaps; convert with period = year * 12 + month",
            MigrationWarning,
            stacklevel=3,
        )
    return Encoded(
        states=cells.chosen,
        absorbing=cells.absorbing,
        from_codes=codes[:-1][consecutive],
        to_codes=codes[1:][consecutive],
        n_loans=int(np.count_nonzero(np.r_[True, ~same])) if loans.size else 0,
        n_records=len(frame),
        n_gaps=int(np.count_nonzero(gaps)),
    )


_WHAT = "migration history validation failed"
_ALLOWED_PERIOD = "an integer month number (for yyyymm use year * 12 + month)"


@dataclass
class _Cells:
    """A history's columns as integer codes, with the problems of single cells."""

    loans: IntArray
    period: IntArray
    codes: NDArray[np.int16]
    chosen: tuple[str, ...]
    absorbing: BoolArray
    valid: BoolArray
    issues: list[_Issue]

    @classmethod
    def of(
        cls, frame: pd.DataFrame, states: Sequence[str] | None, absorbing: Sequence[str] | None
    ) -> _Cells:
        chosen, absorbing_mask = _state_setup(states, absorbing)
        loans, loan_missing = _encode_ids(frame["loan_id"])
        period, period_missing, period_bad = _encode_period(frame["period"])
        codes, chosen, state_missing, state_unknown = _encode_states(frame["state"], chosen)
        if absorbing_mask is None:
            absorbing_mask = np.isin(np.array(chosen, dtype=object), ABSORBING_STATES)
        allowed_states = ALLOWED_STATES if states is None else ", ".join(chosen)
        issues = [
            _Issue(loan_missing, "loan_id", "missing", "a non-empty identifier"),
            _Issue(period_missing, "period", "missing", _ALLOWED_PERIOD),
            _Issue(period_bad, "period", "not an integer month number", _ALLOWED_PERIOD),
            _Issue(state_missing, "state", "missing", allowed_states),
            _Issue(state_unknown, "state", "unknown state", allowed_states),
        ]
        valid = ~(loan_missing | period_missing | period_bad | state_missing | state_unknown)
        return cls(loans, period, codes, chosen, absorbing_mask, valid, issues)


def _sorted(cells: _Cells) -> tuple[Any, ...]:
    """The valid records sorted by (loan, period), their rows, and the neighbour masks."""
    loans, period, codes, valid = cells.loans, cells.period, cells.codes, cells.valid
    where = np.zeros(0, dtype=np.int64)
    packed = _packed_sort(loans, period, codes, len(cells.chosen)) if valid.all() else None
    if packed is not None:
        # fast path: (loan, period, state) sorted as one integer; rows only needed on error
        same, step, dup, leaves = _scan(*packed, cells.absorbing)
        if not (dup.any() or leaves.any()):
            return (*packed, where, same, step, dup, leaves)
    rows = None if valid.all() else np.flatnonzero(valid)
    if rows is not None:
        loans, period, codes = loans[rows], period[rows], codes[rows]
    order = _sort_order(loans, period)
    loans, period, codes = loans[order], period[order], codes[order]
    where = order if rows is None else rows[order]  # original row of each sorted record
    same, step, dup, leaves = _scan(loans, period, codes, cells.absorbing)
    return loans, period, codes, where, same, step, dup, leaves


def _duplicates(dup: BoolArray, where: IntArray, n: int) -> _Issue:
    both = np.zeros(dup.size + 1, dtype=bool)
    both[1:] |= dup
    both[:-1] |= dup
    return _Issue(
        _scatter(where[both], n),
        "period",
        "duplicate (loan_id, period): the loan has two records for this month",
        "one row per loan and month",
    )


def _leaving(
    leaves: BoolArray,
    where: IntArray,
    codes: NDArray[np.int16],
    period: IntArray,
    chosen: tuple[str, ...],
    n: int,
) -> _Issue:
    at = np.flatnonzero(leaves)
    text = np.full(n, "", dtype=object)
    prev = np.asarray(chosen, dtype=object)[codes[at]]
    text[where[at + 1]] = (
        "the loan leaves absorbing state "
        + prev.astype(str).astype(object)
        + " (period "
        + period[at].astype(str).astype(object)
        + ")"
    )
    return _Issue(
        _scatter(where[at + 1], n),
        "state",
        text,
        "no other state after an absorbing one (or leave that state out of absorbing=)",
    )


def _scan(
    loans: IntArray, period: IntArray, codes: NDArray[np.int16], absorbing: BoolArray
) -> tuple[BoolArray, IntArray, BoolArray, BoolArray]:
    """Masks over records sorted by (loan, period), one per pair of neighbours.

    Same loan as the previous record, the period step, duplicate months, and records
    that leave an absorbing state.
    """
    same = loans[1:] == loans[:-1]
    step = period[1:] - period[:-1]
    dup = same & (step == 0)
    leaves = same & (step > 0) & absorbing[codes[:-1]] & (codes[1:] != codes[:-1])
    return same, step, dup, leaves


def _packed_sort(
    loans: IntArray, period: IntArray, codes: NDArray[np.int16], n_states: int
) -> tuple[IntArray, IntArray, NDArray[np.int16]] | None:
    """Records sorted by (loan, period, state), packed into one uint64 and sorted by value.

    A value sort is an order of magnitude faster than an argsort; it works when the
    loan label range, the period span and the state count fit in 64 bits together.
    ``None`` otherwise.
    """
    if loans.size == 0:
        return None
    first, low = int(loans.min()), int(period.min())
    loan_bits = (int(loans.max()) - first).bit_length()
    period_bits = (int(period.max()) - low).bit_length()
    state_bits = max(1, (n_states - 1).bit_length())
    if loan_bits + period_bits + state_bits > 64:
        return None
    shift = np.uint64(period_bits + state_bits)
    key = (loans - first).astype(np.uint64) << shift
    key |= (period - low).astype(np.uint64) << np.uint64(state_bits)
    key |= codes.astype(np.uint64)
    key.sort()
    state = (key & np.uint64((1 << state_bits) - 1)).astype(np.int16)
    month = (key >> np.uint64(state_bits)) & np.uint64((1 << period_bits) - 1)
    loan = (key >> shift).astype(np.int64)
    return loan, month.astype(np.int64) + low, state


def _raise_issues(
    frame: pd.DataFrame, name: str, issues: list[_Issue], log: ProblemLog, what: str
) -> None:
    issues = [issue for issue in issues if issue.mask.any()]
    if not issues and not log:
        return
    ids = frame["loan_id"].astype("string").to_numpy(dtype=object, na_value=None)
    full = ProblemLog(name, ids)
    full.extend(log)
    for issue in issues:
        values = frame[issue.column].to_numpy(dtype=object)
        values[pd.isna(values)] = None  # pd.NA (nullable dtypes) shown as missing
        full.flag(issue.mask, issue.column, values, issue.problem, issue.allowed)
    full.raise_if_any(what)


def _scatter(positions: IntArray, n: int) -> BoolArray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


def _looks_yyyymm(period: IntArray) -> bool:
    if period.size == 0 or period.min() < 190001 or period.max() > 210012:
        return False
    month = period % 100
    return bool(((month >= 1) & (month <= 12)).all())


def _yyyymm_hint(period: IntArray) -> str:
    if _looks_yyyymm(period):
        return " (the periods look like yyyymm; use year * 12 + month)"
    return ""


def _sort_order(loans: IntArray, period: IntArray) -> IntArray:
    """Stable order by (loan label, period).

    One int64 key ``loan * span + period`` when the labels are dense enough; otherwise
    two stable passes (period, then loan), each cheap on data already sorted either way.
    """
    if loans.size == 0:
        return np.zeros(0, dtype=np.int64)
    low = int(period.min())
    span = int(period.max()) - low + 1
    first = int(loans.min())
    if (int(loans.max()) - first + 1) * span < 2**62:
        key = (loans - first) * span + (period - low)
        return np.argsort(key, kind="stable")
    if bool((period[1:] >= period[:-1]).all()):
        order = np.arange(period.size)
    elif span <= 2**16:
        order = np.argsort((period - low).astype(np.uint16), kind="stable")  # radix sort
    else:
        order = np.argsort(period, kind="stable")
    return order[np.argsort(loans[order], kind="stable")]


def _encode_ids(raw: pd.Series) -> tuple[IntArray, BoolArray]:
    """Integer labels of loan ids (equal ids, equal labels) and the missing mask.

    Integer ids are their own labels; fixed-width ASCII text ids are read as numbers
    (:func:`_fixed_width_labels`), without hashing; anything else is factorised, with
    surrounding blanks ignored.
    """
    n = len(raw)
    if pd.api.types.is_integer_dtype(raw.dtype) and not isinstance(
        raw.dtype, pd.api.extensions.ExtensionDtype
    ):
        return raw.to_numpy(dtype=np.int64), np.zeros(n, dtype=bool)
    labels = _fixed_width_labels(raw)
    if labels is not None:
        return labels, np.zeros(n, dtype=bool)
    codes, uniques = pd.factorize(raw)
    codes = codes.astype(np.int64)
    if not pd.api.types.is_numeric_dtype(uniques.dtype):
        text = pd.Index(uniques).astype("string").str.strip()
        merged, _ = pd.factorize(text)
        blank = (text == "").to_numpy(dtype=bool, na_value=True)
        lookup = np.append(np.where(blank, -1, merged), -1).astype(np.int64)
        codes = lookup[codes]
    missing = codes < 0
    return np.where(missing, 0, codes), missing


_BLANK_BYTE = np.zeros(256, dtype=bool)
_BLANK_BYTE[np.frombuffer(b" \t\n\r\x0b\x0c", dtype=np.uint8)] = True


def _fixed_width_labels(raw: pd.Series) -> IntArray | None:
    """Exact int64 labels of Arrow-backed ASCII ids that all have the same length.

    Up to 8 characters: the bytes read as one big-endian integer; 9 to 18 digits: their
    decimal value. ``None`` when the column does not qualify (nulls, blanks at either
    end, non-ASCII, varying length): the caller then factorises.
    """
    storage = getattr(raw.dtype, "storage", None)
    if not (isinstance(raw.dtype, pd.StringDtype) and storage == "pyarrow") or len(raw) == 0:
        return None
    import pyarrow as pa

    arr = pa.array(raw.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    large = pa.types.is_large_string(arr.type)
    if arr.null_count or not (large or pa.types.is_string(arr.type)):
        return None
    width_type = np.dtype(np.int64 if large else np.int32)
    buffers = arr.buffers()
    offsets = np.frombuffer(
        buffers[1], dtype=width_type, count=len(arr) + 1, offset=arr.offset * width_type.itemsize
    )
    width = int(offsets[1] - offsets[0])
    if not 0 < width <= 18 or int(offsets[-1] - offsets[0]) != width * len(arr):
        return None
    if not bool((np.diff(offsets) == width).all()):
        return None
    data = np.frombuffer(
        buffers[2], dtype=np.uint8, count=width * len(arr), offset=int(offsets[0])
    ).reshape(-1, width)
    if data.max() >= 128 or _BLANK_BYTE[data[:, 0]].any() or _BLANK_BYTE[data[:, -1]].any():
        return None
    if width <= 8:
        padded = np.zeros((len(arr), 8), dtype=np.uint8)
        padded[:, 8 - width :] = data
        return padded.view(">u8").ravel().astype(np.int64)
    if not bool(((data >= 48) & (data <= 57)).all()):
        return None
    values = np.zeros(len(arr), dtype=np.int64)
    for j in range(width):  # one pass per character position, not per row
        values = values * 10 + (data[:, j] - 48)
    return values


def _encode_period(raw: pd.Series) -> tuple[IntArray, BoolArray, BoolArray]:
    """Integer month numbers, with masks of missing and of non-integer values."""
    n = len(raw)
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return np.zeros(n, dtype=np.int64), raw.isna().to_numpy(), raw.notna().to_numpy()
    if isinstance(dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        missing = raw.isna().to_numpy()
        months = raw.dt.year * 12 + raw.dt.month
        return months.fillna(0).to_numpy(dtype=np.int64), missing, np.zeros(n, dtype=bool)
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return raw.to_numpy(dtype=np.int64), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        number = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(number)
    else:
        text = raw.astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~missing & ~(np.isfinite(number) & (number == np.round(number)))
        bad |= ~missing & (np.abs(number) > 2**53)
    ok = ~(missing | bad)
    return np.where(ok, number, 0).astype(np.int64), missing, bad


def _state_setup(
    states: Sequence[str] | None, absorbing: Sequence[str] | None
) -> tuple[tuple[str, ...] | None, BoolArray | None]:
    if isinstance(states, str) or isinstance(absorbing, str):
        raise MigrationMatrixError(
            "states and absorbing are sequences of state names, not one string"
        )
    if states is None:
        if absorbing is not None:
            raise MigrationMatrixError(
                "absorbing= needs states= too: name every state of the chain"
            )
        return None, None
    chosen = tuple(canonical_state(s) for s in states)
    if len(set(chosen)) != len(chosen) or not chosen:
        raise MigrationMatrixError(
            f"states must be distinct names (aliases count as their state): {states}"
        )
    if absorbing is None:
        return chosen, np.isin(np.array(chosen, dtype=object), ABSORBING_STATES)
    named = [canonical_state(s) for s in absorbing]
    unknown = [s for s in named if s not in chosen]
    if unknown:
        raise MigrationMatrixError(
            f"absorbing states {unknown} are not among states {list(chosen)}"
        )
    return chosen, np.isin(np.array(chosen, dtype=object), named)


def _encode_states(
    raw: pd.Series, chosen: tuple[str, ...] | None
) -> tuple[NDArray[np.int16], tuple[str, ...], BoolArray, BoolArray]:
    """State codes into the chosen states (found in the data when ``None``)."""
    codes, uniques = pd.factorize(raw)
    texts = [str(u).strip() for u in uniques]
    if chosen is None:
        found = {canonical_state(t) for t in texts}
        chosen = tuple(s for s in STATES if s in found)
        lookup = {s: s for s in chosen}
    else:
        lookup = {normalised_state(s): s for s in chosen}
        lookup.update({s: s for s in chosen})
    position = {s: i for i, s in enumerate(chosen)}
    mapped = []
    for text in texts:
        target = lookup.get(normalised_state(text), lookup.get(canonical_state(text)))
        mapped.append(position[target] if target is not None else (-2 if text == "" else -1))
    table = np.array([*mapped, -2], dtype=np.int16)  # code -1 (missing) -> -2
    state = table[codes]
    if min(mapped, default=0) >= 0 and (codes >= 0).all():
        none = np.zeros(state.size, dtype=bool)
        return state, chosen, none, none
    missing = state == -2
    unknown = state == -1
    return np.where(state >= 0, state, 0).astype(np.int16), chosen, missing, unknown


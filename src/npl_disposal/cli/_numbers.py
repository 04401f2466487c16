"""Numbers as a person reads them on the console: ratios in percent, loan counts whole.

The machine files (``plan.csv``, ``branches.csv``, ``summary.json``) keep every number
at full precision; only what is printed is rounded, by the rules here:

* ratios and shares (``ratio_before``, ``coverage``, ``balance_share`` ...): percent with
  two decimals, ``1.59%``;
* loan counts (``loans``, and a constraint's usage and limit counted in loans): whole
  numbers, ``847``, with two decimals only where a fractional plan splits loans;
* money: CNY millions with three decimals (the caller divides and names the column).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

__all__ = ["COUNT_COLUMNS", "RATIO_COLUMNS", "count", "money", "percent", "readable"]

#: Columns holding a ratio or a share of a whole, shown in percent.
RATIO_COLUMNS = frozenset({
    "ratio_before", "ratio_after", "threshold", "npl_ratio", "balance_share", "coverage",
    "growth", "growth_restored", "share",
})  # fmt: skip
#: Columns holding a number of loans (a fractional plan may split loans).
COUNT_COLUMNS = frozenset({"loans"})


def _missing(x: object) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def percent(x: object, digits: int = 2) -> str:
    """``0.0159`` as ``"1.59%"``; empty for a missing value."""
    if _missing(x):
        return ""
    return f"{float(x) * 100:,.{digits}f}%"  # type: ignore[arg-type]


def count(x: object) -> str:
    """A number of loans: ``847.0`` as ``"847"``, ``12.5`` as ``"12.50"``."""
    if _missing(x):
        return ""
    value = float(x)  # type: ignore[arg-type]
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-6 else f"{value:,.2f}"


def money(x: object, digits: int = 3) -> str:
    """An amount already in the unit shown (CNY millions), with thousands separators."""
    if _missing(x):
        return ""
    return f"{float(x) + 0.0:,.{digits}f}"  # type: ignore[arg-type]


def readable(
    frame: pd.DataFrame, money_columns: Iterable[str] = (), digits: int = 3
) -> pd.DataFrame:
    """``frame`` as text: ratios in percent, counts whole, other numbers with 3 decimals.

    ``money_columns`` (already in the unit shown) and other number columns get
    ``digits`` decimals; text, yes/no and the index are left as they are.
    """
    shown = frame.copy()
    for name in shown.columns:
        column = shown[name]
        if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(
            column.dtype
        ):
            continue
        key = str(name)
        if key in RATIO_COLUMNS and key not in set(money_columns):
            shown[name] = column.map(percent).astype(object)
        elif key in COUNT_COLUMNS:
            shown[name] = column.map(count).astype(object)
        else:
            shown[name] = column.map(lambda x: money(x, digits)).astype(object)
    return shown

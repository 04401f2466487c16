"""Tables as a person reads them on a console: ratios in percent, loan counts whole.

The machine files (``plan.csv``, ``branches.csv``, ``summary.json``) keep every number
at full precision; only what is shown is rounded, by the rules here:

* ratios and shares (``ratio_before``, ``coverage``, ``balance_share`` ...): percent with
  two decimals, ``1.59%``;
* loan counts (``loans``, and a constraint's usage and limit counted in loans): whole
  numbers, ``847``, with two decimals only where a fractional plan splits loans;
* money: in CNY millions with three decimals (Chinese: 万元 with two), the unit in the
  column's header.

:func:`table_text` is what ``npl-disposal`` prints, for scripts and notebooks too::

    print(table_text(result.channel_mix(), money=("balance", "value", "pnl"), lang="zh"))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from npl_disposal.reporting.labels import Labels, labels

__all__ = [
    "AMOUNT_COLUMNS",
    "COUNT_COLUMNS",
    "RATIO_COLUMNS",
    "amounts",
    "count",
    "money",
    "percent",
    "readable",
    "table_text",
]

#: Columns holding a ratio or a share of a whole, shown in percent.
RATIO_COLUMNS = frozenset({
    "ratio_before", "ratio_after", "threshold", "npl_ratio", "balance_share", "coverage",
    "growth", "growth_restored", "share",
})  # fmt: skip
#: Columns holding a number of loans (a fractional plan may split loans).
COUNT_COLUMNS = frozenset({"loans"})
#: A constraint's amounts, in the unit its ``unit`` column names (``CNY`` or ``loans``).
AMOUNT_COLUMNS = ("usage", "limit")


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
    ``digits`` decimals; a constraint's usage and limit follow :func:`amounts`; text,
    yes/no and the index are left as they are.
    """
    shown = amounts(frame)
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


def amounts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with a constraint's usage and limit as text in their unit.

    Where ``frame`` has a ``unit`` column: amounts in loans whole (:func:`count`), in CNY
    to the fen; without one, ``frame`` is returned as a copy, unchanged.
    """
    shown = frame.copy()
    if "unit" not in shown:
        return shown
    in_loans = shown["unit"].eq("loans").to_numpy()
    for column in AMOUNT_COLUMNS:
        if column in shown:
            shown[column] = [count(v) if loans else money(v, 2)
                             for v, loans in zip(shown[column], in_loans, strict=True)]  # fmt: skip
    return shown


def table_text(frame: pd.DataFrame, money: Sequence[str] = (), lang: str = "en") -> str:
    """``frame`` as a person reads it: ratios in percent, loan counts whole.

    The ``money`` columns (CNY yuan) show in CNY millions (Chinese: 万元), the unit in
    their headers. In Chinese the headers, channels, classes, NPL ages and yes/no are
    translated too.
    """
    lab = labels(lang)
    shown = frame.copy()
    for col in money:
        if col in shown:
            shown[col] = shown[col] / lab.money_scale
    if lab.zh:
        shown = _translated(shown, lab)
        shown.index.name = lab.column(str(shown.index.name)) if shown.index.name else None
    shown = readable(shown, money, digits=2 if lab.zh else 3)
    shown = shown.rename(columns={c: lab.column(c, lab.money_unit if c in money else "")
                                  for c in shown.columns})  # fmt: skip
    with pd.option_context("display.width", 120, "display.max_columns", 20,
                           "display.unicode.east_asian_width", lab.zh):  # fmt: skip
        return shown.to_string(justify="right")


def _translated(frame: pd.DataFrame, lab: Labels) -> pd.DataFrame:
    """Channels, classes and yes/no of ``frame`` (index and columns) in ``lab``'s words."""
    index_name = str(frame.index.name)
    if index_name == "channel":
        frame.index = frame.index.map(lab.channel)
    elif index_name == "classification":
        frame.index = frame.index.map(lab.classification)
    elif index_name == "age_bucket":
        frame.index = frame.index.map(lab.age)
    for col in frame.columns:
        if frame[col].dtype == bool:
            frame[col] = frame[col].map(lab.flag)
        elif col == "channel":
            frame[col] = frame[col].map(lab.channel)
    return frame

"""The tables of a disposal schedule: options over time, the NPL path, branch periods.

* options over time (``loan_id, channel, period, value, pnl, derecognised[, balance]``):
  the row (i, m, t) means "keep loan i until the start of period t, then send it to
  channel m"; ``value`` and ``pnl`` are CNY yuan, ``balance`` the loan's expected book
  balance at the start of t (default: today's). ``retain`` rows have period T + 1 only
  ("keep through the horizon"), one per loan. A table without a ``period`` column is a
  one-period table: its rows are period 1 (retain T + 1).
* the path (``loan_id, period, balance``, periods 1..T): the expected NPL balance of
  each loan at the end of period t if kept (CNY yuan; default: today's balance).
* branch periods (``branch, period[, inclusive_loans][, new_npl]``): a branch's
  inclusive loans at the end of t and the inclusive NPL newly arising in t (CNY yuan;
  missing rows or cells take today's inclusive loans and no new NPL).

Every reader collects every problem of its file before one
:class:`~npl_disposal.PortfolioValidationError` names them (file, row, loan_id,
column, what is allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.io._ids import locate, repeated_keys
from npl_disposal.io.options import clean_channels, portfolio_rows
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import OPTION_COLUMNS, Column
from npl_disposal.io.tables import (
    TableSource,
    check_headers,
    clean_columns,
    read_table,
    source_name,
)

__all__ = [
    "BRANCH_PERIOD_COLUMNS",
    "PATH_COLUMNS",
    "SCHEDULE_OPTION_COLUMNS",
    "ScheduleTables",
    "read_branch_periods",
    "read_path",
    "read_schedule_options",
]

_PERIOD = Column("period", "number", True, "period: 1..T (retain: T + 1)", ("期数", "处置期"))
#: The options table over time: the one-period columns, a period and the balance at disposal.
SCHEDULE_OPTION_COLUMNS: tuple[Column, ...] = (
    *OPTION_COLUMNS,
    Column("period", "number", False, "period of disposal: 1..T (retain: T + 1)",
           ("期数", "处置期")),
    Column("balance", "money", False, "CNY yuan (expected book balance at disposal)",
           ("处置时余额",)),
)
#: ``path.csv``: a kept loan's expected NPL balance at the end of each period.
PATH_COLUMNS: tuple[Column, ...] = (
    Column("loan_id", "id", True, "identifier", ("贷款编号", "借据号")),
    _PERIOD,
    Column("balance", "money", True, "CNY yuan (expected NPL balance at the end of the period)",
           ("余额",)),
)
#: ``branch_periods.csv``: a branch's inclusive loans and new NPL per period.
BRANCH_PERIOD_COLUMNS: tuple[Column, ...] = (
    Column("branch", "id", True, "branch identifier", ("机构", "分支机构")),
    _PERIOD,
    Column("inclusive_loans", "money", False,
           "CNY yuan (inclusive small/micro loans at the end of the period)",
           ("普惠小微贷款余额",)),
    Column("new_npl", "money", False, "CNY yuan (inclusive NPL newly arising in the period)",
           ("新增不良",)),
)


@dataclass(frozen=True, eq=False)
class ScheduleTables:
    """A schedule's validated tables, as arrays over the portfolio's loans and branches.

    ``options`` keeps its rows (``_loan`` the loan's row, ``period`` an int);
    ``path`` is (loans, T), CNY yuan; ``inclusive_loans`` and ``new_npl`` are
    (branches, T), CNY yuan, in the branch table's order.
    """

    periods: int
    options: pd.DataFrame
    path: np.ndarray
    inclusive_loans: np.ndarray
    new_npl: np.ndarray


def read_schedule_options(source: TableSource, portfolio: Portfolio, periods: int) -> pd.DataFrame:
    """Read and validate an options table over ``periods`` periods (see the module).

    Returns the rows with ``_loan`` (the loan's row), ``period`` (int) and ``balance``
    (CNY yuan at disposal; today's where the table has none).
    """
    name = source_name(source, "options")
    frame, log, loan = _loan_table(source, SCHEDULE_OPTION_COLUMNS, portfolio, name, "options")
    retain = (frame["channel"] == "retain").to_numpy(dtype=bool, na_value=False)
    period = _periods(frame, retain, periods, log)
    _check_option_values(frame, log)
    _check_retain_rows(frame, loan, retain, portfolio, name, log)
    log.flag(_twice(frame["channel"], loan, period, periods), "channel", frame["channel"],
             "duplicate (loan_id, channel, period)",
             "one row per loan, channel and period")  # fmt: skip
    log.raise_if_any("options validation failed")
    today = portfolio.loans["balance"].to_numpy(dtype=float)[loan]
    balance = frame["balance"].to_numpy(dtype=float) if "balance" in frame else today
    out = frame.assign(period=period, balance=np.where(np.isnan(balance), today, balance))
    if out["loan_id"].dtype != object:  # the portfolio's id objects, not a copy per option
        ids = portfolio.loans["loan_id"].to_numpy(dtype=object)
        out["loan_id"] = pd.Series(ids[loan], index=out.index, dtype=object)
    out["_loan"] = loan
    out = out.reset_index(drop=True)
    out.attrs["file"] = name
    return out


def _twice(channel: pd.Series, loan: np.ndarray, period: np.ndarray, periods: int) -> np.ndarray:
    """Rows whose (loan, channel, period) appears more than once, on integer keys.

    Rows of an unknown loan or without a channel are left to their own messages.
    Keys already increasing (as ``value_schedule`` writes them) need no sort.
    """
    codes = channel.cat.codes.to_numpy().astype(np.int64)
    ok = (loan >= 0) & (codes >= 0)
    key = (loan.astype(np.int64) * (periods + 2) + period) * (codes.max(initial=0) + 1) + codes
    key = np.where(ok, key, -1 - np.arange(key.size))  # each bad row its own key
    return repeated_keys(key)


def _loan_table(
    source: TableSource, columns: tuple[Column, ...], portfolio: Portfolio, name: str, what: str
) -> tuple[pd.DataFrame, ProblemLog, np.ndarray]:
    """A table of loan rows read, its headers checked, cleaned, each row's loan located."""
    frame = read_table(source, columns)
    own = portfolio_rows(frame, portfolio)  # a table the library wrote: ids need no lookup
    if "loan_id" in frame and own is None:  # as text once: the log's labels and cleaning share it
        frame["loan_id"] = frame["loan_id"].astype("string")
    log = ProblemLog.for_table(name, frame, frame["loan_id"].array if "loan_id" in frame else None)
    check_headers(frame, columns, log)
    log.raise_if_any(f"{what} validation failed")
    clean_columns(frame, columns, log, ids_as_text=True, categorical=("channel",),
                  clean=("loan_id",) if own is not None else ())  # fmt: skip
    if "channel" in frame:
        frame["channel"] = clean_channels(frame["channel"], log)
    loan = own if own is not None else locate(portfolio.loans["loan_id"], frame["loan_id"])
    log.flag((loan < 0) & log.ok("loan_id"), "loan_id", frame["loan_id"],
             "loan_id not in the portfolio", "a loan_id of the portfolio")  # fmt: skip
    return frame, log, loan


def _periods(frame: pd.DataFrame, retain: np.ndarray, periods: int, log: ProblemLog) -> np.ndarray:
    """Each row's period: given (checked), or 1 (retain: T + 1) without the column."""
    if "period" not in frame:
        return np.where(retain, periods + 1, 1).astype(np.int64)
    raw = frame["period"].to_numpy(dtype=float)
    whole = np.isfinite(raw) & (raw == np.round(raw))
    ok = log.ok("period")
    log.flag(ok & ~whole, "period", frame["period"], "not a whole period number",
             f"1..{periods} (retain: {periods + 1})")  # fmt: skip
    period = np.where(whole, raw, 0).astype(np.int64)
    bad = whole & ok & np.where(retain, period != periods + 1, (period < 1) | (period > periods))
    log.flag(bad & retain, "period", frame["period"], "a retain row's period is not T + 1",
             f"{periods + 1}: retain means keep through the {periods} periods")  # fmt: skip
    log.flag(bad & ~retain, "period", frame["period"], "period outside the schedule",
             f"1..{periods}")  # fmt: skip
    return period


def _check_option_values(frame: pd.DataFrame, log: ProblemLog) -> None:
    share = frame["derecognised"].to_numpy(dtype=float)
    log.flag((share < 0) | (share > 1), "derecognised", share, "share outside [0, 1]",
             "a share in [0, 1] of the balance")  # fmt: skip
    if "balance" in frame:
        balance = frame["balance"].to_numpy(dtype=float)
        log.flag(balance < 0, "balance", balance, "negative balance at disposal",
                 "CNY yuan >= 0 (empty: today's balance)")  # fmt: skip


def _check_retain_rows(
    frame: pd.DataFrame,
    loan: np.ndarray,
    retain: np.ndarray,
    portfolio: Portfolio,
    name: str,
    log: ProblemLog,
) -> None:
    """Every loan of the portfolio has exactly one retain row."""
    count = np.bincount(loan[retain & (loan >= 0)], minlength=portfolio.n_loans)
    # Rows of the portfolio, not of this table: named by loan_id alone.
    missing = ProblemLog(name, portfolio.loans["loan_id"].to_numpy(dtype=object), numbered=False)
    missing.flag(count == 0, "channel", None, "the loan has no retain row",
                 "one row with channel = retain (period T + 1) for every loan")  # fmt: skip
    missing.flag(count > 1, "channel", None, "the loan has more than one retain row",
                 "one retain row per loan")  # fmt: skip
    log.extend(missing)


def read_path(source: TableSource, portfolio: Portfolio, periods: int) -> np.ndarray:
    """``path.csv`` as a (loans, periods) array of CNY yuan; every cell must be given."""
    name = source_name(source, "path")
    frame, log, loan = _loan_table(source, PATH_COLUMNS, portfolio, name, "path")
    period = _whole_periods(frame, periods, log)
    balance = frame["balance"].to_numpy(dtype=float)
    log.flag(balance < 0, "balance", balance, "negative balance", "CNY yuan >= 0")
    ok = (loan >= 0) & (period >= 1)
    cell = loan[ok] * periods + period[ok] - 1
    seen = np.bincount(cell, minlength=portfolio.n_loans * periods)
    twice = np.zeros(len(frame), dtype=bool)
    twice[np.flatnonzero(ok)] = seen[cell] > 1
    log.flag(twice, "period", frame["period"], "the loan's period is listed twice",
             "one row per loan and period")  # fmt: skip
    absent = (seen.reshape(portfolio.n_loans, periods) == 0).any(axis=1)
    gaps = ProblemLog(name, portfolio.loans["loan_id"].to_numpy(dtype=object))
    gaps.flag(absent, "period", None, "the loan's path lacks a period",
              f"one row per loan and period 1..{periods}")  # fmt: skip
    log.extend(gaps)
    log.raise_if_any("path validation failed")
    out = np.zeros(portfolio.n_loans * periods)
    out[cell] = balance[ok]
    return out.reshape(portfolio.n_loans, periods)


def _whole_periods(frame: pd.DataFrame, periods: int, log: ProblemLog) -> np.ndarray:
    raw = frame["period"].to_numpy(dtype=float)
    good = np.isfinite(raw) & (raw == np.round(raw)) & (raw >= 1) & (raw <= periods)
    log.flag(~good & log.ok("period"), "period", frame["period"], "period outside the schedule",
             f"a whole period 1..{periods}")  # fmt: skip
    return np.where(good, raw, 0).astype(np.int64)


def read_branch_periods(
    source: TableSource, portfolio: Portfolio, periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """``branch_periods.csv`` as (branches, periods) arrays: inclusive loans and new NPL.

    Missing rows or cells take today's inclusive loans and no new NPL (CNY yuan).
    """
    table = portfolio.branch_table
    today = np.repeat(table.inclusive_loans[:, None], periods, axis=1)
    new = np.zeros((len(table.names), periods))
    name = source_name(source, "branch_periods")
    frame = read_table(source, BRANCH_PERIOD_COLUMNS)
    log = ProblemLog.for_table(name, frame, frame["branch"].astype("string").to_numpy(dtype=object)
                               if "branch" in frame else None, id_label="branch")  # fmt: skip
    check_headers(frame, BRANCH_PERIOD_COLUMNS, log)
    log.raise_if_any("branch periods validation failed")
    clean_columns(frame, BRANCH_PERIOD_COLUMNS, log)
    branch = pd.Index(table.names).get_indexer(frame["branch"].astype(str))
    log.flag((branch < 0) & log.ok("branch"), "branch", frame["branch"],
             "branch not in the branch table", "a branch of the branch table")  # fmt: skip
    period = _whole_periods(frame, periods, log)
    for column, target in (("inclusive_loans", today), ("new_npl", new)):
        if column not in frame:
            continue
        values = frame[column].to_numpy(dtype=float)
        log.flag(values < 0, column, values, "negative amount", "CNY yuan >= 0")
        given = (branch >= 0) & (period >= 1) & ~np.isnan(values)
        target[branch[given], period[given] - 1] = values[given]
    log.raise_if_any("branch periods validation failed")
    return today, new

"""Check a schedule rule by rule from its tables, never from the solver's matrix.

:func:`verify_schedule` joins a schedule (``loan_id, period, channel, share``) to the
options over time, the NPL path and the branch periods, and checks every rule of
:class:`~npl_disposal.policy.schedule.ScheduleRules` (the same definitions the model
builder reads) by evaluating its measures on the joined rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.io._ids import positions_in
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.schedule import ScheduleOffers, column_names
from npl_disposal.model.verify import Verification, _Log, check_limits
from npl_disposal.policy.measures import Measure
from npl_disposal.policy.schedule import ScheduleRules

__all__ = ["SCHEDULE_COLUMNS", "ScheduleMeasures", "verify_schedule"]

#: The columns of ``schedule.csv``.
SCHEDULE_COLUMNS = ["loan_id", "period", "channel", "share"]
_SHARE_TOL = 1e-7


@dataclass(eq=False)
class _Rows:
    """The schedule's rows joined to their options (``option`` -1: none) and loans."""

    loan: np.ndarray
    option: np.ndarray
    share: np.ndarray
    channel: np.ndarray
    period: np.ndarray
    ids: np.ndarray


def _join(problem: AllocationProblem, plan: pd.DataFrame) -> _Rows:
    opts = problem.options
    names, opt_code = _channels(opts)
    loan = positions_in(plan["loan_id"].astype(object), list(problem.loan_ids))
    code = positions_in(plan["channel"], names)
    period = plan["period"].to_numpy(dtype=np.int64)
    width = int(max(period.max(initial=0), opts["period"].max()) if len(opts) else 0) + 1
    known = opts["_loan"].to_numpy(dtype=np.int64)
    table = _key(known, opt_code, opts["period"].to_numpy(dtype=np.int64), width, len(names))
    option = _find(table, _key(loan, code, period, width, len(names)))
    return _Rows(loan, np.where(loan >= 0, option, -1), plan["share"].to_numpy(dtype=float),
                 plan["channel"].astype(object).to_numpy(), period,
                 plan["loan_id"].astype(object).to_numpy())  # fmt: skip


def _channels(opts: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The options' channel names and each option's position among them."""
    channel = opts["channel"].astype("category")
    return [str(c) for c in channel.cat.categories], channel.cat.codes.to_numpy().astype(np.int64)


def _key(
    loan: np.ndarray, code: np.ndarray, period: np.ndarray, width: int, channels: int
) -> np.ndarray:
    """One integer per (loan, period, channel); -1 where any part is unknown."""
    ok = (loan >= 0) & (code >= 0) & (period >= 0) & (period < width)
    key = (loan.astype(np.int64) * width + period) * max(channels, 1) + code
    return np.where(ok, key, -1)


def _find(table: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """Each asked key's row in ``table`` (unique keys), -1 if absent."""
    if table.size == 0:
        return np.full(asked.size, -1, dtype=np.int64)
    order = None if bool((table[1:] > table[:-1]).all()) else np.argsort(table)
    ranked = table if order is None else table[order]
    at = np.minimum(np.searchsorted(ranked, asked), ranked.size - 1)
    row = at if order is None else order[at]
    return np.where((asked >= 0) & (ranked[at] == asked), row, -1)


@dataclass(eq=False)
class ScheduleMeasures:
    """A schedule's measures evaluated on its joined rows (a :class:`Measured`)."""

    problem: AllocationProblem
    rows: _Rows
    levels: dict[str, float]

    def evaluate(self, measure: Measure) -> float | np.ndarray:
        """The measure's value (CNY yuan or loans), per branch when ``by_branch``."""
        r, opts = self.rows, self.problem.options
        keep = r.option >= 0
        if measure.channel is not None:
            keep &= r.channel == measure.channel
        if measure.periods is not None:
            keep &= np.isin(r.period, measure.periods)
        if measure.segment is not None:
            flag = self.problem.portfolio.loans[measure.segment].to_numpy(dtype=bool)
            keep &= flag[np.maximum(r.loan, 0)]
        picked = _Picked(self.problem, r.loan[keep], r.option[keep], opts)
        amount = measure.coefficients(picked) * r.share[keep]
        if not measure.by_branch:
            return float(amount.sum())
        branch = self.problem.branch_index[r.loan[keep]]
        known = branch >= 0
        return np.bincount(branch[known], amount[known], minlength=len(self.problem.branches))


@dataclass(eq=False)
class _Picked:
    problem: AllocationProblem
    loans: np.ndarray
    options: np.ndarray
    table: pd.DataFrame

    def _column(self, name: str) -> np.ndarray:
        return self.table[name].to_numpy(dtype=float)[self.options]

    @property
    def balance(self) -> np.ndarray:
        return self._column("balance")

    @property
    def pnl(self) -> np.ndarray:
        return self._column("pnl")

    @property
    def derecognised(self) -> np.ndarray:
        return self._column("derecognised")

    def kept(self, period: int) -> np.ndarray:
        assert self.problem.schedule is not None
        return self.problem.schedule.path[self.loans, period - 1]


def verify_schedule(
    problem: AllocationProblem,
    plan: pd.DataFrame,
    on: Mapping[str, float] | None = None,
    whole_loan: bool | None = None,
) -> Verification:
    """Check ``plan`` (``loan_id, period, channel, share``) against every rule of a schedule.

    ``problem`` (from :func:`~npl_disposal.model.schedule.build_schedule`) gives the
    validated tables: options over time, the NPL path and branch periods; its grid and
    rows are not read. ``on`` gives each window's on/off level (default: on exactly
    when the channel is used in that period); ``whole_loan`` (default: the policy's
    mode) also requires every share to be 0 or 1.
    """
    grid = problem.schedule
    if grid is None:
        raise ValueError("not a schedule: build it with build_schedule")
    rules = ScheduleRules.of(problem.policy)
    whole = whole_loan if whole_loan is not None else problem.policy.mode == "whole_loan"
    log = _Log()
    rows = _join(problem, plan)
    _check_shares(log, rows, problem.n_loans, whole)
    _check_loan_rules(log, problem, rows, rules)
    levels = _levels(rows, grid.windows, on)
    measured = ScheduleMeasures(problem, rows, levels)
    check_limits(log, _limits(problem, rules), measured, problem.branches)
    fixed = sum(w.fixed_cost * levels.get(w.name, 0.0) for w in grid.windows)
    found = rows.option >= 0
    value = problem.options["value"].to_numpy(dtype=float)[rows.option[found]]
    objective = float(value @ rows.share[found] - fixed)
    return Verification(log.frame(), objective, _usage(rows, problem))


def _check_shares(log: _Log, rows: _Rows, n_loans: int, whole: bool) -> None:
    share, ids = rows.share, rows.ids
    missing = rows.option < 0
    log.loans("eligible", pd.Series(share[missing], index=ids[missing], dtype=float),
              "share sent to an option the table does not offer (channel and period)")  # fmt: skip
    out = (share < -_SHARE_TOL) | (share > 1 + _SHARE_TOL)
    log.loans("share_range", pd.Series(share[out], index=ids[out], dtype=float),
              "share outside [0, 1]")  # fmt: skip
    if whole:
        split = np.abs(np.minimum(share, 1 - share)) > _SHARE_TOL
        log.loans("whole_loan", pd.Series(share[split], index=ids[split], dtype=float),
                  "split between options in whole-loan mode")  # fmt: skip
    known = rows.loan >= 0
    total = np.bincount(rows.loan[known], share[known], minlength=n_loans)
    off = np.flatnonzero(np.abs(total - 1.0) > 1e-6)
    log.loans("allocated_once", pd.Series(total[off] - 1.0, index=off, dtype=float),
              "shares do not sum to 1 (every loan is sent once, or kept)")  # fmt: skip


def _check_loan_rules(
    log: _Log, problem: AllocationProblem, rows: _Rows, rules: ScheduleRules
) -> None:
    """Windows, then the loan rules read from the options table (not the grid)."""
    opts = problem.options
    periods = rules.horizon.periods
    used = rows.share > _SHARE_TOL
    # Open or shut per (channel, period) pair, looked up per row: a handful of pairs.
    names, code = _channels(opts)
    row_code = positions_in(pd.Series(rows.channel), names)
    width = int(max(rows.period.max(initial=0), opts["period"].max())) + 2
    shut_at = np.array([[c != "retain" and t not in rules.windows(c) for t in range(width)]
                        for c in names], dtype=bool).reshape(len(names), width)  # fmt: skip
    in_range = (row_code >= 0) & (rows.period >= 0) & (rows.period < width)
    shut = used & in_range
    shut[in_range] &= shut_at[row_code[in_range], rows.period[in_range]]
    log.loans("windows", pd.Series(rows.share[shut], index=rows.ids[shut], dtype=float),
              "sent to a channel in a period outside its windows")  # fmt: skip
    columns = column_names(tuple(names), periods)
    where = np.full((len(names), width), -1, dtype=np.int64)
    for j, (c, t) in enumerate(columns):
        where[names.index(c), t] = j
    col = where[code, opts["period"].to_numpy(dtype=np.int64)]
    open_ = np.array([c == "retain" or t in rules.windows(c) for c, t in columns], bool)
    grid = np.zeros((problem.n_loans, len(columns)), dtype=bool)
    grid[opts["_loan"].to_numpy(), col] = open_[col]
    offers = ScheduleOffers(grid, columns)
    loans = problem.portfolio.loans
    for rule in problem.policy.rules.loan_rules:
        barred, barred_names = rule.barred(offers, loans)
        codes = [names.index(c) for c in barred_names if c in names]
        hit = used & np.isin(row_code, codes) & (rows.loan >= 0)
        hit &= barred[np.maximum(rows.loan, 0)]
        log.loans(rule.rule, pd.Series(rows.share[hit], index=rows.ids[hit], dtype=float),
                  rule.broken())  # fmt: skip


def _levels(rows: _Rows, windows: tuple, on: Mapping[str, float] | None) -> dict[str, float]:
    if on is not None:
        return {w.name: float(on.get(w.name, 0.0)) for w in windows}
    out = {}
    for w in windows:
        used = (rows.channel == w.channel) & (rows.period == w.period) & (rows.share > _SHARE_TOL)
        out[w.name] = 1.0 if used.any() else 0.0
    return out


def _limits(problem: AllocationProblem, rules: ScheduleRules) -> list:
    grid = problem.schedule
    assert grid is not None
    if problem.portfolio.branches is None:
        return rules.limits(list(grid.windows))
    checked = rules.horizon.checked(problem.policy.tolerance_at)
    kept = grid.kept_npl(problem.branch_index, problem.inclusive, checked)
    total = grid.inclusive_loans[:, [t - 1 for t in checked]]
    return rules.limits(list(grid.windows), kept, total, problem.branches)


def _usage(rows: _Rows, problem: AllocationProblem) -> dict[str, float]:
    """Balance at disposal (CNY yuan) and loans sent to each channel in each period."""
    found = rows.option >= 0
    balance = problem.options["balance"].to_numpy(dtype=float)[rows.option[found]]
    share = rows.share[found]
    frame = pd.DataFrame({"channel": rows.channel[found], "period": rows.period[found],
                          "balance": balance * share, "loans": share})  # fmt: skip
    out: dict[str, float] = {}
    for (channel, period), g in frame.groupby(["channel", "period"], sort=True):
        out[f"{channel}@{period}_balance"] = float(g["balance"].sum())
        out[f"{channel}@{period}_loans"] = float(g["loans"].sum())
    return out

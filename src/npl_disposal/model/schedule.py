"""A disposal schedule as an allocation problem: each option is a channel *and* a period.

The grid's columns are ``retain`` (kept through the horizon, period T + 1) and one
column per channel and period, named ``channel@period`` (``write_off@2``). A loan still
takes exactly one option, so every solver and method of the one-period problem solves
a schedule unchanged; only the rows differ: those of
:class:`~npl_disposal.policy.schedule.ScheduleRules` (budgets per horizon and period,
one on/off block per window, profit per year, tolerance per checked period on the NPL
path). ``docs/model.md``, section 8, states the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.io._ids import positions_in
from npl_disposal.io.options import channel_order, check_channels
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.schedule import (
    read_branch_periods,
    read_path,
    read_schedule_options,
)
from npl_disposal.io.tables import TableSource
from npl_disposal.model.problem import AllocationProblem, _branch_names
from npl_disposal.model.rows import Block, Cells, RowBuilder, add_limits
from npl_disposal.policy import Policy, load_policy
from npl_disposal.policy.budgets import Limit
from npl_disposal.policy.schedule import Horizon, ScheduleRules, Window
from npl_disposal.valuation.schedule import value_schedule

__all__ = ["ScheduleGrid", "ScheduleOffers", "build_schedule", "column_names", "restricted"]


def column_names(channels: tuple[str, ...], periods: int) -> tuple[tuple[str, int], ...]:
    """The grid's columns as (channel, period): retain (T + 1), then each period's channels."""
    others = [c for c in channels if c != "retain"]
    return (("retain", periods + 1), *((c, t) for t in range(1, periods + 1) for c in others))


@dataclass(frozen=True, eq=False)
class ScheduleGrid:
    """What a schedule adds to the one-period problem (arrays over its grid).

    ``column_channel`` and ``column_period`` say what each column of the grid is;
    ``disposal`` is each option's balance at disposal and ``path`` each loan's
    expected NPL balance at the end of each period if kept (CNY yuan, (loans, T));
    ``inclusive_loans`` and ``new_npl`` are each branch's per period (CNY yuan,
    (branches, T)); ``windows`` the on/off blocks.
    """

    horizon: Horizon
    column_channel: tuple[str, ...]
    column_period: np.ndarray
    disposal: np.ndarray
    path: np.ndarray
    inclusive_loans: np.ndarray
    new_npl: np.ndarray
    windows: tuple[Window, ...]

    def kept_npl(
        self, branch_index: np.ndarray, inclusive: np.ndarray, periods: tuple[int, ...]
    ) -> np.ndarray:
        """Each branch's inclusive NPL at ``periods`` if nothing were disposed (CNY yuan).

        The kept path of its inclusive loans plus the new NPL arisen by then;
        (branches, len(periods)).
        """
        k = self.inclusive_loans.shape[0]
        inc = inclusive & (branch_index >= 0)
        out = np.empty((k, len(periods)))
        arisen = np.cumsum(self.new_npl, axis=1)
        for j, t in enumerate(periods):
            kept = np.bincount(branch_index[inc], self.path[inc, t - 1], minlength=k)
            out[:, j] = kept + arisen[:, t - 1]
        return out


@dataclass(frozen=True, eq=False)
class ScheduleOffers:
    """Which channels a loan is offered, for the loan rules of a schedule.

    ``offered(channel)``: in period 1 (write-off priority is triggered by a period-1
    write-off row); ``offered_besides(channel)``: any other channel in any period.
    """

    grid: np.ndarray
    columns: tuple[tuple[str, int], ...]

    def offered(self, channel: str) -> np.ndarray:
        """Mask of the loans offered ``channel`` in period 1 (retain: kept)."""
        wanted = [j for j, (c, t) in enumerate(self.columns) if (c == channel and t <= 1)
                  or c == channel == "retain"]  # fmt: skip
        return np.asarray(self.grid[:, wanted].any(axis=1), dtype=bool)

    def offered_besides(self, channel: str) -> np.ndarray:
        """Mask of the loans offered any other channel in some period."""
        wanted = [j for j, (c, _) in enumerate(self.columns) if c != channel]
        return np.asarray(self.grid[:, wanted].any(axis=1), dtype=bool)


def build_schedule(
    portfolio: Portfolio | TableSource,
    policy: Policy | TableSource | dict[str, object],
    options: pd.DataFrame | TableSource | None = None,
    branches: TableSource | None = None,
    *,
    path: pd.DataFrame | TableSource | None = None,
    branch_periods: pd.DataFrame | TableSource | None = None,
) -> AllocationProblem:
    """Build the schedule of a policy with ``[schedule]`` as an :class:`AllocationProblem`.

    ``options`` is the options table over time (``loan_id, channel, period, value, pnl,
    derecognised[, balance]``; see :mod:`npl_disposal.io.schedule`); without it the
    library values them (:func:`~npl_disposal.valuation.value_schedule`, which also
    gives the path). ``path`` and ``branch_periods`` are optional (defaults: the
    valuation's path, or today's balances with a given options table; today's
    inclusive loans, no new NPL). Solve it with :func:`~npl_disposal.solve`.
    """
    pf = read_portfolio(portfolio, branches)
    pol = load_policy(policy)
    horizon = ScheduleRules.of(pol).horizon
    periods = horizon.periods
    if options is None:
        valued = value_schedule(pf, periods, horizon.period_months, policy=pol)
        options = valued.options
        path = valued.path if path is None else path
    opts = read_schedule_options(options, pf, periods)
    check_channels(opts, pol.channels)
    kept = _path(pf, path, periods)
    inc_loans, new_npl = _branch_periods(pf, branch_periods, periods)
    return _build(pf, pol, opts, kept, inc_loans, new_npl)


def restricted(problem: AllocationProblem, keep: np.ndarray) -> AllocationProblem:
    """The schedule with only the option rows ``keep`` (a mask over its options; retain stays).

    The loan rules read the options left: a plan that ignores later periods keeps a
    loan it could only sell later.
    """
    grid = problem.schedule
    if grid is None:
        raise ValueError("not a schedule: build it with build_schedule")
    opts = problem.options
    keep = np.asarray(keep, dtype=bool) | (opts["channel"] == "retain").to_numpy(dtype=bool)
    return _build(problem.portfolio, problem.policy, opts[keep].reset_index(drop=True),
                  grid.path, grid.inclusive_loans, grid.new_npl)  # fmt: skip


def _build(
    pf: Portfolio,
    pol: Policy,
    opts: pd.DataFrame,
    kept: np.ndarray,
    inc_loans: np.ndarray,
    new_npl: np.ndarray,
) -> AllocationProblem:
    rules = ScheduleRules.of(pol)
    horizon = rules.horizon
    columns = column_names(channel_order(opts["channel"].astype("category")), horizon.periods)
    grids, offered = _grids(opts, columns, pf.n_loans)
    open_ = _in_window(rules, columns)
    eligible = _eligible(offered & open_, columns, pf.loans, pol)
    offered_pairs = {columns[j] for j in np.flatnonzero(eligible.any(axis=0))}
    windows = tuple(rules.blocks(offered_pairs))
    names = tuple(c if c == "retain" else f"{c}@{t}" for c, t in columns)
    grid = ScheduleGrid(horizon, tuple(c for c, _ in columns),
                        np.array([t for _, t in columns], dtype=np.int64), grids["balance"],
                        kept, inc_loans, new_npl, windows)  # fmt: skip
    return _assemble(pf, pol, opts, rules, grid, names, grids, offered, eligible)


def _path(pf: Portfolio, path: pd.DataFrame | TableSource | None, periods: int) -> np.ndarray:
    if path is not None:
        return read_path(path, pf, periods)
    today = pf.loans["balance"].to_numpy(dtype=float)
    return np.repeat(today[:, None], periods, axis=1)


def _branch_periods(
    pf: Portfolio, source: pd.DataFrame | TableSource | None, periods: int
) -> tuple[np.ndarray, np.ndarray]:
    if pf.branches is None:
        return np.zeros((0, periods)), np.zeros((0, periods))
    if source is not None:
        return read_branch_periods(source, pf, periods)
    today = pf.branch_table.inclusive_loans
    return np.repeat(today[:, None], periods, axis=1), np.zeros((len(today), periods))


def _grids(
    opts: pd.DataFrame, columns: tuple[tuple[str, int], ...], n: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The options scattered on the (loans, columns) grid: value, pnl, shares, balance."""
    channel = opts["channel"].astype("category")
    period = opts["period"].to_numpy(dtype=np.int64)
    # Each (channel, period) pair's column, looked up on the channel's codes.
    names = list(channel.cat.categories)
    lookup = np.full((len(names), int(period.max(initial=0)) + 1), -1, dtype=np.int64)
    for j, (c, t) in enumerate(columns):
        if c in names:
            lookup[names.index(c), t] = j
    col = lookup[channel.cat.codes.to_numpy(), period]
    cell = opts["_loan"].to_numpy(dtype=np.int64) * len(columns) + col
    grids = {}
    for name in ("value", "pnl", "derecognised", "balance"):
        grid = np.zeros((n, len(columns)))
        grid.ravel()[cell] = opts[name].to_numpy(dtype=float)
        grids[name] = grid
    offered = np.zeros((n, len(columns)), dtype=bool)
    offered.ravel()[cell] = True
    return grids, offered


def _in_window(rules: ScheduleRules, columns: tuple[tuple[str, int], ...]) -> np.ndarray:
    """Columns of a windowed channel outside its windows take no loan."""
    return np.array([c == "retain" or t in rules.windows(c) for c, t in columns], dtype=bool)


def _eligible(
    available: np.ndarray, columns: tuple[tuple[str, int], ...], loans: pd.DataFrame, pol: Policy
) -> np.ndarray:
    """The options in their windows less those the loan rules bar (in every period)."""
    eligible = available.copy()
    offers = ScheduleOffers(available, columns)
    for rule in pol.rules.loan_rules:
        barred, names = rule.barred(offers, loans)
        for j, (c, _) in enumerate(columns):
            if c in names:
                eligible[barred, j] = False
    return eligible


def _assemble(
    pf: Portfolio,
    pol: Policy,
    opts: pd.DataFrame,
    rules: ScheduleRules,
    grid: ScheduleGrid,
    names: tuple[str, ...],
    grids: dict[str, np.ndarray],
    offered: np.ndarray,
    eligible: np.ndarray,
) -> AllocationProblem:
    loans = pf.loans
    n, m = eligible.shape
    branch_names = _branch_names(pf)
    branch_index = positions_in(loans["branch"], branch_names)
    balance = loans["balance"].to_numpy(dtype=float)
    inclusive = loans["inclusive"].to_numpy(dtype=bool)
    blocks = tuple(Block(w.name, w.fixed_cost) for w in grid.windows)
    cells = Cells(names, eligible, balance, grids["pnl"], grids["derecognised"], inclusive,
                  branch_index, np.int32 if n * m < 2**31 else np.int64,
                  loans["small_micro"].to_numpy(dtype=bool), grid.column_channel,
                  grid.column_period, grid.disposal, grid.path)  # fmt: skip
    builder = RowBuilder(n, m, blocks)
    add_limits(builder, cells, _limits(rules, grid, pf, branch_index, inclusive, branch_names),
               branch_names, [b.name for b in blocks])  # fmt: skip
    return AllocationProblem(
        loan_ids=loans["loan_id"].to_numpy(dtype=object), channels=names, balance=balance,
        branch_index=branch_index, branches=branch_names, inclusive=inclusive,
        value=grids["value"], pnl=grids["pnl"], derecognised=grids["derecognised"],
        offered=offered, eligible=eligible, rows=builder.build(), blocks=blocks, mode=pol.mode,
        portfolio=pf, policy=pol, options=opts, schedule=grid,
    )  # fmt: skip


def _limits(
    rules: ScheduleRules,
    grid: ScheduleGrid,
    pf: Portfolio,
    branch_index: np.ndarray,
    inclusive: np.ndarray,
    branch_names: tuple[str, ...],
) -> list[Limit]:
    """The schedule's limits; the tolerance's from each branch's NPL path when it has a table."""
    if pf.branches is None:
        return rules.limits(list(grid.windows))
    checked = rules.horizon.checked(rules.policy.tolerance_at)
    kept = grid.kept_npl(branch_index, inclusive, checked)
    total = grid.inclusive_loans[:, [t - 1 for t in checked]]
    return rules.limits(list(grid.windows), kept, total, branch_names)

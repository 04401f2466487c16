"""Branch figures of a schedule, at each period the tolerance is checked at.

For branch k and checked period t of year y, with ``N`` its inclusive NPL at t if
nothing were disposed (the kept path plus the new NPL so far), ``L`` its inclusive
loans at t and ``D`` the inclusive NPL the schedule has derecognised by t (each loan's
path balance at t times the derecognised share of its disposal): the figures of a
one-period plan (``ratio_before = N / L``, ``ratio_after = (N - D) / (L - D)``, the
threshold, ``within``), and the wage pool of year y: ``npl_loss`` from the pnl of the
disposals in that year's periods (retain in year 1) plus its share of that year's fixed
costs, ``profit_after``, ``relief`` and ``wage_pool``. All money in CNY yuan.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.schedule_verify import ScheduleMeasures, _join
from npl_disposal.policy.measures import Measure
from npl_disposal.policy.schedule import Horizon, ScheduleRules, Window

__all__ = ["SCHEDULE_FIGURES", "schedule_figures"]

#: The columns of a schedule's ``branches.csv``.
SCHEDULE_FIGURES = [
    "branch", "period", "year", "ratio_before", "ratio_after", "threshold", "within",
    "npl_loss", "profit_after", "relief", "wage_pool", "inclusive_npl", "inclusive_loans",
    "derecognised", "headroom",
]  # fmt: skip


def schedule_figures(
    problem: AllocationProblem, plan: pd.DataFrame, blocks: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per branch and checked period (see the module); needs the branch table."""
    grid = problem.schedule
    if grid is None or problem.portfolio.branches is None:
        raise ValueError("schedule figures need a schedule with its branch table")
    rules = ScheduleRules.of(problem.policy)
    horizon = rules.horizon
    table = problem.portfolio.branch_table
    levels = {w.name: float((blocks or {}).get(w.name, 0.0)) for w in grid.windows}
    measured = ScheduleMeasures(problem, _join(problem, plan), levels)
    checked = horizon.checked(problem.policy.tolerance_at)
    kept = grid.kept_npl(problem.branch_index, problem.inclusive, checked)
    tau = rules.policy.rules.tolerance.threshold if rules.policy.rules.tolerance else np.nan
    wage = problem.policy.rules.wage_pool
    frames = []
    for j, t in enumerate(checked):
        year = horizon.year(t)
        npl, total = kept[:, j], grid.inclusive_loans[:, t - 1]
        so_far = Measure("path", inclusive=True, by_branch=True,
                         periods=tuple(range(1, t + 1)), at=t)  # fmt: skip
        derec = np.asarray(measured.evaluate(so_far))
        loss = _npl_loss(measured, horizon, year, grid.windows)
        after = (npl - derec) / (total - derec)
        within = after <= tau + 1e-12
        profit_after = table.profit - loss
        relief = np.where(within, (1.0 - wage.section.consider_share) * loss, 0.0) + 0.0
        frames.append(pd.DataFrame({
            "branch": table.names, "period": t, "year": year, "ratio_before": npl / total,
            "ratio_after": after, "threshold": tau, "within": within, "npl_loss": loss,
            "profit_after": profit_after, "relief": relief,
            "wage_pool": wage.rates(table) * np.maximum(0.0, profit_after + relief),
            "inclusive_npl": npl, "inclusive_loans": total, "derecognised": derec + 0.0,
            "headroom": (tau * (total - derec) - (npl - derec)) / (1.0 - tau),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)[SCHEDULE_FIGURES]


def _npl_loss(
    measured: ScheduleMeasures, horizon: Horizon, year: int, windows: tuple[Window, ...]
) -> np.ndarray:
    """Each branch's NPL loss in a year: its disposals' pnl and its share of the year's costs."""
    periods = horizon.in_year(year)
    pnl = np.asarray(measured.evaluate(Measure("pnl", by_branch=True, periods=periods)), float)
    for w in windows:
        if not w.fixed_cost or horizon.year(w.period) != year:
            continue
        pooled = np.asarray(measured.evaluate(Measure("balance", w.channel, by_branch=True,
                                                      periods=(w.period,))), float)  # fmt: skip
        if pooled.sum() > 0:
            pnl = pnl - w.fixed_cost * measured.levels.get(w.name, 1.0) * pooled / pooled.sum()
    return np.maximum(0.0, -pnl) + 0.0

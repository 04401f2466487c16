"""A solved schedule: which channel for each loan, and when.

:class:`ScheduleResult` is an :class:`~npl_disposal.AllocationResult` whose ``plan``
is the schedule (``loan_id, period, channel, share``; ``retain`` has period T + 1),
with the channel mix per period, the branch figures at each checked period, and
``write`` giving ``schedule.csv``, ``branches.csv`` (one row per branch and checked
period) and ``summary.json`` (with each period's usage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.schedule_figures import schedule_figures
from npl_disposal.solvers.result import AllocationResult, constraint_records

__all__ = ["ScheduleResult", "schedule_plan"]


def schedule_plan(problem: AllocationProblem, shares: np.ndarray) -> pd.DataFrame:
    """The schedule of ``shares``: ``loan_id, period, channel, share`` (positive shares)."""
    grid = problem.schedule
    assert grid is not None
    loan, column = np.nonzero(shares > 1e-12)
    channel = np.asarray(grid.column_channel, dtype=object)[column]
    return pd.DataFrame(
        {
            "loan_id": problem.loan_ids[loan].astype(object),
            "period": grid.column_period[column],
            "channel": channel,
            "share": shares[loan, column],
        }
    )


@dataclass(frozen=True, eq=False)
class ScheduleResult(AllocationResult):
    """A solved schedule (see the module)."""

    def channel_mix(self) -> pd.DataFrame:
        """Loans, balance at disposal, value and pnl (CNY yuan) per channel and period."""
        grid = self.problem.schedule
        assert grid is not None
        shares, p = self.shares, self.problem
        out = pd.DataFrame(
            {
                "channel": grid.column_channel,
                "period": grid.column_period,
                "loans": shares.sum(axis=0),
                "balance": np.einsum("ij,ij->j", shares, grid.disposal),
                "value": np.einsum("ij,ij->j", shares, p.value),
                "pnl": np.einsum("ij,ij->j", shares, p.pnl),
            }
        )
        return out[out["loans"] > 1e-9].reset_index(drop=True)

    def branch_figures(self) -> pd.DataFrame:
        """Tolerance and wage-pool figures per branch at each checked period (CNY yuan)."""
        if not self._figures:
            self._figures.append(schedule_figures(self.problem, self.plan, self.blocks))
        return self._figures[0].copy()

    def balance_by_period(self) -> pd.DataFrame:
        """Balance at disposal (CNY yuan) per channel (rows) and period 1..T, then T + 1: kept."""
        grid = self.problem.schedule
        periods = grid.horizon.periods if grid is not None else 1
        table = self.channel_mix().pivot_table(index="channel", columns="period",
                                               values="balance", aggfunc="sum",
                                               fill_value=0.0, sort=False)  # fmt: skip
        return table.reindex(range(1, periods + 2), axis=1, fill_value=0.0)

    def summary(self) -> str:
        """Status, value, gap, and the balance disposed per channel and period (CNY m)."""
        horizon = self.problem.schedule.horizon if self.problem.schedule else None
        periods = horizon.periods if horizon else 1
        lines = [
            f"{self.status.value} {self.mode} schedule over {periods} periods for "
            f"{self.problem.n_loans:,} loans: value CNY {self.objective / 1e6:,.2f}m, bound "
            f"CNY {self.bound / 1e6:,.2f}m, gap {self.gap:.2e} ({self.solver.backend}/"
            f"{self.solver.method}, {self.solver.seconds:.2f} s)"
        ]
        table = self.balance_by_period() / 1e6
        lines.append("  balance disposed, CNY m: " + "  ".join(
            f"period {t}" if t <= periods else "kept" for t in table.columns))  # fmt: skip
        for channel, row in table.iterrows():
            lines.append(f"  {channel:<16}" + "".join(f"{v:>12,.2f}" for v in row))
        binding = self.binding()
        if len(binding):
            lines.append("binding: " + ", ".join(binding["name"]))
        return "\n".join(lines)

    #: The schedule's file in the output folder (:meth:`AllocationResult.write`).
    plan_file: ClassVar[str] = "schedule.csv"

    def branches_frame(self) -> pd.DataFrame:
        """What ``branches.csv`` holds: the branch figures at each checked period."""
        return self.branch_figures()

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``summary.json``, with each period's usage."""
        out = super().to_dict()
        mix = self.channel_mix()
        grid = self.problem.schedule
        last = grid.horizon.periods if grid is not None else 1
        periods: dict[str, Any] = {}
        for period, rows in mix.groupby("period", sort=True):
            key = "kept" if int(period) > last else str(period)
            periods[key] = json.loads(rows.drop(columns="period").set_index("channel")
                                      .to_json(orient="index"))  # fmt: skip
        out["channels"] = periods
        out["periods"] = periods
        out["constraints"] = constraint_records(self.constraints)
        return out


"""What timing is worth: the schedule against two plans that ignore it.

* **all now**: every disposal in period 1 (a loan is sent now or kept through the
  horizon), under every rule;
* **myopic**: period by period, each period planned with the loans left: dispose now
  (that period's options) or wait, under every rule, the earlier periods' choices
  fixed; what is still waiting after the last period is kept.

All three are whole-loan plans of the same schedule problem, solved and verified by
:func:`~npl_disposal.solve`; values are CNY yuan (present value today).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.exceptions import InfeasiblePolicyError
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.schedule import ScheduleGrid, restricted
from npl_disposal.model.schedule_verify import verify_schedule
from npl_disposal.solvers.backends import get_backend
from npl_disposal.solvers.result import AllocationResult, Status
from npl_disposal.solvers.schedule_result import schedule_plan
from npl_disposal.solvers.solve import solve

__all__ = ["TimingValue", "timing_value"]


@dataclass(frozen=True)
class TimingValue:
    """The schedule's value and the two baselines' (CNY yuan; None: no plan meets the rules)."""

    schedule: float
    all_now: float | None
    myopic: float | None
    periods: int

    def table(self) -> pd.DataFrame:
        """One row per plan: ``plan, value, gain, gain_pct`` (the schedule's gain over it)."""
        rows = [("schedule", self.schedule), ("all now", self.all_now),
                ("myopic", self.myopic)]  # fmt: skip
        out = pd.DataFrame(rows, columns=["plan", "value"])
        value = out["value"].astype(float)
        out["gain"] = self.schedule - value
        out["gain_pct"] = 100.0 * out["gain"] / value.abs()
        return out

    def summary(self) -> str:
        """The values in CNY m and the schedule's gain over each baseline."""
        lines = [f"what timing is worth over {self.periods} periods (CNY m, present value):",
                 f"  schedule   {self.schedule / 1e6:>12,.2f}"]  # fmt: skip
        for name, value in (("all now", self.all_now), ("myopic", self.myopic)):
            if value is None:
                lines.append(f"  {name:<10} no plan meets every rule")
                continue
            gain = self.schedule - value
            lines.append(f"  {name:<10} {value / 1e6:>12,.2f}   schedule gains "
                         f"{gain / 1e6:,.2f} ({100 * gain / abs(value):.2f}%)")  # fmt: skip
        return "\n".join(lines)


def timing_value(
    problem: AllocationProblem, schedule: AllocationResult | None = None, **settings: Any
) -> TimingValue:
    """Solve the schedule and both baselines (whole-loan); ``settings`` go to :func:`solve`.

    ``schedule``: the problem's whole-loan schedule when already solved (not solved again).
    """
    grid = problem.schedule
    if grid is None:
        raise ValueError("not a schedule: build it with build_schedule")
    settings = {**settings, "mode": "whole_loan"}
    best = schedule if schedule is not None else solve(problem, **settings)
    if best.problem is not problem or best.mode != "whole_loan":
        raise ValueError("schedule: a whole-loan result of this same problem")
    return TimingValue(best.objective, _all_now(problem, grid, settings),
                       _myopic(problem, grid, settings), grid.horizon.periods)  # fmt: skip


def _all_now(problem: AllocationProblem, grid: ScheduleGrid, settings: dict[str, Any]
             ) -> float | None:  # fmt: skip
    """Only period 1's options (and keeping): a plan that ignores later periods."""
    now = problem.options["period"].to_numpy() == 1
    try:
        result = solve(restricted(problem, now), **settings)
    except InfeasiblePolicyError:
        return None
    return None if result.status is Status.NO_SOLUTION else result.objective


def _myopic(problem: AllocationProblem, grid: ScheduleGrid, settings: dict[str, Any]
            ) -> float | None:  # fmt: skip
    """Period by period; each period's plan is a step, only the whole schedule is verified."""
    retain = grid.column_period > grid.horizon.periods
    chosen = np.full(problem.n_loans, -1)
    backend = get_backend(str(settings.get("solver") or "highs"))
    for t in range(1, grid.horizon.periods + 1):
        last = t == grid.horizon.periods
        # The schedule's own eligibility (windows and loan rules read over every period),
        # this period's columns only: a rule such as 应核尽核 binds the myopic plan too.
        eligible = problem.eligible & ((grid.column_period == t) | retain)
        if not last:  # waiting is allowed while some later period still offers the loan a way out
            later = np.asarray((problem.eligible & (grid.column_period > t) & ~retain).any(1))
            eligible[:, retain] |= later[:, None]
        fixed = chosen >= 0
        eligible[fixed] = False
        eligible[np.flatnonzero(fixed), chosen[fixed]] = True
        step, _ = backend.solve(replace(problem, eligible=eligible), "whole_loan", "auto",
                                settings.get("time_limit"), 1e-6)  # fmt: skip
        if step.status not in ("optimal", "feasible", "time_limit") or not np.isfinite(
            step.objective
        ):
            return None
        picked = step.shares.argmax(axis=1)
        now = ~fixed & ((grid.column_period[picked] == t) | (last & retain[picked]))
        chosen[now] = picked[now]
    shares = np.zeros(problem.eligible.shape)
    shares[np.arange(problem.n_loans), chosen] = 1.0
    check = verify_schedule(problem, schedule_plan(problem, shares), whole_loan=True)
    return check.objective if check.ok else None

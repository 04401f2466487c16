"""The HiGHS backend: one model of every loan, or the decomposition, from arrays.

``method="direct"`` passes one model of every loan to HiGHS (exact; fine up to tens of
thousands of options); ``"decomposition"`` prices most loans out and solves small
restricted models (:mod:`._pricing`, :mod:`._whole_loan`); ``"auto"`` takes ``"direct"``
up to :data:`DIRECT_LIMIT` options. No Python object per variable is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE, restricted_model, shares_from
from npl_disposal.solvers._highs import run_highs
from npl_disposal.solvers._outcome import Outcome, failed
from npl_disposal.solvers._pricing import lagrangian_bound, reduced_values, solve_fractional
from npl_disposal.solvers._whole_loan import solve_whole_loan

__all__ = ["DIRECT_LIMIT", "METHODS", "PRESOLVE_TIME_LIMIT_OPTIONS", "HighsBackend", "solve_direct"]

#: Problems with at most this many eligible options go straight to one HiGHS model.
DIRECT_LIMIT = 12_000
#: Above this many options a time-limited direct whole-loan MILP runs without HiGHS's
#: presolve, which does not keep the time limit (ERGO-Code/HiGHS#1501).
PRESOLVE_TIME_LIMIT_OPTIONS = 50_000
#: The methods of the HiGHS backend.
METHODS = ("auto", "direct", "decomposition")


@dataclass(frozen=True)
class HighsBackend:
    """HiGHS (``highspy``), fed arrays: the default backend, ``solver="highs"``."""

    name: str = "highs"

    def solve(
        self,
        problem: AllocationProblem,
        mode: str,
        method: str,
        time_limit: float | None,
        mip_gap: float,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[Outcome, str]:
        """The outcome, and the method used (``direct`` or ``decomposition``)."""
        method = resolve_method(problem, method)
        if method == "decomposition":
            return _decomposition(problem, mode, time_limit, mip_gap, progress), method
        if method != "direct":
            raise ValueError(f"method must be 'auto', 'direct' or 'decomposition', not {method!r}")
        if progress is not None:
            kind = "MILP" if mode == "whole_loan" else "LP"
            options = int(problem.eligible.sum())
            progress(f"one HiGHS {kind} of every loan: {problem.n_loans:,} loans, "
                     f"{options:,} options, {len(problem.rows)} rows")  # fmt: skip
        outcome = solve_direct(problem, mode, time_limit, mip_gap)
        if progress is not None:
            progress(f"HiGHS: {outcome.status}, value CNY {outcome.objective / 1e6:,.2f}m, "
                     f"bound CNY {outcome.bound / 1e6:,.2f}m")  # fmt: skip
        return outcome, method


def resolve_method(problem: AllocationProblem, method: str) -> str:
    """``auto`` made ``direct`` (up to :data:`DIRECT_LIMIT` options) or ``decomposition``."""
    if method != "auto":
        return method
    return "direct" if problem.eligible.sum() <= DIRECT_LIMIT else "decomposition"


def _decomposition(
    problem: AllocationProblem,
    mode: str,
    time_limit: float | None,
    mip_gap: float,
    progress: Callable[[str], None] | None,
) -> Outcome:
    if mode == "fractional":
        outcome = solve_fractional(problem, time_limit, progress=progress)
    else:
        outcome = solve_whole_loan(problem, time_limit, mip_gap, progress=progress)
    if np.abs(outcome.shortfall).max(initial=0.0) * MONEY_SCALE > 1e-7:
        return replace(outcome, status="infeasible")
    return outcome


def solve_direct(
    problem: AllocationProblem, mode: str, time_limit: float | None, mip_gap: float
) -> Outcome:
    """One HiGHS model of every loan (exact; for small and medium problems).

    ``time_limit`` (seconds) covers building the model too: HiGHS gets what is left.
    """
    start = time.perf_counter()
    free = np.ones(problem.n_loans, dtype=bool)
    whole = mode == "whole_loan"
    restricted = restricted_model(problem, free, None, integer=whole, elastic=False)
    big = restricted.n_x > PRESOLVE_TIME_LIMIT_OPTIONS
    presolve = not (whole and time_limit is not None and big)
    left = None if time_limit is None else time_limit - (time.perf_counter() - start)
    if left is not None and left <= 0:
        return failed(problem, "no_solution", f"the time limit ({time_limit:g} s) was spent "
                      "building the model; no plan")  # fmt: skip
    sol = run_highs(restricted.model, time_limit=left, mip_gap=mip_gap / 10,
                    presolve=presolve)  # fmt: skip
    k = len(problem.rows)
    # Only an optimum, or a MIP incumbent, is a plan: HiGHS may also hand back the
    # iterate of an infeasible or interrupted LP, which need not meet the rules.
    usable = sol.status == "optimal" or (whole and sol.status in ("time_limit", "target"))
    if not sol.x.size or not usable:
        if sol.status == "time_limit":
            sol = replace(sol, status="no_solution")
        return failed(problem, sol.status, sol.message)
    x = np.round(sol.x) if whole else sol.x
    shares = shares_from(problem, restricted, x, np.zeros(problem.eligible.shape))
    y = sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks]
    if whole:
        integer = np.array([b.integer for b in problem.blocks], dtype=bool)
        y = np.where(integer, np.round(y), np.clip(y, 0.0, 1.0))
    duals = restricted.resource_duals(sol.row_dual) if sol.row_dual.size else np.zeros(k)
    value = float((problem.value * shares).sum() + problem.block_cost @ y)
    if whole:
        bound = max(value, -sol.bound / MONEY_SCALE)
    else:
        bound = max(value, lagrangian_bound(problem, duals, reduced_values(problem, duals)))
    status = "optimal" if sol.status == "optimal" else "feasible"
    return Outcome(status=status, shares=shares, y=y, objective=value, bound=bound, duals=duals,
                   shortfall=np.zeros(k), iterations=1, free_loans=problem.n_loans,
                   message=sol.message)  # fmt: skip



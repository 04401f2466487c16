"""Solve the allocation problem: ``solve(problem, mode=..., solver=...)``.

>>> from npl_disposal import build_problem, solve
>>> result = solve(build_problem(portfolio, policy, options))  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP

Backends (:mod:`.backends`): ``"highs"`` (default; arrays straight into HiGHS, with the
decomposition for large portfolios) and any PuLP solver by name (``"PULP_CBC_CMD"``,
``"HiGHS"``, ``"GUROBI"``...). Before any solve the quick checks of
:func:`~npl_disposal.model.diagnose.precheck` run; after it, every plan is checked by
:func:`~npl_disposal.verify_plan`. A policy that cannot be met raises
:class:`~npl_disposal.InfeasiblePolicyError` in the bank's words.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.exceptions import InfeasiblePolicyError, PolicyError, SolverError
from npl_disposal.model.diagnose import explain, precheck
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.verify import Verification, verify_plan
from npl_disposal.policy import Policy
from npl_disposal.solvers._outcome import Outcome
from npl_disposal.solvers._pricing import solve_fractional
from npl_disposal.solvers._tail_whole import solve_tail_whole_loan, tangent_applies
from npl_disposal.solvers.backends import Backend, get_backend
from npl_disposal.solvers.highs_backend import METHODS, resolve_method
from npl_disposal.solvers.result import (
    AllocationResult,
    SolverReport,
    Status,
    constraint_table,
    plan_with_keys,
)
from npl_disposal.solvers.tail_floor import tail_floor_conflict

__all__ = [
    "SOLVER_DEFAULTS",
    "check_settings",
    "explain_infeasibility",
    "solve",
    "solver_settings",
]


#: Keys of the policy's ``[solver]`` section and their defaults.
SOLVER_DEFAULTS: dict[str, Any] = {
    "backend": "highs",
    "time_limit": None,
    "mip_gap": 1e-6,
    "method": "auto",
}


def check_settings(
    values: Mapping[str, object], name: Callable[[str], str] = "[solver] {}".format
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check solver settings (``backend, time_limit, mip_gap, method``), naming each bad one.

    One check for the policy's ``[solver]`` section, the arguments of :func:`solve` and
    the command line's flags; ``name`` says how a key is named where it was given (the
    command line: ``--time-limit``). Returns the valid values and the problems.
    """
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in values.items():
        where = name(key)
        number = (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else math.nan
        )
        if key not in SOLVER_DEFAULTS:
            problems.append((where, f"unknown key; allowed keys: {', '.join(SOLVER_DEFAULTS)}"))
        elif key == "backend" and not (isinstance(value, str) and value):
            problems.append((where, "must be 'highs' or a PuLP solver name such as 'PULP_CBC_CMD'"))
        elif key == "method" and value not in METHODS:
            problems.append((where, f"must be one of {', '.join(METHODS)}; got {value!r}"))
        elif key == "time_limit" and not (math.isfinite(number) and number > 0):
            problems.append((where, f"must be a number of seconds > 0; got {value!r}"))
        elif key == "mip_gap" and not (0 <= number < 1):
            problems.append((where, f"must be a relative gap in [0, 1), e.g. 1e-6; got {value!r}"))
        else:
            out[key] = value
    return out, problems


def solver_settings(policy: Policy, **given: object) -> dict[str, Any]:
    """The policy's ``[solver]`` section and ``given`` settings, checked, defaults filled in.

    ``backend`` (``"highs"`` or a PuLP solver name), ``time_limit`` (seconds > 0),
    ``mip_gap`` (relative, in [0, 1)), ``method`` (``auto``, ``direct`` or
    ``decomposition``); a ``given`` value that is not None overrides the section's.
    Raises :class:`~npl_disposal.PolicyError` naming each bad key and argument.
    """
    from_policy, problems = check_settings(policy.solver)
    chosen = {k: v for k, v in given.items() if v is not None}
    from_call, wrong = check_settings(chosen, "argument {}".format)
    if problems or wrong:
        raise PolicyError(problems + wrong, source="solver settings")
    return {**SOLVER_DEFAULTS, **from_policy, **from_call}


def solve(
    problem: AllocationProblem,
    mode: str | None = None,
    solver: str | None = None,
    time_limit: float | None = None,
    mip_gap: float | None = None,
    method: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AllocationResult:
    """Allocate every loan to channels: the best plan, its bound, and the budgets' worth.

    ``mode`` is ``"whole_loan"`` (MILP; the default from the policy) or
    ``"fractional"`` (LP). ``solver`` is ``"highs"`` or a PuLP solver name (see
    :func:`~npl_disposal.solvers.available_solvers`). ``method`` (HiGHS only) is
    ``"auto"``, ``"direct"`` (one model of every loan) or ``"decomposition"``;
    ``"auto"`` takes ``"direct"`` up to 12,000 options. A time-limited
    ``"direct"`` whole-loan solve above 50,000 options runs without HiGHS's
    presolve, which does not keep the time limit (ERGO-Code/HiGHS#1501).
    ``time_limit`` is in seconds and ``mip_gap`` relative (default 1e-6);
    ``progress`` receives one line per step. Arguments left out come from the
    policy's ``[solver]`` section (``backend, time_limit, mip_gap, method``),
    then from these defaults.

    Raises :class:`~npl_disposal.InfeasiblePolicyError` when no plan meets the
    policy, naming the rules and the amounts missing.
    """
    settings = solver_settings(problem.policy, backend=solver, time_limit=time_limit,
                               mip_gap=mip_gap, method=method)  # fmt: skip
    solver, time_limit = settings["backend"], settings["time_limit"]
    mip_gap, method = settings["mip_gap"], settings["method"]
    mode = mode or problem.mode
    if mode not in ("whole_loan", "fractional"):
        raise ValueError(f"mode must be 'whole_loan' or 'fractional', not {mode!r}")
    conflicts = precheck(problem)
    if len(conflicts):
        raise InfeasiblePolicyError(conflicts)
    backend = get_backend(solver)
    start = time.perf_counter()
    if tangent_applies(problem, mode) and not _decomposes(backend, problem, method):
        outcome, method = solve_tail_whole_loan(problem, backend, method, time_limit, mip_gap,
                                                progress)  # fmt: skip
    else:
        outcome, method = backend.solve(problem, mode, method, time_limit, mip_gap, progress)
    seconds = time.perf_counter() - start
    if outcome.status == "infeasible":
        raise InfeasiblePolicyError(explain_infeasibility(problem))
    if outcome.status in ("error", "unbounded"):
        raise SolverError(
            f"the solver ({solver}) failed: {outcome.message or outcome.status}; try another "
            "solver (npl_disposal.solvers.available_solvers()) or report the input files"
        )
    report = SolverReport(backend.name, method, seconds, outcome.iterations, outcome.free_loans,
                          outcome.message)  # fmt: skip
    if outcome.status in ("no_solution", "time_limit") and not np.isfinite(outcome.objective):
        return _no_plan(problem, mode, report)
    return _result(problem, mode, outcome, mip_gap, report)


def _decomposes(backend: Backend, problem: AllocationProblem, method: str) -> bool:
    """Whether HiGHS's decomposition solves it (its whole-loan search holds the tail rows)."""
    return backend.name == "highs" and resolve_method(problem, method) == "decomposition"


def explain_infeasibility(problem: AllocationProblem) -> pd.DataFrame:
    """The rules the elastic relaxation had to miss, with the amounts (least total miss).

    The relaxation lets every row be missed at a price; its misses are worded by each
    row's rule (:func:`~npl_disposal.model.diagnose.explain`). A ``[risk]
    min_tail_value`` above the most the plan's tail mean can reach under the other
    rules is named with both amounts.
    """
    unreachable = tail_floor_conflict(problem)
    if unreachable is not None:
        return unreachable
    outcome = solve_fractional(problem, phase_one=True)
    return explain(problem.rows, outcome.shortfall)


def risk_blocks(problem: AllocationProblem) -> np.ndarray:
    """Mask of the blocks of the tail model (their weights are the tail mean's, less a constant)."""
    return np.array([b.name.startswith("risk_") for b in problem.blocks], dtype=bool)


def _no_plan(problem: AllocationProblem, mode: str, report: SolverReport) -> AllocationResult:
    empty = pd.DataFrame({"loan_id": [], "channel": [], "share": []})
    verification = Verification(pd.DataFrame(), math.nan, {})
    return AllocationResult(
        Status.NO_SOLUTION, mode, empty, math.nan, math.nan, math.inf,
        constraint_table(problem, np.zeros(problem.eligible.shape), np.zeros(len(problem.blocks)),
                         None),
        {}, verification, report, np.zeros(problem.eligible.shape), problem,
    )  # fmt: skip


def _result(
    problem: AllocationProblem, mode: str, outcome: Outcome, mip_gap: float, report: SolverReport
) -> AllocationResult:
    shares = outcome.shares
    blocks = {b.name: float(v) for b, v in zip(problem.blocks, outcome.y, strict=True)}
    keys = None
    kind = AllocationResult
    if problem.schedule is not None:  # a schedule's modules are imported for one only
        from npl_disposal.model.schedule_verify import verify_schedule
        from npl_disposal.solvers.schedule_result import ScheduleResult, schedule_plan

        kind = ScheduleResult
        plan = schedule_plan(problem, shares)
        verification = verify_schedule(problem, plan, on=blocks, whole_loan=mode == "whole_loan")
    else:
        plan, keys = plan_with_keys(problem, shares)
        whole = mode == "whole_loan"
        scenarios = problem.risk.scenarios if problem.risk is not None else None
        verification = verify_plan(problem.portfolio, problem.policy, problem.options, plan,
                                   on=blocks, whole_loan=whole, keys=keys,
                                   scenarios=scenarios)  # fmt: skip
    if not verification.ok:
        raise SolverError(
            "the solver returned a plan that breaks the policy; this is a bug in npl_disposal, "
            "please report it with the input files:\n" + verification.summary()
        )
    # With [wage_pool] weight the objective also weighs the modelled wage-pool fall.
    # With [risk] aversion it adds aversion x the tail mean recomputed by sorting.
    weighed = ~problem.switches & ~risk_blocks(problem)
    objective = verification.objective + float(problem.block_cost[weighed] @ outcome.y[weighed])
    offset = 0.0
    if problem.risk is not None and verification.risk is not None:
        objective += problem.risk.section.aversion * verification.risk.tail_mean
        offset = problem.risk.offset
    bound = max(outcome.bound + offset, objective)
    gap = (bound - objective) / max(abs(bound), 1.0)
    status = (
        Status.OPTIMAL if gap <= max(mip_gap, 1e-9) or mode == "fractional" else Status.FEASIBLE
    )
    if outcome.status not in ("optimal",):
        status = Status.FEASIBLE
    duals = outcome.duals if mode == "fractional" else None
    table = constraint_table(problem, shares, outcome.y, duals)
    return kind(status, mode, plan, objective, bound, gap, table, blocks, verification, report,
                shares, problem, keys)  # fmt: skip



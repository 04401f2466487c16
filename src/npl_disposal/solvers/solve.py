"""Solve the allocation problem: ``solve(problem, mode=..., solver=...)``.

>>> from npl_disposal import build_problem, solve
>>> result = solve(build_problem(portfolio, policy, options))  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP

Backends: ``"highs"`` (default; arrays straight into HiGHS, with the structured
method of :mod:`npl_disposal.solvers.decomposition` for large portfolios) and any PuLP
solver by name (``"PULP_CBC_CMD"``, ``"HiGHS"``, ``"GUROBI"``...). Every plan is
checked by :func:`~npl_disposal.model.verify.verify_plan` before it is returned.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal._memory import release_unused
from npl_disposal.exceptions import InfeasiblePolicyError, PolicyError, SolverError
from npl_disposal.io._ids import as_text, as_text_codes
from npl_disposal.model._join import PlanKeys
from npl_disposal.model.diagnose import explain, precheck
from npl_disposal.model.figures import branch_figures
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.verify import Verification, verify_plan
from npl_disposal.policy import Policy
from npl_disposal.solvers._formulation import MONEY_SCALE, restricted_model, row_scale, shares_from
from npl_disposal.solvers._highs import run_highs
from npl_disposal.solvers.decomposition import (
    Outcome,
    lagrangian_bound,
    reduced_values,
    solve_fractional,
    solve_whole_loan,
)

__all__ = ["AllocationResult", "SolverReport", "Status", "explain_infeasibility", "solve"]

#: Problems with at most this many eligible options go straight to one HiGHS model.
DIRECT_LIMIT = 12_000
#: Above this many options a time-limited direct whole-loan MILP runs without HiGHS's
#: presolve, which does not keep the time limit (ERGO-Code/HiGHS#1501).
PRESOLVE_TIME_LIMIT_OPTIONS = 50_000


class Status(str, Enum):
    """Outcome of a solve."""

    OPTIMAL = "optimal"
    """Best plan found and proven within the requested gap."""
    FEASIBLE = "feasible"
    """A verified plan, but the time limit stopped the proof; see ``gap``."""
    NO_SOLUTION = "no_solution"
    """The time limit came before any feasible plan."""


@dataclass(frozen=True)
class SolverReport:
    """How the plan was found: backend, method, seconds and work done."""

    backend: str
    method: str
    seconds: float
    iterations: int = 0
    open_loans: int = 0
    message: str = ""


@dataclass(frozen=True, eq=False)
class AllocationResult:
    """A disposal plan with its value, proven bound and the budgets' usage.

    ``plan`` has one row per loan and channel with a positive ``share``;
    ``objective`` and ``bound`` are CNY yuan; ``gap`` is ``(bound - objective) /
    |bound|``; ``constraints`` has per rule its ``usage``, ``limit``, ``slack`` and,
    in fractional mode, its ``shadow_price``: CNY of value gained per unit (CNY
    or loan) by which the rule is relaxed.
    """

    status: Status
    mode: str
    plan: pd.DataFrame
    objective: float
    bound: float
    gap: float
    constraints: pd.DataFrame
    blocks: Mapping[str, float]
    verification: Verification
    solver: SolverReport
    shares: np.ndarray = field(repr=False)
    problem: AllocationProblem = field(repr=False)
    plan_keys: PlanKeys | None = field(default=None, repr=False)

    def channel_mix(self) -> pd.DataFrame:
        """Loans, balance, value and pnl (CNY yuan) sent to each channel."""
        p, shares = self.problem, self.shares
        out = pd.DataFrame(  # column sums without a loans x channels product in memory
            {
                "loans": shares.sum(axis=0),
                "balance": p.balance @ shares,
                "value": np.einsum("ij,ij->j", shares, p.value),
                "pnl": np.einsum("ij,ij->j", shares, p.pnl),
            },
            index=pd.Index(p.channels, name="channel"),
        )
        out["balance_share"] = out["balance"] / out["balance"].sum()
        return out

    def branch_figures(self) -> pd.DataFrame:
        """Tolerance, wage-pool and add-back figures per branch after this plan."""
        p = self.problem
        return branch_figures(
            p.portfolio, p.policy, self.plan, p.options, self.blocks, keys=self.plan_keys
        )

    def binding(self) -> pd.DataFrame:
        """The rules at their limit, with their shadow prices."""
        return self.constraints[self.constraints["binding"]]

    def summary(self) -> str:
        """What a risk officer reads first: status, value, gap and binding budgets."""
        lines = [
            f"{self.status.value} {self.mode} plan for {self.problem.n_loans:,} loans: value "
            f"CNY {self.objective / 1e6:,.2f}m, bound CNY {self.bound / 1e6:,.2f}m, "
            f"gap {self.gap:.2e} ({self.solver.backend}/{self.solver.method}, "
            f"{self.solver.seconds:.2f} s)",
        ]
        weighed = self.verification.objective - self.objective
        if abs(weighed) > 0.005:
            lines.append(
                f"  = the plan's value CNY {self.verification.objective / 1e6:,.2f}m less the "
                f"weighted wage-pool fall CNY {weighed / 1e6:,.2f}m ([wage_pool] weight)"
            )
        mix = self.channel_mix()
        for channel, row in mix.iterrows():
            lines.append(
                f"  {channel:<16} {row['loans']:>10,.1f} loans  CNY {row['balance'] / 1e6:>12,.2f}m"
            )
        binding = self.binding()
        binding = binding[~binding["rule"].isin(MODEL_RULES)]
        if len(binding):
            lines.append("binding: " + ", ".join(binding["name"]))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``summary.json``."""
        return {
            "status": self.status.value,
            "mode": self.mode,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "loans": self.problem.n_loans,
            "blocks": dict(self.blocks),
            "channels": json.loads(self.channel_mix().to_json(orient="index")),
            "constraints": constraint_records(self.constraints),
            "solver": {
                "backend": self.solver.backend,
                "method": self.solver.method,
                "seconds": self.solver.seconds,
                "iterations": self.solver.iterations,
                "open_loans": self.solver.open_loans,
            },
        }


#: Keys of the policy's ``[solver]`` section and their defaults.
SOLVER_DEFAULTS: dict[str, Any] = {
    "backend": "highs",
    "time_limit": None,
    "mip_gap": 1e-6,
    "method": "auto",
}
_METHODS = ("auto", "direct", "decomposition")


def solver_settings(policy: Policy) -> dict[str, Any]:
    """The policy's ``[solver]`` section, checked, with the defaults filled in.

    ``backend`` (``"highs"`` or a PuLP solver name), ``time_limit`` (seconds > 0),
    ``mip_gap`` (relative, in [0, 1)), ``method`` (``auto``, ``direct`` or
    ``decomposition``). Raises :class:`~npl_disposal.PolicyError` naming each bad key.
    """
    out = dict(SOLVER_DEFAULTS)
    problems: list[tuple[str, str]] = []
    for key, value in policy.solver.items():
        where = f"[solver] {key}"
        number = (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else math.nan
        )
        if key not in SOLVER_DEFAULTS:
            problems.append((where, f"unknown key; allowed keys: {', '.join(SOLVER_DEFAULTS)}"))
        elif key == "backend" and not (isinstance(value, str) and value):
            problems.append((where, "must be 'highs' or a PuLP solver name such as 'PULP_CBC_CMD'"))
        elif key == "method" and value not in _METHODS:
            problems.append((where, f"must be one of {', '.join(_METHODS)}; got {value!r}"))
        elif key == "time_limit" and not (math.isfinite(number) and number > 0):
            problems.append((where, f"must be a number of seconds > 0; got {value!r}"))
        elif key == "mip_gap" and not (0 <= number < 1):
            problems.append((where, f"must be a relative gap in [0, 1), e.g. 1e-6; got {value!r}"))
        else:
            out[key] = value
    if problems:
        raise PolicyError(problems, source="policy [solver]")
    return out


#: Rows that define the wage-pool model's levels rather than limit the plan.
MODEL_RULES = ("wage_pool.loss", "wage_pool.consider_share", "wage_pool.within")


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
    :func:`~npl_disposal.solvers.via_pulp.available_solvers`). ``method`` (HiGHS only) is
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
    settings = solver_settings(problem.policy)
    solver = solver if solver is not None else settings["backend"]
    time_limit = time_limit if time_limit is not None else settings["time_limit"]
    mip_gap = mip_gap if mip_gap is not None else settings["mip_gap"]
    method = method if method is not None else settings["method"]
    mode = mode or problem.mode
    if mode not in ("whole_loan", "fractional"):
        raise ValueError(f"mode must be 'whole_loan' or 'fractional', not {mode!r}")
    conflicts = precheck(problem)
    if len(conflicts):
        raise InfeasiblePolicyError(conflicts)
    release_unused()  # what the caller freed (e.g. the input tables) leaves the process first
    start = time.perf_counter()
    if solver.lower() == "highs":
        if method == "auto":
            method = "direct" if problem.eligible.sum() <= DIRECT_LIMIT else "decomposition"
        outcome = _solve_highs(problem, mode, method, time_limit, mip_gap, progress)
        backend = "highs"
    else:
        from npl_disposal.solvers.via_pulp import solve_pulp

        outcome = solve_pulp(problem, mode, solver, time_limit, mip_gap)
        backend, method = f"pulp:{solver}", "direct"
    seconds = time.perf_counter() - start
    if outcome.status == "infeasible":
        raise InfeasiblePolicyError(explain_infeasibility(problem))
    if outcome.status in ("error", "unbounded"):
        raise SolverError(
            f"the solver ({solver}) failed: {outcome.message or outcome.status}; try another "
            "solver (npl_disposal.solvers.via_pulp.available_solvers()) or report the input files"
        )
    report = SolverReport(backend, method, seconds, outcome.iterations, outcome.free_loans,
                          outcome.message)  # fmt: skip
    if outcome.status in ("no_solution", "time_limit") and not np.isfinite(outcome.objective):
        return _no_plan(problem, mode, report)
    return _result(problem, mode, outcome, mip_gap, report)


def explain_infeasibility(problem: AllocationProblem) -> pd.DataFrame:
    """The rules the elastic relaxation had to miss, with the amounts (least total miss).

    The relaxation lets every row be missed at a price; its misses are worded by each
    row's rule (:func:`~npl_disposal.model.diagnose.explain`).
    """
    outcome = solve_fractional(problem, phase_one=True)
    return explain(problem.rows, outcome.shortfall)


def _solve_highs(
    problem: AllocationProblem,
    mode: str,
    method: str,
    time_limit: float | None,
    mip_gap: float,
    progress: Callable[[str], None] | None,
) -> Outcome:
    if method == "decomposition":
        if mode == "fractional":
            outcome = solve_fractional(problem, time_limit, progress=progress)
        else:
            outcome = solve_whole_loan(problem, time_limit, mip_gap, progress=progress)
        if np.abs(outcome.shortfall).max(initial=0.0) * MONEY_SCALE > 1e-7:
            outcome.status = "infeasible"
        return outcome
    if method != "direct":
        raise ValueError(f"method must be 'auto', 'direct' or 'decomposition', not {method!r}")
    if progress is not None:
        kind = "MILP" if mode == "whole_loan" else "LP"
        progress(f"one HiGHS {kind} of every loan: {problem.n_loans:,} loans, "
                 f"{int(problem.eligible.sum()):,} options, {len(problem.rows)} rows")  # fmt: skip
    outcome = solve_direct(problem, mode, time_limit, mip_gap)
    if progress is not None:
        progress(f"HiGHS: {outcome.status}, value CNY {outcome.objective / 1e6:,.2f}m, "
                 f"bound CNY {outcome.bound / 1e6:,.2f}m")  # fmt: skip
    return outcome


def solve_direct(
    problem: AllocationProblem, mode: str, time_limit: float | None, mip_gap: float
) -> Outcome:
    """One HiGHS model of every loan (exact; for small and medium problems)."""
    free = np.ones(problem.n_loans, dtype=bool)
    whole = mode == "whole_loan"
    restricted = restricted_model(problem, free, None, integer=whole, elastic=False)
    big = restricted.n_x > PRESOLVE_TIME_LIMIT_OPTIONS
    presolve = not (whole and time_limit is not None and big)
    sol = run_highs(restricted.model, time_limit=time_limit, mip_gap=mip_gap / 10,
                    presolve=presolve)  # fmt: skip
    k = len(problem.rows)
    # Only an optimum, or a MIP incumbent, is a plan: HiGHS may also hand back the
    # iterate of an infeasible or interrupted LP, which need not meet the rules.
    usable = sol.status == "optimal" or (whole and sol.status in ("time_limit", "target"))
    if not sol.x.size or not usable:
        if sol.status == "time_limit":
            sol = replace(sol, status="no_solution")
        empty = np.zeros(problem.eligible.shape)
        nan = math.nan
        return Outcome(sol.status, empty, np.zeros(len(problem.blocks)), nan, nan, np.zeros(k),
                       np.zeros(k), message=sol.message)  # fmt: skip
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
    return Outcome(status, shares, y, value, bound, duals, np.zeros(k), 1, problem.n_loans,
                   message=sol.message)  # fmt: skip


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
    plan, keys = plan_with_keys(problem, shares)
    blocks = {b.name: float(v) for b, v in zip(problem.blocks, outcome.y, strict=True)}
    verification = verify_plan(problem.portfolio, problem.policy, problem.options, plan,
                               on=blocks, whole_loan=mode == "whole_loan", keys=keys)  # fmt: skip
    if not verification.ok:
        raise SolverError(
            "the solver returned a plan that breaks the policy; this is a bug in npl_disposal, "
            "please report it with the input files:\n" + verification.summary()
        )
    # With [wage_pool] weight the objective also weighs the modelled wage-pool fall.
    weighed = ~problem.switches
    objective = verification.objective + float(problem.block_cost[weighed] @ outcome.y[weighed])
    bound = max(outcome.bound, objective)
    gap = (bound - objective) / max(abs(bound), 1.0)
    status = (
        Status.OPTIMAL if gap <= max(mip_gap, 1e-9) or mode == "fractional" else Status.FEASIBLE
    )
    if outcome.status not in ("optimal",):
        status = Status.FEASIBLE
    duals = outcome.duals if mode == "fractional" else None
    table = constraint_table(problem, shares, outcome.y, duals)
    return AllocationResult(status, mode, plan, objective, bound, gap, table, blocks,
                            verification, report, shares, problem, keys)  # fmt: skip


def constraint_records(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """A constraints table as ``{name: {column: value}}`` for JSON (NaN as None)."""
    cons = table.replace({np.nan: None})
    return {
        rec["name"]: {k: rec[k] for k in cons.columns if k != "name"}
        for rec in cons.to_dict(orient="records")
    }


def plan_frame(problem: AllocationProblem, shares: np.ndarray) -> pd.DataFrame:
    """The plan as ``loan_id, channel, share`` rows, one per positive share."""
    return plan_with_keys(problem, shares)[0]


def plan_with_keys(
    problem: AllocationProblem, shares: np.ndarray
) -> tuple[pd.DataFrame, PlanKeys | None]:
    """The plan frame, and where its rows point (loan table row, channel code).

    No keys for a problem over part of its portfolio (e.g. a sample): its grid
    rows are not the loan table's.
    """
    loan, channel = np.nonzero(shares > 1e-12)
    frame = pd.DataFrame(
        {
            "loan_id": as_text(problem.loan_ids[loan]),
            "channel": as_text_codes(channel, problem.channels),
            "share": shares[loan, channel],
        }
    )
    if problem.n_loans != len(problem.portfolio.loans):
        return frame, None
    return frame, PlanKeys(loan.astype(np.int64), channel.astype(np.int64), problem.channels)


def constraint_table(
    problem: AllocationProblem, shares: np.ndarray, y: np.ndarray, duals: np.ndarray | None
) -> pd.DataFrame:
    """Per rule: usage, limit, slack (natural units) and shadow price (CNY per unit).

    ``limit`` is the limit in force for this plan (a block's capacity times its
    on/off level); ``budget`` the policy's figure with the block on;
    ``utilisation`` is usage over budget. ``shadow_price`` (fractional mode) is
    the CNY of value gained per unit by which the rule is relaxed: more
    capacity for a ``<=`` rule, a lower requirement for a ``>=`` rule. The
    wage-pool model's per-branch levels count as usage (``wage_pool_fall[B]``
    shows the modelled fall of branch B's wage pool against ``max_fall``).
    """
    rows = problem.rows
    switch = problem.switches
    usage = rows.matrix @ shares.ravel() + rows.blocks[:, ~switch] @ y[~switch]
    shift = rows.blocks[:, switch] @ y[switch]
    lower_side = np.isfinite(rows.lower)
    limit = np.where(lower_side, rows.lower, rows.upper) - shift
    slack = np.where(lower_side, usage - limit, limit - usage)
    tol = np.where(np.array(rows.unit) == "CNY", 0.01, 1e-6) + 1e-9 * np.abs(limit)
    budget = np.where(lower_side, rows.lower, rows.upper) - rows.blocks[:, switch].sum(axis=1)
    shadow = (
        np.abs(duals) * row_scale(problem) / MONEY_SCALE if duals is not None
        else np.full(len(rows), np.nan)
    )  # fmt: skip
    return pd.DataFrame(
        {
            "name": rows.names,
            "rule": rows.rule,
            "branch": rows.branch,
            "unit": rows.unit,
            "sense": np.where(lower_side, ">=", "<="),
            "usage": usage,
            "limit": limit,
            "budget": budget,
            "utilisation": np.divide(
                usage, budget, out=np.full(len(rows), np.nan), where=np.abs(budget) > 0
            ),
            "slack": slack,
            "binding": slack <= tol,
            "shadow_price": shadow,
        }
    )

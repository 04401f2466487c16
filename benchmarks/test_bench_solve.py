"""Building and solving the allocation problem: ours against the plain and the naive models.

Build and solve are timed apart (the problem is built outside the timed call). The floor
is the model a newcomer writes in PuLP (one variable object per loan and channel, lpSum
rows, CNY yuan) solved by CBC, build and solve together; ``method="direct"`` is one plain
HiGHS model of every loan; ``solver="highs"`` (default method) is ours.

The naive whole-loan optimum is checked against the LP bound, not the native whole-loan
bound: that bound belongs to a model whose rows are tightened by 1e-8 and can sit below
the true optimum.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import pulp
import pytest

from conftest import synthetic
from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.backends import build_pulp_model, get_solver, naive_pulp_model
from npl_disposal.problem import AllocationProblem
from npl_disposal.solve import AllocationResult, Status

MODES = ("fractional", "whole_loan")
#: Above this many loans a benchmark runs once (benchmark.pedantic, one round).
ONE_ROUND = 5_000


def _cbc_available() -> bool:
    here = pulp.listSolvers(onlyAvailable=True)
    return "PULP_CBC_CMD" in here or "COIN_CMD" in here


@lru_cache(maxsize=2)
def _problem(n_loans: int) -> AllocationProblem:
    data = synthetic(n_loans)
    return build_problem(
        read_portfolio(data.loans, data.branches), data.policy_dict(), data.options
    )


def _timed(benchmark: Any, n_loans: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if n_loans > ONE_ROUND:
        return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1)
    return benchmark(fn, *args, **kwargs)


def _check(result: AllocationResult, mode: str) -> None:
    assert result.verification.ok
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    if mode == "fractional":
        assert result.status is Status.OPTIMAL
    assert math.isfinite(result.objective)
    assert result.objective <= result.bound + 1e-6 * abs(result.bound)
    assert len(result.plan) >= result.problem.n_loans


@pytest.mark.sizes(10_000, 100_000)
def test_build_problem(benchmark: Any, n_loans: int) -> None:
    data = synthetic(n_loans)
    portfolio = read_portfolio(data.loans, data.branches)
    policy = data.policy_dict()
    problem = _timed(benchmark, n_loans, build_problem, portfolio, policy, data.options)
    assert problem.n_loans == n_loans
    assert problem.eligible.any(axis=1).all()
    assert len(problem.rows) >= 6


@pytest.mark.sizes(10_000, 100_000)
@pytest.mark.parametrize("mode", MODES)
def test_solve_ours(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = _problem(n_loans)
    result = _timed(benchmark, n_loans, solve, problem, mode, solver="highs")
    _check(result, mode)
    assert result.gap <= 1e-6 or result.status is Status.FEASIBLE
    benchmark.extra_info.update(
        method=result.solver.method, objective=result.objective, gap=result.gap
    )


@pytest.mark.sizes(10_000)
@pytest.mark.parametrize("mode", MODES)
def test_solve_plain_highs(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = _problem(n_loans)
    result = _timed(benchmark, n_loans, solve, problem, mode, method="direct")
    _check(result, mode)
    assert result.solver.method == "direct"
    benchmark.extra_info.update(objective=result.objective, gap=result.gap)


@pytest.mark.sizes(10_000, 100_000)
def test_build_pulp_model(benchmark: Any, n_loans: int) -> None:
    problem = _problem(n_loans)
    prob, handles = _timed(benchmark, n_loans, build_pulp_model, problem, "fractional")
    assert len(handles.x) == int(problem.eligible.sum())
    assert len(prob.constraints()) >= n_loans + len(problem.rows)


def _naive_floor(problem: AllocationProblem, mode: str) -> Any:
    prob = naive_pulp_model(problem, mode)
    prob.solve(get_solver("cbc", mip=mode == "whole_loan"))
    return prob


@pytest.mark.sizes(10_000)
@pytest.mark.parametrize("mode", MODES)
def test_naive_pulp_cbc_floor(benchmark: Any, n_loans: int, mode: str) -> None:
    if not _cbc_available():
        pytest.skip("CBC is not available here (PuLP 4 no longer bundles it)")
    problem = _problem(n_loans)
    ours = solve(problem, mode, method="direct")
    # The LP optimum bounds both modes (the LP path is exact; see the module notes).
    lp_bound = solve(problem, "fractional", method="direct").bound
    prob = _timed(benchmark, n_loans, _naive_floor, problem, mode)
    assert pulp.LpStatus[prob.status] == "Optimal"
    assert prob.sol_status == pulp.LpSolutionOptimal
    value = pulp.value(prob.objective)
    assert math.isfinite(value)
    assert value <= lp_bound * (1 + 1e-6)
    assert abs(value - ours.objective) <= 1e-3 * abs(ours.objective)
    benchmark.extra_info.update(objective=value, ours=ours.objective)

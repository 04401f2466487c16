"""A four-quarter disposal schedule: valuing over time, building, solving both modes.

The schedule is ``conftest.SCHEDULE`` on the synthetic portfolio of each size: four
quarters, AMC windows in Q1 and Q3, securitisation in Q2 and Q4, every rule of the
one-period policy (its budgets the year's totals). Values come from
``value_schedule`` (the ageing model and recovery curves, quarter by quarter); the
problem is built outside the timed solve. Each solve records ``status, objective,
bound, gap, method`` in ``benchmark.extra_info``; its plan is verified inside
``solve`` and checked here again.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import pytest

from conftest import ONE_ROUND, SCHEDULE, schedule_policy, synthetic
from npl_disposal import read_portfolio, solve
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.schedule import build_schedule
from npl_disposal.solvers.result import Status
from npl_disposal.valuation import ScheduleOptions, value_schedule

MODES = ("fractional", "whole_loan")


def _timed(benchmark: Any, n_loans: int, func: Any, *args: Any, **kwargs: Any) -> Any:
    if n_loans > ONE_ROUND:
        return benchmark.pedantic(func, args=args, kwargs=kwargs, rounds=1, iterations=1)
    return benchmark(func, *args, **kwargs)


@lru_cache(maxsize=1)
def _valued(n_loans: int) -> tuple[Any, dict[str, Any], ScheduleOptions]:
    data = synthetic(n_loans)
    portfolio = read_portfolio(data.loans, data.branches)
    policy = schedule_policy(data)
    return portfolio, policy, value_schedule(portfolio, int(SCHEDULE["periods"]), policy=policy)


@lru_cache(maxsize=1)
def _problem(n_loans: int) -> AllocationProblem:
    portfolio, policy, valued = _valued(n_loans)
    return build_schedule(portfolio, policy, valued.options, path=valued.path)


@pytest.mark.sizes("schedule")
def test_value_schedule(benchmark: Any, n_loans: int) -> None:
    data = synthetic(n_loans)
    portfolio = read_portfolio(data.loans, data.branches)
    valued = _timed(benchmark, n_loans, value_schedule, portfolio, 4, policy=data.policy_dict())
    assert len(valued.path) == 4 * n_loans  # each loan at the end of each quarter
    benchmark.extra_info.update(n_loans=n_loans, options=len(valued.options))


@pytest.mark.sizes("schedule")
def test_build_schedule(benchmark: Any, n_loans: int) -> None:
    portfolio, policy, valued = _valued(n_loans)
    problem = _timed(benchmark, n_loans, build_schedule, portfolio, policy, valued.options,
                     path=valued.path)  # fmt: skip
    assert problem.n_loans == n_loans and problem.eligible.any(axis=1).all()
    assert sum(b.kind == "switch" for b in problem.blocks) >= 1
    benchmark.extra_info.update(n_loans=n_loans, rows=len(problem.rows),
                                options=int(problem.eligible.sum()))  # fmt: skip


@pytest.mark.sizes("schedule")
@pytest.mark.parametrize("mode", MODES)
def test_solve_schedule(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = _problem(n_loans)
    result = _timed(benchmark, n_loans, solve, problem, mode)
    assert result.verification.ok
    assert result.status is Status.OPTIMAL
    assert result.objective <= result.bound + 1e-6 * abs(result.bound)
    assert result.gap <= 1e-6
    benchmark.extra_info.update(
        n_loans=n_loans, mode=mode, status=result.status.value, objective=result.objective,
        bound=result.bound, gap=result.gap if math.isfinite(result.gap) else None,
        method=result.solver.method,
    )  # fmt: skip

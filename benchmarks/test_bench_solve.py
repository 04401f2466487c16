"""Building and solving the allocation problem: ours against the plain and the naive models.

Build and solve are timed apart (the problem is built outside the timed call). Three
models of the same :class:`~npl_disposal.model.problem.AllocationProblem` run side by side at
the ``"floor"`` sizes of ``conftest.SIZE_SETS``, so ``compare.py`` turns one run's JSON
into speed-up ratios measured on one machine:

* ours: ``solve(problem, mode)`` (the default HiGHS method, verification included);
* plain HiGHS: ``solve(problem, mode, method="direct")``, one HiGHS model of every loan.
  The whole-loan model gets ``PLAIN_MILP_TIME_LIMIT`` seconds: its gap is recorded in
  ``extra_info``, not asserted;
* the floor: the model a newcomer writes in PuLP (one variable object per loan and
  channel, ``lpSum`` rows, CNY yuan) solved by CBC, build and solve together (each also
  recorded in ``extra_info``). The whole-loan floor is skipped above
  ``NAIVE_MILP_MAX_LOANS`` loans: CBC takes many minutes there.

Every solve benchmark records ``model, mode, n_loans, status, objective, bound, gap,
method, open_loans`` in ``benchmark.extra_info``.

The naive whole-loan optimum is checked against the LP bound, not the native whole-loan
bound: that bound belongs to a model whose rows are tightened by 1e-8 and can sit below
the true optimum.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

import pulp
import pytest

from conftest import NAIVE_MILP_MAX_LOANS, ONE_ROUND, PLAIN_MILP_TIME_LIMIT, synthetic
from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers.pulp_backend import build_pulp_model, get_solver
from npl_disposal.solvers.reference import naive_pulp_model
from npl_disposal.solvers.result import AllocationResult, Status

MODES = ("fractional", "whole_loan")
#: Our results by (loans, mode): the reference the anchors are checked against.
_OURS: dict[tuple[int, str], AllocationResult] = {}


def _cbc_available() -> bool:
    here = pulp.listSolvers(onlyAvailable=True)
    return "PULP_CBC_CMD" in here or "COIN_CMD" in here


@lru_cache(maxsize=2)
def _problem(n_loans: int) -> AllocationProblem:
    data = synthetic(n_loans)
    return build_problem(
        read_portfolio(data.loans, data.branches), data.policy_dict(), data.options
    )


def _keep_size(n_loans: int) -> None:
    """Keep our results at this size and the last other one, as ``_problem`` does."""
    others = [k[0] for k in _OURS if k[0] != n_loans]
    keep = {n_loans, *others[-1:]}
    for key in [k for k in _OURS if k[0] not in keep]:
        del _OURS[key]


def _ours(n_loans: int, mode: str) -> AllocationResult:
    """Our result at this size and mode (the benchmark's own, or solved now)."""
    key = (n_loans, mode)
    if key not in _OURS:
        _keep_size(n_loans)
        _OURS[key] = solve(_problem(n_loans), mode)
    return _OURS[key]


def _timed(benchmark: Any, n_loans: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if n_loans > ONE_ROUND:
        return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1)
    return benchmark(fn, *args, **kwargs)


def _number(value: float) -> float | None:
    """A float for the JSON file (``None`` for NaN or infinity)."""
    return float(value) if math.isfinite(value) else None


def _record(benchmark: Any, model: str, n_loans: int, mode: str, result: AllocationResult,
            **more: Any) -> None:  # fmt: skip
    benchmark.extra_info.update(
        model=model,
        n_loans=n_loans,
        mode=mode,
        status=result.status.value,
        objective=_number(result.objective),
        bound=_number(result.bound),
        gap=_number(result.gap),
        backend=result.solver.backend,
        method=result.solver.method,
        open_loans=int(result.solver.open_loans),
        iterations=int(result.solver.iterations),
        solver_seconds=float(result.solver.seconds),
        **more,
    )


def _check(result: AllocationResult, mode: str) -> None:
    assert result.verification.ok
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    if mode == "fractional":
        assert result.status is Status.OPTIMAL
    assert math.isfinite(result.objective)
    assert result.objective <= result.bound + 1e-6 * abs(result.bound)
    assert len(result.plan) >= result.problem.n_loans


@pytest.mark.sizes("solve", "floor")
def test_build_problem(benchmark: Any, n_loans: int) -> None:
    data = synthetic(n_loans)
    portfolio = read_portfolio(data.loans, data.branches)
    policy = data.policy_dict()
    problem = _timed(benchmark, n_loans, build_problem, portfolio, policy, data.options)
    assert problem.n_loans == n_loans
    assert problem.eligible.any(axis=1).all()
    assert len(problem.rows) >= 6
    benchmark.extra_info.update(
        model="ours", n_loans=n_loans, rows=len(problem.rows),
        options=int(problem.eligible.sum()),
    )  # fmt: skip


@pytest.mark.sizes("solve", "floor")
@pytest.mark.parametrize("mode", MODES)
def test_solve_ours(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = _problem(n_loans)
    result = _timed(benchmark, n_loans, solve, problem, mode, solver="highs")
    _check(result, mode)
    assert result.gap <= 1e-6 or result.status is Status.FEASIBLE
    _keep_size(n_loans)
    _OURS[n_loans, mode] = result
    _record(benchmark, "ours", n_loans, mode, result)


@pytest.mark.sizes("floor")
@pytest.mark.parametrize("mode", MODES)
def test_solve_plain_highs(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = _problem(n_loans)
    limit = PLAIN_MILP_TIME_LIMIT if mode == "whole_loan" else None
    result = _timed(benchmark, n_loans, solve, problem, mode, method="direct", time_limit=limit)
    assert result.solver.method == "direct"
    _record(benchmark, "plain_highs", n_loans, mode, result, time_limit=limit)
    if mode == "whole_loan" and result.status is Status.NO_SOLUTION:
        return  # recorded: no plan within the time limit
    _check(result, mode)
    if mode == "fractional":
        ours = _ours(n_loans, mode)
        assert abs(result.objective - ours.objective) <= 1e-6 * abs(ours.objective)


@pytest.mark.sizes("solve", "floor")
def test_build_pulp_model(benchmark: Any, n_loans: int) -> None:
    problem = _problem(n_loans)
    prob, handles = _timed(benchmark, n_loans, build_pulp_model, problem, "fractional")
    assert len(handles.x) == int(problem.eligible.sum())
    assert len(prob.constraints()) >= n_loans + len(problem.rows)
    benchmark.extra_info.update(model="ours_pulp", n_loans=n_loans, variables=len(handles.x))


class _Floor:
    """The naive model after its solve, with its build and solve seconds."""

    def __init__(self, problem: AllocationProblem, mode: str) -> None:
        start = time.perf_counter()
        self.prob = naive_pulp_model(problem, mode)
        self.build_seconds = time.perf_counter() - start
        self.prob.solve(get_solver("cbc", mip=mode == "whole_loan"))
        self.solve_seconds = time.perf_counter() - start - self.build_seconds


@pytest.mark.sizes("floor")
@pytest.mark.parametrize("mode", MODES)
def test_naive_pulp_cbc_floor(benchmark: Any, n_loans: int, mode: str) -> None:
    if not _cbc_available():
        pytest.skip("CBC is not available here (PuLP 4 no longer bundles it)")
    if mode == "whole_loan" and n_loans > NAIVE_MILP_MAX_LOANS:
        pytest.skip(
            f"the naive whole-loan PuLP + CBC model takes many minutes above "
            f"{NAIVE_MILP_MAX_LOANS:,} loans (conftest.NAIVE_MILP_MAX_LOANS); "
            "the floor is compared in fractional mode at this size"
        )
    problem = _problem(n_loans)
    ours = _ours(n_loans, mode)
    # The LP optimum bounds both modes (the LP path is exact; see the module notes).
    lp_bound = _ours(n_loans, "fractional").bound
    floor = _timed(benchmark, n_loans, _Floor, problem, mode)
    prob = floor.prob
    assert pulp.LpStatus[prob.status] == "Optimal"
    assert prob.sol_status == pulp.LpSolutionOptimal
    value = pulp.value(prob.objective)
    assert math.isfinite(value)
    benchmark.extra_info.update(
        model="naive_pulp_cbc",
        n_loans=n_loans,
        mode=mode,
        status=pulp.LpStatus[prob.status].lower(),
        objective=float(value),
        bound=_number(lp_bound),
        gap=_number((lp_bound - value) / max(abs(lp_bound), 1.0)),
        method="PULP_CBC_CMD",
        open_loans=n_loans,
        ours=_number(ours.objective),
        build_seconds=floor.build_seconds,
        solve_seconds=floor.solve_seconds,
    )
    assert value <= lp_bound * (1 + 1e-6)
    assert abs(value - ours.objective) <= 1e-3 * abs(ours.objective)

"""PuLP backends: solver choice, the PuLP model, and agreement with the native HiGHS path."""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from importlib.resources import files
from types import SimpleNamespace
from typing import Any

import numpy as np
import pulp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_disposal import (
    InfeasiblePolicyError,
    PolicyError,
    SolverUnavailableError,
    build_problem,
    read_portfolio,
    solve,
)
from npl_disposal.datasets import make_portfolio
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers._pricing import price_weights
from npl_disposal.solvers.highs_backend import solve_direct
from npl_disposal.solvers.pulp_backend import (
    _read_status,
    available_solvers,
    build_pulp_model,
    get_solver,
    solve_pulp,
)
from npl_disposal.solvers.reference import naive_pulp_model

CBC_NAMES = ("PULP_CBC_CMD", "COIN_CMD")
MIP_GAP = 1e-6


def _pulp_solvers() -> list[str]:
    here = pulp.listSolvers(onlyAvailable=True)
    names = []
    if any(c in here for c in CBC_NAMES):
        names.append("cbc")
    if "HiGHS" in here:
        names.append("pulp:highs")
    return names


PULP_SOLVERS = _pulp_solvers()
needs_pulp_solver = pytest.mark.skipif(not PULP_SOLVERS, reason="no CBC or PuLP HiGHS here")
needs_cbc = pytest.mark.skipif("cbc" not in PULP_SOLVERS, reason="CBC is not available here")


@lru_cache(maxsize=32)
def _problem(n: int, branches: int, seed: int) -> AllocationProblem:
    d = make_portfolio(n, branches, seed)
    return build_problem(read_portfolio(d.loans, d.branches), d.policy_dict(), d.options)


@lru_cache(maxsize=1)
def _sample() -> AllocationProblem:
    base = files("npl_disposal") / "data"
    return build_problem(
        read_portfolio(base / "portfolio.csv", base / "branches.csv"),
        base / "policy.toml",
        base / "options.csv",
    )


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1.0)


# --- solver choice ------------------------------------------------------------------------


def test_available_solvers_lists_native_highs_first() -> None:
    names = available_solvers()
    assert names[0] == "highs"
    assert names[1:] == pulp.listSolvers(onlyAvailable=True)


@pytest.mark.parametrize("name", ["nosuch", "", "cbc2"])
def test_unknown_solver_says_what_is_available(name: str) -> None:
    with pytest.raises(SolverUnavailableError, match="available here: highs") as err:
        get_solver(name)
    assert "unknown solver" in str(err.value)
    with pytest.raises(SolverUnavailableError):
        solve(_problem(30, 2, 1), "fractional", solver=name or "nosuch")


def test_known_but_missing_solver_gives_install_hint() -> None:
    here = pulp.listSolvers(onlyAvailable=True)
    missing = [s for s in ("GUROBI", "CPLEX_PY", "MOSEK", "XPRESS_PY", "COPT") if s not in here]
    if not missing:
        pytest.skip("every commercial solver is installed here")
    with pytest.raises(SolverUnavailableError, match="not available here") as err:
        get_solver(missing[0].lower())
    assert "pip install" in str(err.value)
    assert isinstance(err.value, ImportError)


def test_aliases_are_case_insensitive() -> None:
    if "HiGHS" in pulp.listSolvers(onlyAvailable=True):
        for alias in ("highs_pulp", "PULP:HIGHS", "HiGHS"):
            assert get_solver(alias).name == "HiGHS"
    if "cbc" in PULP_SOLVERS:
        assert get_solver("CBC", time_limit=5, mip_gap=1e-4).name in CBC_NAMES


def test_without_cbc_highs_works_and_cbc_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pulp.listSolvers

    def no_cbc(onlyAvailable: bool = False) -> list[str]:
        names = real(onlyAvailable=onlyAvailable)
        return [s for s in names if s not in CBC_NAMES] if onlyAvailable else names

    monkeypatch.setattr(pulp, "listSolvers", no_cbc)
    assert not set(CBC_NAMES) & set(available_solvers())
    problem = _problem(40, 3, 7)
    assert solve(problem, "fractional", solver="highs").verification.ok
    with pytest.raises(SolverUnavailableError, match="apt-get install coinor-cbc") as err:
        solve(problem, "fractional", solver="cbc")
    assert "solver='highs'" in str(err.value)


# --- the PuLP model -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fractional", "whole_loan"])
def test_model_has_eligible_options_only_and_scaled_money(mode: str) -> None:
    problem = _problem(60, 3, 5)
    prob, handles = build_pulp_model(problem, mode)
    nb = len(problem.blocks)
    assert len(prob.variables()) == int(problem.eligible.sum()) + nb
    assert len(handles.loan_rows) == problem.n_loans
    one_sided = np.isfinite(problem.rows.lower) ^ np.isfinite(problem.rows.upper)
    assert one_sided.all()
    added = sum(len(c) for c in handles.resource_rows)
    assert len(prob.constraints()) == problem.n_loans + added
    integer = {v.cat for v in prob.variables()}
    assert integer == ({pulp.LpInteger} if mode == "whole_loan" else {pulp.LpContinuous})
    assert prob.sense == pulp.LpMinimize
    flat = problem.value.ravel()
    for var, col in zip(handles.x[:50], handles.cols[:50], strict=False):
        assert prob.objective.get(var, 0.0) == pytest.approx(-flat[col] * MONEY_SCALE)
    for var, cost in zip(handles.y, problem.block_cost, strict=True):
        assert prob.objective.get(var, 0.0) == pytest.approx(-cost * MONEY_SCALE)


def test_naive_model_keeps_ineligible_options_at_zero() -> None:
    problem = _problem(40, 2, 11)
    naive = naive_pulp_model(problem, "whole_loan")
    assert len(naive.variables()) == problem.n_loans * problem.n_channels + len(problem.blocks)
    upper = {v.name: v.upBound for v in naive.variables()}
    for i, j in zip(*np.nonzero(~problem.eligible), strict=True):
        assert upper[f"x_{i}_{j}"] == 0
    assert naive.sense == pulp.LpMaximize


@needs_pulp_solver
def test_naive_model_has_the_same_optimum() -> None:
    problem = _problem(40, 2, 11)
    naive = naive_pulp_model(problem, "fractional")
    naive.solve(get_solver(PULP_SOLVERS[-1], mip=False))
    assert pulp.LpStatus[naive.status] == "Optimal"
    ours = solve_direct(problem, "fractional", None, MIP_GAP)
    assert _rel(pulp.value(naive.objective), ours.objective) < 1e-7


@needs_pulp_solver
@pytest.mark.parametrize("solver", PULP_SOLVERS)
def test_ranged_and_equality_rows(solver: str) -> None:
    problem = _problem(80, 3, 2)
    rows = problem.rows
    k = rows.names.index("restructure_max_loans")
    for lower, upper in ((2.0, rows.upper[k]), (5.0, 5.0)):
        lo, hi = rows.lower.copy(), rows.upper.copy()
        lo[k], hi[k] = lower, upper
        changed = dataclasses.replace(problem, rows=dataclasses.replace(rows, lower=lo, upper=hi))
        ref = solve_direct(changed, "fractional", None, MIP_GAP)
        got = solve_pulp(changed, "fractional", solver)
        assert got.status == "optimal"
        assert _rel(got.objective, ref.objective) < 1e-8
        assert lower - 1e-6 <= (rows.matrix[k] @ got.shares.ravel()) <= upper + 1e-6


@needs_pulp_solver
@pytest.mark.parametrize("solver", PULP_SOLVERS)
def test_infeasible_rows_report_infeasible(solver: str) -> None:
    problem = _problem(50, 2, 4)
    rows = problem.rows
    k = rows.names.index("restructure_max_loans")
    lo = rows.lower.copy()
    lo[k] = problem.n_loans + 1.0  # more restructurings than loans
    changed = dataclasses.replace(problem, rows=dataclasses.replace(rows, lower=lo))
    for mode in ("fractional", "whole_loan"):
        out = solve_pulp(changed, mode, solver)
        assert out.status == "infeasible"
        assert math.isnan(out.objective)


def _fake(status: int, sol_status: int) -> Any:
    return SimpleNamespace(status=status, sol_status=sol_status, solverModel=None)


@pytest.mark.parametrize(
    ("status", "sol", "whole", "limit", "elapsed", "expected"),
    [
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, True, None, 1.0, "optimal"),
        (pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible, True, 10.0, 10.2, "time_limit"),
        # CBC has said "Optimal" at a time limit: a MILP that used its time is no proof.
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, True, 10.0, 10.1, "time_limit"),
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, False, 10.0, 10.1, "optimal"),
        (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible, True, None, 1.0, "infeasible"),
        (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound, True, 10.0, 10.0, "no_solution"),
        (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound, True, None, 1.0, "error"),
        (pulp.LpStatusUndefined, pulp.LpSolutionNoSolutionFound, False, None, 1.0, "error"),
        (pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded, False, None, 1.0, "error"),
    ],
)
def test_status_mapping_does_not_trust_optimal(
    status: int, sol: int, whole: bool, limit: float | None, elapsed: float, expected: str
) -> None:
    got, text = _read_status(_fake(status, sol), SimpleNamespace(name="X"), whole, limit, elapsed)
    assert got == expected
    assert text.startswith("X: ")


# --- agreement with the native HiGHS path -------------------------------------------------


@needs_pulp_solver
@settings(max_examples=6, deadline=None, database=None)
@given(
    n=st.integers(20, 150),
    branches=st.integers(2, 6),
    seed=st.integers(0, 10_000),
)
def test_pulp_solvers_agree_with_native_highs(n: int, branches: int, seed: int) -> None:
    problem = _problem(n, branches, seed)
    lp = solve(problem, "fractional", solver="highs")
    try:
        native_whole: float | None = solve(problem, "whole_loan", solver="highs").objective
    except InfeasiblePolicyError:  # see test_whole_loan_matches_native_highs
        native_whole = None
    whole_values = []
    for name in PULP_SOLVERS:
        frac = solve(problem, "fractional", solver=name)
        assert frac.solver.backend == f"pulp:{name}"
        assert frac.verification.ok
        assert _rel(frac.objective, lp.objective) < 1e-6
        assert frac.bound >= frac.objective
        assert _rel(frac.bound, frac.objective) < 1e-6
        whole = solve(problem, "whole_loan", solver=name, mip_gap=MIP_GAP)
        assert whole.verification.ok
        # CBC's proven bound is its root node's (its claim of the optimum is not proof),
        # so the status may be "feasible"; the plan itself must still be near-optimal.
        assert whole.status.value in ("optimal", "feasible")
        assert whole.status.value == "feasible" or whole.gap <= MIP_GAP
        if native_whole is not None:
            assert _rel(whole.objective, native_whole) <= MIP_GAP
        assert whole.objective <= lp.objective * (1 + 1e-9) + 1e-6
        # The native plan is feasible, so it can never beat a proven bound.
        assert native_whole is None or native_whole <= whole.bound * (1 + 1e-9) + 1e-6
        whole_values.append(whole.objective)
    assert max(whole_values) - min(whole_values) <= MIP_GAP * max(abs(v) for v in whole_values)


@needs_pulp_solver
@pytest.mark.parametrize("case", [(150, 4, 3), (20, 2, 0), (20, 2, 1)])
def test_whole_loan_matches_native_highs(case: tuple[int, int, int]) -> None:
    problem = _problem(*case)
    ours = solve(problem, "whole_loan", solver=PULP_SOLVERS[0])
    native = solve(problem, "whole_loan", solver="highs")
    assert _rel(ours.objective, native.objective) <= MIP_GAP


@needs_pulp_solver
@pytest.mark.parametrize("solver", PULP_SOLVERS)
def test_sample_shadow_prices_match_native(solver: str) -> None:
    problem = _sample()
    native = solve(problem, "fractional", solver="highs").constraints.set_index("name")
    ours = solve(problem, "fractional", solver=solver).constraints.set_index("name")
    for name in ("write_off_quota", "securitisation_max_pool", "profit_max_loss"):
        assert ours.loc[name, "shadow_price"] == pytest.approx(
            native.loc[name, "shadow_price"], rel=1e-6, abs=1e-9
        )


def _with_limit(problem: AllocationProblem, k: int, delta: float) -> AllocationProblem:
    rows = problem.rows
    upper = rows.upper.copy()
    upper[k] += delta
    return dataclasses.replace(problem, rows=dataclasses.replace(rows, upper=upper))


@needs_pulp_solver
@settings(max_examples=4, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), n=st.integers(40, 150))
def test_shadow_prices_price_budget_relaxations(seed: int, n: int) -> None:
    """The dual of a budget is a supergradient of the LP value: right <= price <= left slope.

    Where the left and right slopes agree (a non-degenerate LP) that pins the price, so
    each solver's shadow price must equal the measured value of one more unit of budget.
    """
    problem = _problem(n, 3, seed)
    base = solve_direct(problem, "fractional", None, MIP_GAP).objective
    for name, delta in (("write_off_quota", 1e4), ("restructure_max_loans", 1.0)):
        k = problem.rows.names.index(name)
        up = solve_direct(_with_limit(problem, k, delta), "fractional", None, 0).objective
        down = solve_direct(_with_limit(problem, k, -delta), "fractional", None, 0).objective
        right = (up - base) / delta
        left = (base - down) / delta if math.isfinite(down) else math.inf  # tighter: infeasible
        tol = (1e-9 * abs(base) + 0.05) / delta
        for solver in PULP_SOLVERS:
            out = solve_pulp(problem, "fractional", solver)
            price = -price_weights(problem, out.duals)[k]  # CNY per unit of budget
            assert right - tol <= price <= left + tol, (solver, name, right, price, left)
            if left - right <= tol:  # non-degenerate: the price is the measured slope
                assert price == pytest.approx(right, abs=2 * tol)
            shadow = solve(problem, "fractional", solver=solver).constraints.set_index("name")
            assert shadow.loc[name, "shadow_price"] == pytest.approx(abs(price), rel=1e-6)


# --------------------------------------------------------------------------- [solver] section


def _sample_problem(solver_section: dict[str, Any]) -> Any:
    data = make_portfolio(60, 2, seed=5)
    policy = {**data.policy_dict(), "solver": solver_section}
    return build_problem(read_portfolio(data.loans, data.branches), policy, data.options)


def test_the_solver_section_sets_what_the_call_leaves_out() -> None:
    problem = _sample_problem({"method": "decomposition", "mip_gap": 1e-4})
    assert solve(problem, "fractional").solver.method == "decomposition"
    assert solve(problem, "fractional", method="direct").solver.method == "direct"
    if "PULP_CBC_CMD" in available_solvers():
        chosen = _sample_problem({"backend": "PULP_CBC_CMD"})
        assert solve(chosen, "fractional").solver.backend == "pulp:PULP_CBC_CMD"
        assert solve(chosen, "fractional", solver="highs").solver.backend == "highs"


def test_a_bad_solver_section_names_every_key() -> None:
    problem = _sample_problem(
        {"method": "fastest", "time_limit": -1, "mip_gap": 2, "threads": 4, "backend": ""}
    )
    with pytest.raises(PolicyError) as info:
        solve(problem, "fractional")
    where = {w for w, _ in info.value.problems}
    assert where == {f"[solver] {k}" for k in ("method", "time_limit", "mip_gap", "threads",
                                               "backend")}  # fmt: skip

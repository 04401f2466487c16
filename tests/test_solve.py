"""Property tests of ``solve``: the model of docs/model.md, checked independently.

Problems come from :mod:`strategies` (synthetic portfolios with perturbed policies, and
hand-built tables of up to 7 loans that :func:`strategies.brute_force` enumerates).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from npl_disposal import (
    InfeasiblePolicyError,
    Status,
    build_problem,
    read_portfolio,
    solve,
    verify_plan,
)
from npl_disposal.datasets import make_portfolio
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._pricing import solve_fractional
from npl_disposal.solvers._whole_loan import solve_whole_loan
from npl_disposal.solvers.result import AllocationResult, plan_frame
from strategies import (
    CAPACITIES,
    CONSTRAINT_SECTIONS,
    Case,
    as_a_cap,
    assert_sound,
    brute_force,
    cases,
    loan,
    make_case,
    rel_tol,
    relaxed,
    solve_feasible,
    synthetic_cases,
    tightened,
    tiny_cases,
    try_solve,
    without_limits,
)

MODES = ("whole_loan", "fractional")
MIP_GAP = 1e-6
#: Seconds after which the pricing loop is stopped (it takes milliseconds here).
LOOP_GUARD = 20.0

#: Derandomized, without an example database, by the ``ci`` profile of conftest.py
#: (``HYPOTHESIS_PROFILE=explore`` draws fresh examples).
SETTINGS: dict[str, Any] = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _whole_tol(result: AllocationResult, *values: float) -> float:
    """What a whole-loan objective may miss the optimum by: its own gap, or the mip gap."""
    gap = max(result.bound - result.objective, 0.0)
    return max(gap, MIP_GAP * max(1.0, abs(result.bound))) + rel_tol(*values)


# --------------------------------------------------------------------------- returned plans


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=20, **SETTINGS)
@given(case=cases())
def test_returned_plan_verifies_allocates_every_loan_once_and_conserves_balance(
    case: Case, mode: str
) -> None:
    problem = case.build()
    result = solve_feasible(problem, mode=mode)
    assert result.verification.ok, result.verification.summary()
    again = verify_plan(
        problem.portfolio,
        problem.policy,
        problem.options,
        result.plan,
        on=result.blocks,
        whole_loan=mode == "whole_loan",
    )
    assert again.ok, again.summary()
    assert again.objective == pytest.approx(result.objective, rel=1e-9, abs=1e-6)
    # Nothing goes to a channel the loan is not eligible for after rules 2 and 3.
    assert not (result.shares[~problem.eligible] > 1e-9).any()
    if mode == "whole_loan":
        assert np.all((result.shares < 1e-7) | (result.shares > 1 - 1e-7))
        assert result.bound >= result.objective
        assert result.gap >= 0.0
    # Every loan allocated exactly once, in the grid and in the plan table; balance conserved.
    assert result.shares.sum(axis=1) == pytest.approx(np.ones(problem.n_loans), abs=1e-7)
    assert_sound(case, result)


# --------------------------------------------------------------------------- relaxation order


@settings(max_examples=25, **SETTINGS)
@given(case=cases())
def test_fractional_bounds_whole_loan(case: Case) -> None:
    problem = case.build()
    frac = try_solve(problem, mode="fractional")
    whole = try_solve(problem, mode="whole_loan")
    if frac is None:
        assert whole is None, "whole-loan plan found where the LP relaxation is infeasible"
        return
    assume(whole is not None)
    assert whole is not None
    tol = rel_tol(frac.objective, whole.objective, rel=1e-7)
    assert frac.objective >= whole.objective - tol
    assert frac.bound >= whole.objective - tol
    assert frac.bound >= frac.objective - tol
    assert whole.bound >= whole.objective


@settings(max_examples=25, **SETTINGS)
@given(
    capacity=st.sampled_from(CAPACITIES),
    factor=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    data=st.data(),
)
def test_tightening_a_capacity_never_raises_the_fractional_optimum(
    capacity: tuple[str, str], factor: float, data: st.DataObject
) -> None:
    section, key = capacity
    case = data.draw(cases(require=(section,)), label="case")
    policy = as_a_cap(case.policy)
    before = try_solve(case.build(policy), mode="fractional")
    after = try_solve(case.build(tightened(policy, section, key, factor)), mode="fractional")
    if before is None:
        event("infeasible before")
        assert after is None, "tightening a budget made an infeasible policy feasible"
        return
    if after is None:
        event("infeasible after")
        return
    event("both feasible")
    assert after.objective <= before.objective + rel_tol(before.objective, rel=1e-8)


@settings(max_examples=15, **SETTINGS)
@given(
    capacity=st.sampled_from(CAPACITIES), factor=st.sampled_from([0.0, 0.5, 0.9]), data=st.data()
)
def test_tightening_a_capacity_never_raises_the_whole_loan_optimum(
    capacity: tuple[str, str], factor: float, data: st.DataObject
) -> None:
    section, key = capacity
    case = data.draw(cases(require=(section,)), label="case")
    policy = as_a_cap(case.policy)
    # HiGHS can take minutes to prove a few tiny MILPs optimal: bound each solve and
    # only compare plans proven optimal.
    before = try_solve(case.build(policy), mode="whole_loan", time_limit=20)
    after = try_solve(
        case.build(tightened(policy, section, key, factor)), mode="whole_loan", time_limit=20
    )
    unproven = [r for r in (before, after) if r is not None and r.status is not Status.OPTIMAL]
    if unproven:
        event("not proven optimal within the time limit")
        return
    if before is None:
        event("infeasible before")
        assert after is None, "tightening a budget made an infeasible policy feasible"
        return
    if after is None:
        event("infeasible after")
        return
    event("both feasible")
    # The optimum under the tighter policy is at most the old optimum <= old bound.
    assert after.objective <= before.bound + rel_tol(before.bound)
    assert after.objective <= before.objective + _whole_tol(before)


@settings(max_examples=20, **SETTINGS)
@given(section=st.sampled_from(CONSTRAINT_SECTIONS), data=st.data())
def test_adding_a_section_never_raises_the_fractional_optimum(
    section: str, data: st.DataObject
) -> None:
    case = data.draw(cases(require=(section,)), label="case")
    policy = as_a_cap(case.policy)
    with_it = try_solve(case.build(policy), mode="fractional")
    without_it = try_solve(
        case.build(without_limits(policy, section, case.loans)), mode="fractional"
    )
    if with_it is None:
        event("infeasible with the section")
        return
    event("feasible with the section")
    assert without_it is not None, f"dropping [{section}] made a feasible policy infeasible"
    assert with_it.objective <= without_it.objective + rel_tol(without_it.objective, rel=1e-8)


def test_a_write_off_table_can_loosen_the_default_priority() -> None:
    """Why the monotonicity tests compare against ``without_limits``, not ``without``.

    Without ``[write_off]`` the default priority (leave_book) bars retaining a
    small/micro loan offered write-off; a table reading it as ``quota_first`` with a
    quota of 0 lets the loan stay: adding that table raises the optimum.
    """
    options = [("T", "retain", 0.02, 0.02, 0.0), ("T", "write_off", 0.0, 0.0, 1.0)]
    case = make_case([loan("T", 100_000.0, small_micro=True)], options)
    table = {"write_off": {"quota": 0.0, "priority": "quota_first"}}
    default = solve(case.build({}), mode="fractional")
    loosened = solve(case.build(table), mode="fractional")
    assert default.objective == pytest.approx(0.0, abs=1e-9)
    assert loosened.objective == pytest.approx(0.02, abs=1e-9)
    capped = as_a_cap(table)
    looser = solve(case.build(without_limits(capped, "write_off", case.loans)), mode="fractional")
    assert looser.objective >= solve(case.build(capped), mode="fractional").objective


# --------------------------------------------------------------------------- brute force


@settings(max_examples=70, **SETTINGS)
@given(case=tiny_cases())
def test_whole_loan_matches_enumeration_of_every_plan(case: Case) -> None:
    """Every whole-loan plan enumerated and checked in plain numpy (``brute_force``).

    Both say infeasible together; the whole-loan optimum equals the enumerated one (to
    1e-6 relative, or within the gap it reports) and its bound is not below it; the LP
    relaxation bounds it too.
    """
    best = brute_force(case)
    problem = case.build()
    whole = try_solve(problem, mode="whole_loan")
    if best.objective is None:
        event("no whole-loan plan")
        assert whole is None, f"whole-loan plan returned but none exists:\n{whole and whole.plan}"
        return
    event("feasible")
    assert whole is not None, f"no plan returned, but {best.best} meets every rule"
    tol = rel_tol(best.objective)
    assert whole.objective <= best.objective + tol, "better than every enumerated plan"
    assert whole.bound >= best.objective - tol, "the proven bound is below a feasible plan"
    assert whole.objective >= best.objective - _whole_tol(whole, best.objective)
    assert whole.objective == pytest.approx(best.objective, rel=1e-6, abs=1e-2)
    frac = try_solve(problem, mode="fractional")
    assert frac is not None, f"the LP is infeasible, but the plan {best.best} meets every rule"
    assert frac.objective >= best.objective - rel_tol(best.objective, rel=1e-7)
    assert frac.bound >= best.objective - rel_tol(best.objective, rel=1e-7)


def _two_loans(options: list[tuple[str, str, float, float, float]]) -> Case:
    loans = pd.DataFrame(
        {
            "loan_id": ["A", "B"],
            "branch": "B1",
            "balance": [100_000.0, 100_000.0],
            "provision": 0.0,
            "classification": "loss",
            "npl_age_months": 0.0,
            "small_micro": False,
            "inclusive": False,
        }
    )
    branches = pd.DataFrame({"branch": ["B1"], "inclusive_loans": [1e6], "profit": [1e7]})
    frame = pd.DataFrame(options, columns=["loan_id", "channel", "value", "pnl", "derecognised"])
    return Case(loans, branches, frame, {}, "regression")


_BLOCKS = _two_loans(
    [
        ("A", "retain", 50_000.0, 0.0, 0.0),
        ("A", "securitisation", 40_000.0, 0.0, 0.95),
        ("B", "retain", 50_000.0, 0.0, 0.0),
        ("B", "bulk_transfer", 40_000.0, 0.0, 1.0),
    ]
)
_BUDGETS = _two_loans(
    [
        ("A", "retain", 50_000.0, 0.0, 0.0),
        ("A", "restructure", 60_000.0, 0.0, 0.0),
        ("B", "retain", 50_000.0, 0.0, 0.0),
        ("B", "write_off", 60_000.0, 0.0, 1.0),
        ("B", "restructure", 40_000.0, 0.0, 0.0),
    ]
)


@pytest.mark.parametrize(
    ("case", "policy", "optimum"),
    [
        pytest.param(
            _BLOCKS,
            {"securitisation": {"max_pool": 1e6, "fixed_cost": 5_000.0}},
            100_000.0,
            id="unused-securitisation-pays-fixed-cost",
        ),
        pytest.param(
            _BLOCKS,
            {"securitisation": {"max_pool": 1e6, "min_pool": 1e5}},
            100_000.0,
            id="unused-securitisation-min-pool-infeasible",
        ),
        pytest.param(
            _BLOCKS,
            {"bulk_transfer": {"capacity": 1e6, "min_loans": 1}},
            100_000.0,
            id="unused-bulk-min-loans-infeasible",
        ),
        pytest.param(
            _BLOCKS,
            {"bulk_transfer": {"capacity": 1e6, "min_loans": 2}},
            100_000.0,
            id="bulk-package-of-exactly-min-loans",
        ),
        pytest.param(
            _BUDGETS,
            {"restructure": {"max_loans": 1}},
            120_000.0,
            id="restructure-max-loans-reached",
        ),
        pytest.param(
            _BUDGETS,
            {"restructure": {"max_loans": 0}},
            110_000.0,
            id="restructure-max-loans-zero",
        ),
        pytest.param(
            _BUDGETS,
            {"write_off": {"quota": 100_000.0}},
            120_000.0,
            id="write-off-quota-met-exactly",
        ),
        pytest.param(
            _BUDGETS,
            {"profit": {"max_loss": 0.0}},
            120_000.0,
            id="profit-exactly-at-max-loss",
        ),
        pytest.param(
            _BUDGETS,
            {"write_off": {"quota": 100_000.01}},
            120_000.0,
            id="write-off-quota-a-cent-above",
        ),
    ],
)
def test_whole_loan_reaches_plans_exactly_at_a_limit(
    case: Case, policy: dict[str, Any], optimum: float
) -> None:
    """Regression: whole-loan models used to tighten every row by 1e-8 (formulation._shrink,
    removed in f9a4e0a), which cut off plans exactly at a limit, an unused block included."""
    assert brute_force(case, policy).objective == pytest.approx(optimum)
    result = solve(case.build(policy), mode="whole_loan")
    assert result.objective == pytest.approx(optimum, abs=0.01)
    assert result.bound >= optimum - 0.01


# --------------------------------------------------------------------------- methods agree


@settings(max_examples=15, **SETTINGS)
@given(case=cases())
def test_direct_and_decomposition_agree(case: Case) -> None:
    problem = case.build()
    for mode in MODES:
        direct = try_solve(problem, mode=mode, method="direct")
        decomposed = try_solve(problem, mode=mode, method="decomposition")
        assert (direct is None) == (decomposed is None), mode
        if direct is None or decomposed is None:
            continue
        assert decomposed.verification.ok
        if mode == "fractional":
            assert decomposed.objective == pytest.approx(direct.objective, rel=1e-7, abs=1e-4)
        else:
            assert decomposed.objective >= direct.objective - _whole_tol(direct)
            assert direct.objective >= decomposed.objective - _whole_tol(decomposed)


def test_decomposition_of_a_one_channel_problem() -> None:
    """Regression: with 'retain' the only channel, decomposition._repair's
    np.partition(loss, 1, axis=1) raised 'kth(=1) out of bounds'; fixed in 03dfaa0."""
    case = _two_loans([("A", "retain", 1.0, 0.0, 0.0), ("B", "retain", 2.0, 0.0, 0.0)])
    result = solve(case.build(), mode="whole_loan", method="decomposition")
    assert result.objective == pytest.approx(3.0)


def _verified(problem: AllocationProblem, shares: np.ndarray, y: np.ndarray, whole: bool) -> None:
    """The structured method's raw plan meets every rule and allocates every loan once."""
    assert shares.sum(axis=1) == pytest.approx(np.ones(problem.n_loans), abs=1e-7)
    on = {b.name: float(v) for b, v in zip(problem.blocks, y, strict=True)}
    check = verify_plan(
        problem.portfolio,
        problem.policy,
        problem.options,
        plan_frame(problem, shares),
        on=on,
        whole_loan=whole,
    )
    assert check.ok, check.summary()


def _small_run(data: st.DataObject) -> tuple[Case, int, int]:
    """A problem with more loans than ``sample + free_target``, so the loop really runs."""
    case = data.draw(
        st.one_of(synthetic_cases(min_loans=30, max_loans=60), tiny_cases(min_loans=5)),
        label="case",
    )
    free_target = data.draw(st.integers(1, min(5, case.n_loans - 3)), label="free_target")
    sample = data.draw(st.integers(1, min(20, case.n_loans - free_target - 1)), label="sample")
    return case, sample, free_target


@settings(max_examples=25, **SETTINGS)
@given(data=st.data(), seed=st.integers(0, 3))
def test_pricing_loop_with_a_tiny_sample_finds_the_lp_optimum(
    data: st.DataObject, seed: int
) -> None:
    case, sample, free_target = _small_run(data)
    problem = case.build()
    assert problem.n_loans > sample + free_target
    direct = try_solve(problem, mode="fractional", method="direct")
    assume(direct is not None)
    assert direct is not None
    outcome = solve_fractional(
        problem, sample=sample, free_target=free_target, seed=seed, time_limit=LOOP_GUARD
    )
    assert outcome.status == "optimal", f"{outcome.status} after {outcome.iterations} passes"
    assert float(np.abs(outcome.shortfall).max(initial=0.0)) <= 1e-3
    assert outcome.objective == pytest.approx(direct.objective, rel=1e-7, abs=1e-4)
    assert outcome.bound >= direct.objective - rel_tol(direct.objective, rel=1e-7)
    _verified(problem, outcome.shares, outcome.y, whole=False)


def _unhelpable_profit_floor(exit_channel: str = "amc_b", **policy: Any) -> Case:
    """30 loans already at their best profit (retain) and still CNY 1,000 short of the floor."""
    rows = [loan(f"L{i}", 100_000.0) for i in range(30)]
    options = []
    for i in range(30):
        options += [
            (f"L{i}", "retain", 10.0, -1_000.0, 0.0),
            (f"L{i}", exit_channel, 5.0, -2_000.0, 1.0),
        ]
    return make_case(rows, options, {"profit": {"max_loss": 29_000.0}, **policy})


@pytest.mark.parametrize("phase_one", [False, True])
def test_pricing_loop_stops_on_an_infeasible_lp(phase_one: bool) -> None:
    """Regression: a violated row no fixed loan could help froze the loop ('0 loans freed to
    meet violated rows profit_max_loss', forever without a time limit); fixed in 02fd10b."""
    problem = _unhelpable_profit_floor().build()
    outcome = solve_fractional(
        problem, sample=5, free_target=1, time_limit=1.0, phase_one=phase_one
    )
    assert outcome.status != "time_limit", f"spun for {outcome.iterations} passes"
    assert float(np.abs(outcome.shortfall).max()) == pytest.approx(1_000.0)


def test_whole_loan_priced_on_a_sample_reports_an_infeasible_policy_as_without() -> None:
    """With an on/off block the whole-loan solve prices the combinations on a sample; when
    the policy cannot be met it must still end in the full relaxation and report the
    shortfall (CNY 1,000 of profit floor), as the solve without a sample does."""
    bulk = {"capacity": 1e9, "min_loans": 2}
    problem = _unhelpable_profit_floor("bulk_transfer", bulk_transfer=bulk).build()
    assert problem.switches.any()
    sampled = solve_whole_loan(problem, LOOP_GUARD, sample=5, free_target=1)
    whole = solve_whole_loan(problem, LOOP_GUARD)
    assert float(np.abs(sampled.shortfall).max()) == pytest.approx(1_000.0)
    assert float(np.abs(whole.shortfall).max()) == pytest.approx(1_000.0)


@settings(max_examples=12, **SETTINGS)
@given(data=st.data())
def test_whole_loan_decomposition_with_a_tiny_sample_agrees_with_direct(
    data: st.DataObject,
) -> None:
    case, sample, free_target = _small_run(data)
    problem = case.build()
    direct = try_solve(problem, mode="whole_loan", method="direct")
    assume(direct is not None)
    assert direct is not None
    outcome = solve_whole_loan(problem, LOOP_GUARD, sample=sample, free_target=free_target)
    assert outcome.status in ("optimal", "feasible")
    _verified(problem, outcome.shares, outcome.y, whole=True)
    assert outcome.bound >= direct.objective - rel_tol(direct.objective)
    slack = max(MIP_GAP * abs(outcome.bound), outcome.bound - outcome.objective)
    assert outcome.objective >= direct.objective - slack - rel_tol(direct.objective)
    assert outcome.objective <= direct.bound + rel_tol(direct.bound)


# --------------------------------------------------------------------------- shadow prices


def _row(result: AllocationResult, name: str) -> pd.Series:
    table = result.constraints.set_index("name")
    assume(name in table.index)
    return table.loc[name]


@settings(max_examples=30, **SETTINGS)
@given(case=cases(require=("write_off",)), share=st.sampled_from([1e-4, 1e-3]))
def test_write_off_shadow_price_predicts_a_small_relaxation(case: Case, share: float) -> None:
    policy = as_a_cap(case.policy)
    before = solve_feasible(case.build(policy), mode="fractional")
    row = _row(before, "write_off_quota")
    assume(bool(row["binding"]))
    quota = float(case.policy["write_off"]["quota"])
    delta = max(share * quota, 100.0)
    after = solve(case.build(relaxed(policy, "write_off", "quota", delta)), mode="fractional")
    price, new_price = (
        float(row["shadow_price"]),
        float(_row(after, "write_off_quota")["shadow_price"]),
    )
    change = after.objective - before.objective
    tol = rel_tol(before.objective, rel=1e-9, floor=1e-4)
    # Concavity of the LP value in the quota: s(q + d) d <= f(q + d) - f(q) <= s(q) d.
    assert change <= price * delta + tol
    assert change >= new_price * delta - tol
    assert change >= -tol
    event("price > 0" if price > 1e-12 else "price 0")
    if math.isclose(price, new_price, rel_tol=1e-9, abs_tol=1e-12):
        event("same basis: exact prediction")
        assert change == pytest.approx(price * delta, rel=1e-6, abs=tol)


@pytest.mark.parametrize("status", ["time_limit", "infeasible"])
def test_an_interrupted_or_infeasible_lp_iterate_is_never_a_plan(
    status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HiGHS may hand back the last iterate of an LP it did not solve; it is not a plan."""
    from npl_disposal.solvers._highs import ArraySolution

    solve_module = importlib.import_module("npl_disposal.solvers.highs_backend")

    options = [
        ("A", "retain", 1.0, 0.0, 0.0),
        ("A", "write_off", 5.0, -90.0, 1.0),
        ("B", "retain", 1.0, 0.0, 0.0),
        ("B", "write_off", 3.0, -40.0, 1.0),
    ]
    case = make_case([loan("A", 100.0), loan("B", 50.0)], options, {"write_off": {"quota": 100.0}})
    problem = case.build()

    def iterate(model: Any, **kwargs: Any) -> ArraySolution:
        x = np.ones(model.cost.size)  # every option at once: breaks every row
        return ArraySolution(status, x, np.zeros(model.row_lower.size), 0.0, 0.0, 0.0, status)

    monkeypatch.setattr(solve_module, "run_highs", iterate)
    if status == "infeasible":
        with pytest.raises(InfeasiblePolicyError):
            solve(problem, "fractional", method="direct")
    else:
        result = solve(problem, "fractional", method="direct")
        assert result.status is Status.NO_SOLUTION


def test_a_time_limited_direct_milp_above_the_presolve_limit_runs_without_presolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS does not keep a time limit through a MIP presolve (ERGO-Code/HiGHS#1501; at
    100k loans it overran a 10 s limit by minutes), so a large time-limited direct
    whole-loan solve turns presolve off; the plan it returns must still verify."""
    solve_module = importlib.import_module("npl_disposal.solvers.highs_backend")
    highs_calls: list[bool] = []
    real = solve_module.run_highs

    def spy(model: Any, **kwargs: Any) -> Any:
        highs_calls.append(kwargs.get("presolve", True))
        return real(model, **kwargs)

    monkeypatch.setattr(solve_module, "run_highs", spy)
    monkeypatch.setattr(solve_module, "PRESOLVE_TIME_LIMIT_OPTIONS", 0)
    data = make_portfolio(60, 2, seed=5)  # every rule of the policy
    problem = build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                            data.options)  # fmt: skip
    result = solve(problem, "whole_loan", method="direct", time_limit=30.0)
    assert highs_calls == [False]
    assert result.verification.ok
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    solve(problem, "whole_loan", method="direct")  # no time limit: presolve stays on
    assert highs_calls == [False, True]

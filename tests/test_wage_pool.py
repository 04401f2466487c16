"""``[wage_pool] weight / max_fall``: the optimiser prices and limits the wage-pool fall.

A branch within tolerance counts its NPL loss against the wage pool only at
``consider_share``; with a weight the optimiser may give up value to bring a branch
within tolerance, and ``max_fall`` caps each branch's fall. Checked on a case worked
by hand, by brute force against :func:`~npl_disposal.model.figures.branch_figures` on small
tables, and as invariants on synthetic portfolios.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from npl_disposal import InfeasiblePolicyError, PolicyError, solve, verify_plan
from npl_disposal.model.figures import branch_figures
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.policy import Policy
from npl_disposal.solvers.pulp_backend import available_solvers
from strategies import Case, loan, make_case, synthetic_cases, tiny_cases

SETTINGS: dict[str, Any] = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

# L1 (inclusive) keeps B1 above tolerance unless sold at a loss of 40; L2's write-off
# brings 25 more value but a loss of 100 that counts in full outside tolerance.
OPTIONS = [
    ("L1", "retain", 50.0, 0.0, 0.0),
    ("L1", "bulk_transfer", 45.0, -40.0, 1.0),
    ("L2", "retain", 30.0, 0.0, 0.0),
    ("L2", "write_off", 55.0, -100.0, 1.0),
]


def _case(wage_pool: dict[str, float], tolerance: bool = True) -> Case:
    loans = [
        loan("L1", 100.0, small_micro=True, inclusive=True),
        loan("L2", 100.0),
    ]
    policy: dict[str, Any] = {"wage_pool": {"rate": 0.1, "consider_share": 0.0, **wage_pool}}
    if tolerance:
        policy["tolerance"] = {"bank_npl_ratio": 0.02, "margin": 0.03, "enforce": False}
    branches = [{"branch": "B1", "inclusive_loans": 1000.0, "profit": 1e6}]
    return make_case(loans, OPTIONS, policy, branches)


def _plan(result: Any) -> dict[str, str]:
    return dict(zip(result.plan["loan_id"], result.plan["channel"], strict=True))


@pytest.mark.parametrize(
    ("weight", "plan", "objective"),
    [
        # retain+write_off: 105, fall 0.1 x 100 = 10 (outside tolerance); bulk+write_off:
        # 100, within tolerance so the 140 of loss is disregarded (consider_share 0).
        (0.0, {"L1": "retain", "L2": "write_off"}, 105.0),
        (0.4, {"L1": "retain", "L2": "write_off"}, 101.0),
        (1.0, {"L1": "bulk_transfer", "L2": "write_off"}, 100.0),
    ],
)
def test_a_weight_buys_tolerance_to_spare_the_wage_pool(
    weight: float, plan: dict[str, str], objective: float
) -> None:
    result = solve(_case({"weight": weight}).build(), "whole_loan")
    assert _plan(result) == plan
    assert result.objective == pytest.approx(objective, abs=1e-6)
    assert result.bound >= result.objective - 1e-9


def test_max_fall_rules_out_the_plan_that_cuts_the_wage_pool() -> None:
    result = solve(_case({"max_fall": 5.0}).build(), "whole_loan")
    assert _plan(result) == {"L1": "bulk_transfer", "L2": "write_off"}
    figures = result.branch_figures().set_index("branch")
    assert figures.loc["B1", "within"]
    assert figures.loc["B1", "relief"] == pytest.approx(140.0)


def test_without_tolerance_every_loss_counts() -> None:
    # No [tolerance]: no branch is "within"; retain+write_off costs 105 - 10 = 95,
    # bulk+write_off 100 - 14 = 86, retain+retain 80: the write-off still wins.
    result = solve(_case({"weight": 1.0}, tolerance=False).build(), "whole_loan")
    assert _plan(result) == {"L1": "retain", "L2": "write_off"}
    assert result.objective == pytest.approx(95.0, abs=1e-6)


def test_an_unreachable_max_fall_is_named() -> None:
    case = _case({"max_fall": 1.0, "consider_share": 1.0})
    forced = {**case.policy, "long_age": {"months": 0}}  # nothing may be retained
    with pytest.raises(InfeasiblePolicyError) as info:
        solve(case.build(forced), "whole_loan")
    assert info.value.conflicts["rule"].tolist() == ["wage_pool.max_fall"]
    assert "branch B1's wage pool would fall CNY 13.00 more" in str(info.value)


def test_policy_keys_are_validated() -> None:
    with pytest.raises(PolicyError, match="weight"):
        Policy.from_dict({"wage_pool": {"weight": -1.0}})
    assert Policy.from_dict({"wage_pool": {"max_fall": math.inf}}).wage_pool is not None
    assert not Policy.from_dict({"wage_pool": {"rate": 0.1}}).wage_pool_or_default.optimised


# --------------------------------------------------------------------------- brute force


def _exact_objective(problem: AllocationProblem, plan: dict[str, str]) -> float | None:
    """Value less weight x the wage-pool fall of branch_figures; None if the plan breaks a rule.

    The fall is the pool before the plan less the pool after: ``rate x max(0, profit)``
    less ``rate x max(0, profit - counted loss)`` (a pool never falls below zero).
    """
    frame = pd.DataFrame({"loan_id": list(plan), "channel": list(plan.values()), "share": 1.0})
    check = verify_plan(problem.portfolio, problem.policy, problem.options, frame)
    if not check.ok:
        return None
    figures = branch_figures(problem.portfolio, problem.policy, frame, problem.options)
    wage = problem.policy.wage_pool_or_default
    profit = (figures["profit_after"] + figures["npl_loss"]).to_numpy(dtype=float)
    before = wage.rate * np.maximum(profit, 0.0)
    fall = before - figures["wage_pool"].to_numpy(dtype=float)
    return check.objective - wage.weight * float(fall.sum())


#: Branch profits (CNY yuan) from none to ample against tiny cases' losses (up to ~2m).
PROFITS = st.sampled_from([-50_000.0, 0.0, 10_000.0, 150_000.0, 600_000.0, 10_000_000.0])


@settings(max_examples=40, **SETTINGS)
@given(case=tiny_cases(max_loans=3), weight=st.sampled_from([0.5, 2.0, 10.0]),
       share=st.sampled_from([0.0, 0.5]), enforce=st.booleans(), data=st.data())  # fmt: skip
def test_whole_loan_optimum_equals_brute_force_with_the_wage_pool(
    case: Case, weight: float, share: float, enforce: bool, data: st.DataObject
) -> None:
    policy = {k: dict(v) for k, v in case.policy.items()}
    policy.pop("securitisation", None)  # its fixed cost is charged conservatively, not exactly
    policy.pop("channels", None)  # so is a user channel's
    if "tolerance" in policy:
        policy["tolerance"]["enforce"] = enforce
    policy["wage_pool"] = {"rate": 0.1, "consider_share": share, "weight": weight}
    if data.draw(st.booleans(), label="max_fall"):
        policy["wage_pool"]["max_fall"] = data.draw(st.sampled_from([0.0, 1_000.0, 20_000.0]))
    profits = data.draw(st.lists(PROFITS, min_size=len(case.branches),
                                 max_size=len(case.branches)), label="profits")  # fmt: skip
    case = replace(case, branches=case.branches.assign(profit=profits))
    problem = case.build(policy)
    offered = case.options.groupby("loan_id")["channel"].apply(list)
    ids = case.loans["loan_id"].tolist()
    best = -math.inf
    for combo in itertools.product(*[offered[i] for i in ids]):
        value = _exact_objective(problem, dict(zip(ids, combo, strict=True)))
        if value is not None:
            best = max(best, value)
    if not math.isfinite(best):
        with pytest.raises(InfeasiblePolicyError):
            solve(problem, "whole_loan")
        return
    result = solve(problem, "whole_loan")
    assert result.objective == pytest.approx(best, rel=1e-6, abs=1e-3)
    plan = dict(zip(result.plan["loan_id"], result.plan["channel"], strict=True))
    assert _exact_objective(problem, plan) == pytest.approx(best, rel=1e-6, abs=1e-3)
    relaxed = solve(problem, "fractional")
    assert relaxed.bound >= best - 1e-3 - 1e-6 * abs(best)


# --------------------------------------------------------------------------- invariants


@settings(max_examples=12, **SETTINGS)
@given(case=synthetic_cases(max_loans=40, require=("tolerance",)),
       share=st.sampled_from([0.0, 0.5, 1.0]))  # fmt: skip
def test_a_larger_weight_never_raises_value_nor_the_modelled_fall(case: Case, share: float) -> None:
    def run(weight: float) -> tuple[float, float]:
        policy = {**case.policy, "wage_pool": {"rate": 0.1, "consider_share": share,
                                              "weight": weight}}  # fmt: skip
        try:
            result = solve(case.build(policy), "fractional")
        except InfeasiblePolicyError:
            assume(False)
        value = result.verification.objective
        fall = (value - result.objective) / weight if weight else math.nan
        return value, fall

    v1, f1 = run(0.5)
    v2, f2 = run(3.0)
    tol = 1e-6 * max(1.0, abs(v1)) + 1e-3
    assert v2 <= v1 + tol
    assert f2 <= f1 + tol


@settings(max_examples=12, **SETTINGS)
@given(case=synthetic_cases(max_loans=40), limit=st.floats(0.0, 2e6))
def test_max_fall_holds_in_the_branch_figures(case: Case, limit: float) -> None:
    policy = {**case.policy, "wage_pool": {"rate": 0.05, "consider_share": 0.5,
                                          "max_fall": limit}}  # fmt: skip
    try:
        result = solve(case.build(policy), "whole_loan", time_limit=20)
    except InfeasiblePolicyError:
        assume(False)
    figures = result.branch_figures()
    before = 0.05 * np.maximum(case.branches.set_index("branch")["profit"], 0.0)
    fall = before.reindex(figures["branch"]).to_numpy() - figures["wage_pool"].to_numpy()
    assert (fall <= limit + 0.01).all()


@settings(max_examples=10, **SETTINGS)
@given(case=synthetic_cases(min_loans=20, max_loans=60, require=("tolerance",)),
       weight=st.sampled_from([0.5, 5.0]), enforce=st.booleans())  # fmt: skip
def test_structured_direct_and_pulp_solves_agree_with_the_wage_pool(
    case: Case, weight: float, enforce: bool
) -> None:
    policy = {k: dict(v) for k, v in case.policy.items()}
    policy["tolerance"]["enforce"] = enforce
    policy["wage_pool"] = {"rate": 0.1, "consider_share": 0.3, "weight": weight}
    problem = case.build(policy)
    try:
        direct = solve(problem, "fractional", method="direct")
    except InfeasiblePolicyError:
        assume(False)
    structured = solve(problem, "fractional", method="decomposition")
    scale = 1e-6 * max(1.0, abs(direct.objective)) + 1e-2
    assert structured.objective == pytest.approx(direct.objective, abs=scale)
    if "cbc" in available_solvers():
        pulp_cbc = solve(problem, "fractional", solver="cbc")
        assert pulp_cbc.objective == pytest.approx(direct.objective, abs=scale)
    whole_direct = solve(problem, "whole_loan", method="direct", time_limit=30)
    whole = solve(problem, "whole_loan", method="decomposition", time_limit=30)
    assert whole.objective <= direct.bound + scale
    tol = max(whole.bound - whole.objective, whole_direct.bound - whole_direct.objective) + scale
    assert whole.objective == pytest.approx(whole_direct.objective, abs=tol)


def test_a_user_channel_s_fixed_cost_counts_in_the_wage_pool_fall() -> None:
    # amc_b loses 10 on L2 and costs 10 to use: a fall of 0.1 x 20 = 2 > 1.5.
    options = [*OPTIONS, ("L2", "amc_b", 60.0, -10.0, 1.0)]
    case = _case({"max_fall": 1.5, "consider_share": 1.0}, tolerance=False)
    policy = {**case.policy, "channels": {"amc_b": {"fixed_cost": 10.0}}}
    case = make_case(case.loans.to_dict("records"), options, policy,
                     case.branches.to_dict("records"))  # fmt: skip
    problem = case.build()
    plan = pd.DataFrame({"loan_id": ["L1", "L2"], "channel": ["retain", "amc_b"], "share": 1.0})
    check = verify_plan(problem.portfolio, problem.policy, problem.options, plan)
    assert check.violations["rule"].tolist() == ["wage_pool.max_fall"]
    assert check.violations["amount"].iloc[0] == pytest.approx(2.0)
    result = solve(problem, "whole_loan")
    assert _plan(result) != {"L1": "retain", "L2": "amc_b"}

"""``verify_plan`` must catch every broken rule, and agree with the model it does not share.

The optimiser's tests show that returned plans verify; these show that the verifier can
fail: planted violations are named by rule and loan, and on random whole-loan plans its
verdict equals an evaluation of the same plan on the problem's own rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from npl_disposal import solve, verify_plan
from npl_disposal.model.figures import branch_figures
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers.result import plan_frame, plan_with_keys
from strategies import Case, loan, make_case, tiny_cases

OPTS = [
    ("L1", "retain", 50.0, 0.0, 0.0),
    ("L1", "write_off", 10.0, -80.0, 1.0),
    ("L2", "retain", 70.0, 0.0, 0.0),
    ("L2", "bulk_transfer", 60.0, -40.0, 1.0),
    ("L3", "retain", 30.0, 0.0, 0.0),
    ("L3", "write_off", 5.0, -60.0, 1.0),
    ("L3", "restructure", 40.0, 0.0, 0.0),
]
POLICY: dict[str, Any] = {
    "mode": {"mode": "whole_loan"},
    "long_age": {"months": 36},
    "write_off": {"quota": 100.0},
    "bulk_transfer": {"capacity": 1000.0, "min_loans": 1},
    "restructure": {"max_loans": 1},
    "profit": {"max_loss": 150.0},
    "tolerance": {"bank_npl_ratio": 0.02, "margin": 0.03},
}


def _case() -> Case:
    loans = [
        loan("L1", 100.0, small_micro=True, inclusive=True),
        loan("L2", 100.0, npl_age_months=48.0, small_micro=True, inclusive=True),
        loan("L3", 100.0),
    ]
    branches = [{"branch": "B1", "inclusive_loans": 10_000.0, "profit": 1e6}]
    return make_case(loans, OPTS, POLICY, branches)


def _verify(case: Case, rows: list[tuple[str, str, float]], whole: bool = True) -> pd.DataFrame:
    problem = case.build()
    plan = pd.DataFrame(rows, columns=["loan_id", "channel", "share"])
    return verify_plan(
        problem.portfolio, problem.policy, problem.options, plan, whole_loan=whole
    ).violations


GOOD = [("L1", "write_off", 1.0), ("L2", "bulk_transfer", 1.0), ("L3", "restructure", 1.0)]


def test_a_compliant_plan_verifies() -> None:
    assert _verify(_case(), GOOD).empty


@pytest.mark.parametrize(
    ("rows", "rule", "loan_id"),
    [
        ([("L1", "bulk_transfer", 1.0), *GOOD[1:]], "eligible", "L1"),
        ([("L1", "write_off", 0.6), *GOOD[1:]], "allocated_once", "L1"),
        ([("L1", "write_off", 1.0), ("L1", "retain", 0.5), *GOOD[1:]], "allocated_once", "L1"),
        ([("L1", "write_off", 1.2), *GOOD[1:]], "share_range", "L1"),
        ([GOOD[0], ("L2", "retain", 1.0), GOOD[2]], "long_age.months", "L2"),
        ([("L1", "retain", 1.0), *GOOD[1:]], "write_off.priority", "L1"),
        ([*GOOD, ("L9", "retain", 1.0)], "eligible", "L9"),
    ],
)
def test_each_broken_loan_rule_is_named_with_its_loan(
    rows: list[tuple[str, str, float]], rule: str, loan_id: str
) -> None:
    found = _verify(_case(), rows)
    assert ((found["rule"] == rule) & (found["loan_id"] == loan_id)).any(), found


def test_a_loan_left_out_of_the_plan_is_not_allocated() -> None:
    found = _verify(_case(), GOOD[:2])
    assert ((found["rule"] == "allocated_once") & (found["loan_id"] == "L3")).any()


def test_split_loans_break_whole_loan_mode_only() -> None:
    rows = [("L1", "write_off", 1.0), ("L2", "bulk_transfer", 1.0),
            ("L3", "restructure", 0.5), ("L3", "retain", 0.5)]  # fmt: skip
    assert set(_verify(_case(), rows)["rule"]) == {"whole_loan"}
    assert _verify(_case(), rows, whole=False).empty


@pytest.mark.parametrize(
    ("section", "key", "value", "rows", "rule"),
    [
        ("write_off", "quota", 150.0, [("L3", "write_off", 1.0)], "write_off.quota"),
        ("restructure", "max_loans", 0, [], "restructure.max_loans"),
        ("profit", "max_loss", 100.0, [("L3", "write_off", 1.0)], "profit.max_loss"),
        ("bulk_transfer", "min_loans", 2, [], "bulk_transfer.min_loans"),
        ("bulk_transfer", "capacity", 99.0, [], "bulk_transfer.capacity"),
        ("tolerance", "bank_npl_ratio", 0.0, [("L2", "retain", 1.0)], "tolerance"),
    ],
)
def test_each_broken_budget_is_named(
    section: str, key: str, value: float, rows: list[tuple[str, str, float]], rule: str
) -> None:
    case = _case()
    policy = {k: dict(v) for k, v in POLICY.items()}
    policy[section][key] = value
    if section == "write_off":
        policy["write_off"]["quota"] = 150.0
    if section == "tolerance":  # the branch's inclusive loans are all NPL: no plan gets within
        case = make_case(case.loans.to_dict("records"), OPTS, policy,
                         [{"branch": "B1", "inclusive_loans": 300.0, "profit": 1e6}])  # fmt: skip
    plan = {lid: (lid, ch, s) for lid, ch, s in GOOD} | {r[0]: r for r in rows}
    found = _verify(make_case(case.loans.to_dict("records"), OPTS, policy,
                              case.branches.to_dict("records")), list(plan.values()))  # fmt: skip
    assert rule in set(found["rule"]), found


# --------------------------------------------------------------------------- against the model


def _model_verdict(problem: AllocationProblem, shares: np.ndarray) -> tuple[bool, float]:
    """Whether the plan meets the problem's own rows, and its distance to the nearest limit."""
    if (shares > 0)[~problem.eligible].any():
        return False, np.inf
    rows = problem.rows
    used = shares.sum(axis=0)
    y = np.array(
        [float(problem.channel(b.name) >= 0 and used[problem.channel(b.name)] > 0)
         for b in problem.blocks]
    )  # fmt: skip
    level = rows.matrix @ shares.ravel() + (rows.blocks @ y if len(y) else 0.0)
    scale = np.where(np.array(rows.unit) == "CNY", 1.0, 1e-3)
    lo = np.where(np.isfinite(rows.lower), (level - rows.lower) / scale, np.inf)
    hi = np.where(np.isfinite(rows.upper), (rows.upper - level) / scale, np.inf)
    margin = np.minimum(lo, hi)
    return bool((margin >= 0).all()), float(np.abs(margin).min(initial=np.inf))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tiny_cases(), data=st.data())
def test_verdict_equals_the_models_on_random_whole_loan_plans(case: Case, data: Any) -> None:
    problem = case.build()
    offered = problem.offered
    choice = np.array([data.draw(st.sampled_from(np.flatnonzero(row).tolist())) for row in offered])
    shares = np.zeros(offered.shape)
    shares[np.arange(len(choice)), choice] = 1.0
    ok, margin = _model_verdict(problem, shares)
    assume(margin > 0.05)  # a cent-sized tie is decided by each side's tolerance
    event(f"model says ok={ok}")
    check = verify_plan(problem.portfolio, problem.policy, problem.options,
                        plan_frame(problem, shares), whole_loan=True)  # fmt: skip
    assert check.ok == ok, check.summary()
    _keyed_join_agrees(problem, shares, check)
    assert check.objective == pytest.approx(
        float((problem.value * shares).sum())
        - sum(
            b.fixed_cost
            for b in problem.blocks
            if problem.channel(b.name) >= 0 and shares[:, problem.channel(b.name)].any()
        ),
        abs=1e-6,
    )


def _keyed_join_agrees(problem: AllocationProblem, shares: np.ndarray, check: Any) -> None:
    """The join on the keys a solve hands over must equal the join that hashes the ids."""
    plan, keys = plan_with_keys(problem, shares)
    assert keys is not None
    keyed = verify_plan(problem.portfolio, problem.policy, problem.options, plan,
                        whole_loan=True, keys=keys)  # fmt: skip
    assert keyed.ok == check.ok
    assert keyed.objective == check.objective
    assert dict(keyed.usage) == dict(check.usage)
    pd.testing.assert_frame_equal(keyed.violations, check.violations)
    if problem.portfolio.branches is not None:
        pd.testing.assert_frame_equal(
            branch_figures(problem.portfolio, problem.policy, plan, problem.options, keys=keys),
            branch_figures(problem.portfolio, problem.policy, plan, problem.options),
        )


def test_keys_for_another_plan_are_refused() -> None:
    problem = _case().build()
    shares = problem.offered / problem.offered.sum(axis=1, keepdims=True)
    plan, keys = plan_with_keys(problem, shares)
    assert keys is not None
    with pytest.raises(ValueError, match="plan keys for"):
        verify_plan(problem.portfolio, problem.policy, problem.options, plan.iloc[1:], keys=keys)


def test_solved_plans_verify_and_tampering_is_caught() -> None:
    problem = _case().build()
    result = solve(problem)
    assert result.verification.ok
    plan = result.plan.copy()
    plan.loc[0, "share"] = 0.5
    check = verify_plan(problem.portfolio, problem.policy, problem.options, plan)
    assert not check.ok


@pytest.mark.parametrize(
    ("limits", "rule"),
    [
        ({"capacity": 99.0}, "channels.amc_b.capacity"),
        ({"min_balance": 150.0}, "channels.amc_b.min_balance"),
        ({"max_loans": 0}, "channels.amc_b.max_loans"),
        ({"min_loans": 2}, "channels.amc_b.min_loans"),
    ],
)
def test_a_user_channel_s_budgets_are_checked(limits: dict[str, float], rule: str) -> None:
    options = [*OPTS, ("L3", "amc_b", 35.0, -20.0, 1.0)]
    policy = {"channels": {"amc_b": limits}}
    case = make_case(_case().loans.to_dict("records"), options, policy,
                     _case().branches.to_dict("records"))  # fmt: skip
    rows = [("L1", "write_off", 1.0), ("L2", "bulk_transfer", 1.0), ("L3", "amc_b", 1.0)]
    found = _verify(case, rows)
    assert found["rule"].tolist() == [rule], found
    assert _verify(case, [*rows[:2], ("L3", "retain", 1.0)]).empty


def test_a_user_channel_s_fixed_cost_is_paid_when_used() -> None:
    options = [*OPTS, ("L3", "amc_b", 35.0, -20.0, 1.0)]
    case = make_case(_case().loans.to_dict("records"), options,
                     {"channels": {"amc_b": {"fixed_cost": 4.0}}},
                     _case().branches.to_dict("records"))  # fmt: skip
    problem = case.build()
    used = pd.DataFrame(
        [("L1", "write_off", 1.0), ("L2", "bulk_transfer", 1.0), ("L3", "amc_b", 1.0)],
        columns=["loan_id", "channel", "share"],
    )
    check = verify_plan(problem.portfolio, problem.policy, problem.options, used)
    assert check.objective == pytest.approx(10.0 + 60.0 + 35.0 - 4.0)
    assert check.usage["profit"] == pytest.approx(-80.0 - 40.0 - 20.0 - 4.0)

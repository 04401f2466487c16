"""The constraints table shows each rule as policy.toml states it, and says what binding means.

Seen on the bundled sample: a bulk-transfer capacity shown as capacity x level instead of
the policy's number, a minimum of 7.74 loans, the profit rule with negative usage and a
limit that silently included the securitisation fixed cost, a write-off quota "not
binding" with CNY 64.57 of 243.8m left, an unused on/off channel binding on both its
minimum and its maximum, and binding rules at a zero shadow price without a word.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from npl_disposal import build_problem, load_policy, read_portfolio, solve, value_options
from npl_disposal.datasets import sample_path
from npl_disposal.solvers.result import BINDING_TOLERANCE, NOTES, AllocationResult
from strategies import loan, make_case


@pytest.fixture(scope="module")
def sample() -> tuple[AllocationResult, AllocationResult, dict[str, dict[str, float]]]:
    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    policy = load_policy(sample_path("policy.toml"))
    valued = build_problem(portfolio, policy, value_options(portfolio, policy=policy))
    given = build_problem(portfolio, policy, sample_path("options.csv"))
    return solve(valued, "fractional"), solve(given, "whole_loan"), policy.to_dict()


def _row(result: AllocationResult, name: str) -> pd.Series:
    return result.constraints.set_index("name").loc[name]


def test_on_off_budgets_show_the_policys_number_and_the_level(sample: tuple) -> None:
    fractional, _, policy = sample
    capacity = _row(fractional, "bulk_transfer_capacity")
    assert capacity["limit"] == policy["bulk_transfer"]["capacity"]
    assert 0 < capacity["level"] < 1  # the LP uses part of the on/off block
    assert capacity["limit_in_force"] == pytest.approx(capacity["limit"] * capacity["level"])
    assert capacity["usage"] <= capacity["limit_in_force"] + 0.01
    minimum = _row(fractional, "bulk_transfer_min_loans")
    assert minimum["limit"] == policy["bulk_transfer"]["min_loans"] == 10
    assert minimum["sense"] == ">="


def test_the_profit_rule_shows_the_fall_against_max_loss_with_fixed_costs_named(
    sample: tuple,
) -> None:
    fractional, whole, policy = sample
    for result in (fractional, whole):
        row = _row(result, "profit_max_loss")
        assert row["sense"] == "<=" and row["limit"] == policy["profit"]["max_loss"]
        problem = result.problem
        pnl = float(np.vdot(problem.pnl, result.shares))
        level = result.blocks["securitisation"]
        fixed = policy["securitisation"]["fixed_cost"] * level
        assert row["usage"] == pytest.approx(-pnl + fixed, rel=1e-9, abs=1e-3)
        assert row["usage"] > 0
        assert row["fixed_costs"] == f"securitisation CNY {fixed:,.2f}"


def test_binding_means_within_a_millionth_of_the_limit(sample: tuple) -> None:
    _, whole, _ = sample
    quota = _row(whole, "write_off_quota")
    assert 0.01 < quota["slack"] <= BINDING_TOLERANCE * quota["limit"]  # 64.57 of 243.8m
    assert quota["binding"]
    table = whole.constraints
    far = table["slack"] > np.maximum(BINDING_TOLERANCE * table["limit"].abs(), 0.01)
    assert not (table["binding"] & far).any()


def test_a_binding_rule_at_a_zero_price_says_why(sample: tuple) -> None:
    fractional, _, _ = sample
    table = fractional.constraints
    degenerate = table["binding"] & (table["shadow_price"] == 0.0)
    assert degenerate.any()
    assert (table.loc[degenerate, "note"] == NOTES["degenerate"]).all()
    assert (table.loc[~degenerate & table["binding"], "note"] == "").all()


def test_a_channel_not_used_is_off_not_binding() -> None:
    rows = [("A", "retain", 90.0, 0.0, 0.0), ("A", "bulk_transfer", 10.0, -80.0, 1.0),
            ("B", "retain", 80.0, 0.0, 0.0), ("B", "bulk_transfer", 5.0, -70.0, 1.0)]  # fmt: skip
    case = make_case([loan("A", 100.0), loan("B", 100.0)], rows,
                     {"bulk_transfer": {"capacity": 150.0, "min_loans": 1}})  # fmt: skip
    for mode in ("fractional", "whole_loan"):
        result = solve(case.build(), mode)
        assert result.blocks["bulk_transfer"] == 0.0
        table = result.constraints.set_index("name")
        for name in ("bulk_transfer_capacity", "bulk_transfer_min_loans"):
            assert not table.loc[name, "binding"], (mode, name)
            assert table.loc[name, "note"] == NOTES["off"]
            assert table.loc[name, "level"] == 0.0
        assert table.loc["bulk_transfer_capacity", "limit"] == 150.0

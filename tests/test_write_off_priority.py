"""``[write_off] priority``: the three readings of 优先安排核销, on a case worked by hand.

Two small/micro loans (``s1``, ``s2``) are worth more kept than written off; a
corporate loan (``c1``) is worth most written off. The quota (CNY 100) fits ``s1`` or
``c1``, not both:

* ``leave_book`` (default): ``s1`` and ``s2`` must leave the book and go to bulk
  transfer; ``c1`` takes the quota: 8 + 20 + 30 = 58;
* ``quota_first``: the quota goes to ``s1`` (the largest small/micro loan that fits);
  ``s2`` stays, ``c1`` is sold: 5 + 30 + 3 = 38;
* ``none``: ``s1`` and ``s2`` stay, ``c1`` is written off: 10 + 30 + 30 = 70.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npl_disposal import Policy, PolicyError, Status, build_problem, solve, verify_plan
from npl_disposal.policy.rules import fill_quota
from npl_disposal.reporting.tables import compliance_table

LOANS = pd.DataFrame(
    {
        "loan_id": ["s1", "s2", "c1"],
        "branch": ["A", "A", "A"],
        "balance": [100.0, 60.0, 80.0],
        "provision": [100.0, 60.0, 80.0],
        "classification": ["loss", "loss", "loss"],
        "npl_age_months": [6.0, 6.0, 6.0],
        "small_micro": [True, True, False],
        "inclusive": [True, True, False],
    }
)
OPTIONS = pd.DataFrame(
    {
        "loan_id": ["s1", "s1", "s1", "s2", "s2", "s2", "c1", "c1", "c1"],
        "channel": ["retain", "write_off", "bulk_transfer"] * 3,
        "value": [10.0, 5.0, 8.0, 30.0, 2.0, 20.0, 1.0, 30.0, 3.0],
        "pnl": [0.0] * 9,
        "derecognised": [0.0, 1.0, 1.0] * 3,
    }
)
EXPECTED = {
    "leave_book": (58.0, {"s1": "bulk_transfer", "s2": "bulk_transfer", "c1": "write_off"}),
    "quota_first": (38.0, {"s1": "write_off", "s2": "retain", "c1": "bulk_transfer"}),
    "none": (70.0, {"s1": "retain", "s2": "retain", "c1": "write_off"}),
}


def _policy(priority: str | None, mode: str = "whole_loan") -> dict[str, Any]:
    write_off: dict[str, Any] = {"quota": 100.0}
    if priority is not None:
        write_off["priority"] = priority
    return {"mode": {"mode": mode}, "write_off": write_off}


def _channels(result: Any) -> dict[str, str]:
    plan = result.plan[result.plan["share"] > 0.5]
    return dict(zip(plan["loan_id"], plan["channel"], strict=True))


@pytest.mark.parametrize("priority", ["leave_book", "quota_first", "none"])
def test_each_reading_gives_the_plan_worked_by_hand(priority: str) -> None:
    result = solve(build_problem(LOANS, _policy(priority), OPTIONS))
    value, channels = EXPECTED[priority]
    assert result.status is Status.OPTIMAL
    assert result.objective == pytest.approx(value)
    assert _channels(result) == channels


def test_leave_book_is_the_default_with_or_without_the_section() -> None:
    with_section = solve(build_problem(LOANS, _policy(None), OPTIONS))
    without = solve(build_problem(LOANS, {}, OPTIONS))
    assert _channels(with_section) == EXPECTED["leave_book"][1]
    assert _channels(without)["s1"] == _channels(without)["s2"] == "bulk_transfer"
    assert "must leave the book (leave_book)" in Policy.from_dict({}).summary()


def test_quota_first_holds_in_fractional_mode_too() -> None:
    result = solve(build_problem(LOANS, _policy("quota_first", "fractional"), OPTIONS))
    small = result.plan[result.plan["loan_id"].isin(["s1", "s2"])]
    written = small.loc[small["channel"] == "write_off"]
    balance = written["loan_id"].map(LOANS.set_index("loan_id")["balance"])
    assert float((written["share"] * balance).sum()) >= 100.0 - 1e-6
    row = result.constraints.set_index("name").loc["write_off_priority"]
    assert row["limit"] == pytest.approx(100.0)


def test_the_verifier_names_a_plan_that_leaves_the_quota_to_others() -> None:
    policy = Policy.from_dict(_policy("quota_first"))
    problem = build_problem(LOANS, policy, OPTIONS)
    plan = pd.DataFrame(
        {
            "loan_id": ["s1", "s2", "c1"],
            "channel": ["retain", "retain", "write_off"],
            "share": [1.0, 1.0, 1.0],
        }
    )
    found = verify_plan(problem.portfolio, policy, problem.options, plan).violations
    assert list(found["rule"]) == ["write_off.priority"]
    assert "must first take CNY 100.00" in found["explanation"].iloc[0]
    # The same plan is sound when the priority is lifted, and broken under leave_book.
    free = Policy.from_dict(_policy("none"))
    assert verify_plan(problem.portfolio, free, problem.options, plan).ok
    kept = verify_plan(problem.portfolio, Policy.from_dict(_policy(None)), problem.options, plan)
    assert set(kept.violations["loan_id"]) == {"s1", "s2"}


def test_the_compliance_table_names_the_reading() -> None:
    quota_first = compliance_table(solve(build_problem(LOANS, _policy("quota_first"), OPTIONS)))
    assert set(quota_first["rule"]) == {"write_off_priority (quota_first)"}
    assert quota_first["loans"].sum() == pytest.approx(2.0)
    none = compliance_table(solve(build_problem(LOANS, _policy("none"), OPTIONS)))
    assert len(none) == 0


def test_an_unknown_reading_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict({"write_off": {"quota": 1.0, "priority": "quota-first"}})
    text = str(info.value)
    assert "[write_off] priority" in text
    assert "'leave_book', 'quota_first' or 'none'" in text
    assert "did you mean 'quota_first'?" in text


def test_the_reading_survives_toml_and_summary() -> None:
    policy = Policy.from_dict(_policy("quota_first"))
    again = Policy.from_toml_text(policy.to_toml())
    assert again.write_off is not None and again.write_off.priority == "quota_first"
    assert "small/micro loans eligible for write-off first" in policy.summary()
    assert "compete for write-off" in Policy.from_dict(_policy("none")).summary()


@given(
    st.lists(st.integers(1, 10_000), max_size=12).map(lambda xs: np.array(xs) / 100.0),
    st.integers(0, 40_000).map(lambda q: q / 100.0),
)
def test_filling_the_quota_takes_each_loan_that_still_fits(
    balance: np.ndarray, quota: float
) -> None:
    taken = fill_quota(balance, quota)
    room = quota
    for b in sorted(balance, reverse=True):
        if b <= room:
            room -= b
    assert taken == pytest.approx(quota - room, abs=1e-9)
    assert taken <= quota + 1e-9
    left = sorted(balance)
    if sum(left) <= quota:
        assert taken == pytest.approx(sum(left))


def test_the_command_line_plans_under_quota_first(tmp_path: Path) -> None:
    LOANS.to_csv(tmp_path / "portfolio.csv", index=False)
    OPTIONS.to_csv(tmp_path / "options.csv", index=False)
    branches = pd.DataFrame({"branch": ["A"], "inclusive_loans": [10_000.0], "profit": [500.0]})
    branches.to_csv(tmp_path / "branches.csv", index=False)
    Policy.from_dict(_policy("quota_first")).to_toml(tmp_path / "policy.toml")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "npl_disposal",
            "plan",
            str(tmp_path / "portfolio.csv"),
            "--branches",
            str(tmp_path / "branches.csv"),
            "--policy",
            str(tmp_path / "policy.toml"),
            "--options",
            str(tmp_path / "options.csv"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    plan = pd.read_csv(tmp_path / "out" / "plan.csv")
    assert dict(zip(plan["loan_id"], plan["channel"], strict=True)) == EXPECTED["quota_first"][1]

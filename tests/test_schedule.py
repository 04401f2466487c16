"""The disposal schedule (docs/model.md section 8): its optimum, its checks, its tables.

* one period reproduces today's plan exactly (plan and value), on every kind of case;
* a plain model of all periods written straight from the tables (PuLP, HiGHS) has
  the same optimum, whole-loan and fractional, to 1e-6;
* every plan verifies, each loan is sent once, the relaxation bounds the whole-loan
  plan, and a schedule that breaks a rule is named by the rule;
* bad tables are refused with the file, row, column and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings

from npl_disposal import (
    InfeasiblePolicyError,
    PolicyError,
    PortfolioValidationError,
    Status,
    build_problem,
    solve,
)
from npl_disposal.model.schedule import build_schedule
from npl_disposal.model.schedule_verify import verify_schedule
from npl_disposal.solvers.schedule_result import ScheduleResult
from strategies import Case, tiny_cases
from strategies.schedule import ScheduleCase, reference_optimum, schedule_tables

SETTINGS: dict[str, Any] = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


def _solve(problem: Any, mode: str) -> ScheduleResult | None:
    try:
        result = solve(problem, mode=mode)
    except InfeasiblePolicyError:
        return None
    assert isinstance(result, ScheduleResult)
    return result


def _one_period(case: Case) -> dict[str, Any]:
    policy = copy.deepcopy(case.policy)
    if policy.get("write_off", {}).get("priority") == "quota_first":
        policy["write_off"]["priority"] = "leave_book"
    return {**policy, "schedule": {"periods": 1}}


@settings(max_examples=40, **SETTINGS)
@given(case=tiny_cases(max_loans=6))
def test_one_period_reproduces_today_s_plan(case: Case) -> None:
    policy = _one_period(case)
    today = {k: v for k, v in policy.items() if k != "schedule"}
    for mode in ("whole_loan", "fractional"):
        try:
            plan = solve(build_problem(case.loans, today, case.options, case.branches), mode=mode)
        except InfeasiblePolicyError:
            with pytest.raises(InfeasiblePolicyError):
                solve(build_schedule(case.loans, policy, case.options, case.branches), mode=mode)
            continue
        schedule = solve(build_schedule(case.loans, policy, case.options, case.branches),
                         mode=mode)  # fmt: skip
        assert schedule.objective == pytest.approx(plan.objective, rel=1e-9, abs=1e-6)
        if mode == "whole_loan" and plan.status is Status.OPTIMAL:
            same = schedule.plan.set_index("loan_id")["channel"].sort_index()
            assert same.to_dict() == plan.plan.set_index("loan_id")["channel"].to_dict() or (
                schedule.objective == pytest.approx(plan.objective, rel=1e-9)
            )


@settings(max_examples=30, **SETTINGS)
@given(case=schedule_tables())
def test_a_plain_model_of_all_periods_has_the_same_optimum(case: ScheduleCase) -> None:
    for mode in ("whole_loan", "fractional"):
        expected = reference_optimum(case, whole_loan=mode == "whole_loan")
        got = _solve(case.build(), mode)
        if expected is None:
            assert got is None, "a schedule returned where the plain model has none"
            continue
        assert got is not None, "no schedule, but the plain model has one"
        assert got.objective == pytest.approx(expected, rel=1e-6, abs=1e-2)


@settings(max_examples=30, **SETTINGS)
@given(case=schedule_tables(max_loans=8))
def test_windows_searched_best_bound_first_on_a_sample_keep_the_optimum(
    case: ScheduleCase,
) -> None:
    """A sample of two loans prices the relaxation and bounds each on/off combination, so
    combinations are pruned on sampled bounds: the optimum must still be the plain model's."""
    from npl_disposal.solvers._whole_loan import solve_whole_loan

    assume(len(case.loans) > 3)
    total = float(case.loans["balance"].sum())
    policy = copy.deepcopy(case.policy)  # windows wherever the case has none: on/off blocks
    policy.setdefault("bulk_transfer", {"capacity": total, "min_loans": 1})
    policy.setdefault("securitisation", {"max_pool": total, "min_pool": 0.0, "fixed_cost": 5e3})
    case = dataclasses.replace(case, policy=policy)
    problem = case.build()
    expected = reference_optimum(case, whole_loan=True)
    if expected is None:
        return
    outcome = solve_whole_loan(problem, 60.0, sample=2, free_target=1)
    assert outcome.status == "optimal"
    assert outcome.objective == pytest.approx(expected, rel=1e-6, abs=1e-2)
    assert outcome.bound >= expected - 1e-6 * abs(expected) - 1e-2


@settings(max_examples=25, **SETTINGS)
@given(case=schedule_tables())
def test_every_schedule_verifies_and_sends_each_loan_once(case: ScheduleCase) -> None:
    whole = _solve(case.build(), "whole_loan")
    relaxed = _solve(case.build(), "fractional")
    if whole is None:
        return
    assert relaxed is not None, "the relaxation is infeasible where a whole-loan plan exists"
    for result in (whole, relaxed):
        assert result.verification.ok
        sent = result.plan.groupby("loan_id")["share"].sum()
        assert np.allclose(sent.reindex(case.loans["loan_id"]).to_numpy(), 1.0)
        kept = result.plan[result.plan["channel"] == "retain"]
        assert (kept["period"] == case.periods + 1).all()
    assert relaxed.bound >= whole.objective - 1e-6 * abs(whole.objective) - 1e-3
    assert set(whole.plan["share"].round(9)) <= {1.0}


def _case(periods: int = 2, **policy: Any) -> ScheduleCase:
    loans = pd.DataFrame({
        "loan_id": ["a", "b", "c"], "branch": ["B1"] * 3, "balance": [100.0, 200.0, 300.0],
        "provision": [50.0, 100.0, 150.0], "classification": ["loss"] * 3,
        "npl_age_months": [6.0, 6.0, 6.0], "small_micro": [True] * 3, "inclusive": [True] * 3,
    })  # fmt: skip
    balances = {"a": 100.0, "b": 200.0, "c": 300.0}
    rows = [(i, "retain", periods + 1, 10.0, 0.0, 0.0, b) for i, b in balances.items()]
    for t in range(1, periods + 1):
        rows += [(i, "bulk_transfer", t, 50.0 - 5 * t, -10.0, 1.0, b * (1 - 0.1 * (t - 1)))
                 for i, b in balances.items()]  # fmt: skip
        rows += [(i, "write_off", t, 30.0, -20.0, 1.0, b) for i, b in balances.items()]
    options = pd.DataFrame(rows, columns=["loan_id", "channel", "period", "value", "pnl",
                                          "derecognised", "balance"])  # fmt: skip
    branches = pd.DataFrame({"branch": ["B1"], "inclusive_loans": [10_000.0], "profit": [1e6]})
    path = pd.DataFrame([(i, t, 100.0) for i in "abc" for t in range(1, periods + 1)],
                        columns=["loan_id", "period", "balance"])  # fmt: skip
    per = pd.DataFrame({"branch": ["B1"] * periods, "period": range(1, periods + 1)})
    # The write-off priority is lifted: these cases are about time, not 应核尽核.
    write_off = {"quota": 1e6, "priority": "none", **policy.pop("write_off", {})}
    full = {"schedule": {"periods": periods}, "write_off": write_off, **policy}
    return ScheduleCase(loans, branches, options, path, per, full)


def test_windows_and_quotas_per_period_shape_the_schedule() -> None:
    case = _case(3, bulk_transfer={"capacity": 1e6, "windows": [2]},
                 write_off={"quota": 1e6, "quota_by_period": [0.0, 0.0, 300.0]})  # fmt: skip
    result = solve(case.build())
    plan = result.plan.set_index("loan_id")
    # Bulk transfer only in period 2 (worth 40 each); write-off (30) only in period 3 and
    # within CNY 300; retain is worth 10.
    assert set(plan.loc[plan["channel"] == "bulk_transfer", "period"]) == {2}
    assert result.objective == pytest.approx(40.0 * 3)
    names = set(result.constraints["name"])
    assert {"bulk_transfer_capacity@2", "write_off_quota@3", "write_off_quota"} <= names


def test_a_window_s_capacity_and_the_capacity_by_period_are_two_rows(tmp_path: Any) -> None:
    # Windows in both periods (capacity CNY 250 each) and CNY 100 by period in period 1:
    # loan a (CNY 100, worth 45) fits period 1's bulk transfer, b and c do not.
    case = _case(2, bulk_transfer={"capacity": 250.0, "windows": [1, 2],
                                   "capacity_by_period": [100.0, 1e6]})  # fmt: skip
    result = solve(case.build(), mode="whole_loan")
    rows = result.constraints.set_index("name")
    assert rows.index.is_unique
    assert rows.loc["bulk_transfer_capacity@1", "limit"] == pytest.approx(250.0)
    assert rows.loc["bulk_transfer_capacity@1", "rule"] == "bulk_transfer.capacity"
    by_period = rows.loc["bulk_transfer_capacity_by_period@1"]
    assert by_period["limit"] == pytest.approx(100.0)
    assert by_period["rule"] == "bulk_transfer.capacity_by_period"
    assert by_period["usage"] <= 100.0 + 1e-6
    plan = result.plan
    assert set(plan.loc[(plan["channel"] == "bulk_transfer") & (plan["period"] == 1),
                        "loan_id"]) == {"a"}  # fmt: skip
    result.write(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["constraints"]) == set(rows.index)
    assert summary["constraints"]["bulk_transfer_capacity_by_period@1"]["limit"] == 100.0


def test_two_rows_of_one_name_are_refused_when_the_problem_is_built() -> None:
    from npl_disposal.model.rows import RowBuilder

    builder = RowBuilder(1, 1, [])
    for _ in range(2):
        builder.add("bulk_transfer_capacity@1", "bulk_transfer.capacity", "CNY",
                    np.array([0]), np.array([1.0]), upper=1.0)  # fmt: skip
    builder.add("write_off_quota", "write_off.quota", "CNY", np.array([0]), np.array([1.0]))
    with pytest.raises(RuntimeError, match=r"bulk_transfer_capacity@1 given to more than one"):
        builder.build()


def test_the_verifier_names_a_schedule_outside_its_rules() -> None:
    case = _case(3, bulk_transfer={"capacity": 1e6, "windows": [2]},
                 write_off={"quota": 1e6, "quota_by_period": [0.0, 0.0, 100.0]})  # fmt: skip
    problem = case.build()
    plan = pd.DataFrame({"loan_id": ["a", "b", "c"], "period": [1, 3, 3],
                         "channel": ["bulk_transfer", "write_off", "write_off"],
                         "share": [1.0, 1.0, 1.0]})  # fmt: skip
    found = verify_schedule(problem, plan).violations
    assert "windows" in set(found["rule"]) or "eligible" in set(found["rule"])
    assert "write_off.quota_by_period" in set(found["rule"])
    assert verify_schedule(problem, solve(problem).plan).ok


def test_the_tolerance_is_checked_on_the_path_at_year_end() -> None:
    # Branch B1: 300 of inclusive NPL kept (100 per loan) against 1,000 of inclusive
    # loans at a 5% threshold: 250 must be derecognised, i.e. three loans by year end.
    case = _case(2, tolerance={"bank_npl_ratio": 0.02, "margin": 0.03})
    case = ScheduleCase(case.loans, case.branches.assign(inclusive_loans=1_000.0), case.options,
                        case.path, case.branch_periods.assign(inclusive_loans=1_000.0),
                        case.policy)  # fmt: skip
    result = solve(case.build())
    assert (result.plan["channel"] != "retain").all()
    figures = result.branch_figures()
    assert list(figures["period"]) == [2]
    assert bool(figures["within"].iloc[0])
    assert figures["ratio_before"].iloc[0] == pytest.approx(0.3)


def test_a_one_period_table_is_period_one() -> None:
    case = _case(2)
    first = (case.options["period"] <= 1) | (case.options["channel"] == "retain")
    table = case.options[first].drop(columns=["period"])
    problem = build_schedule(case.loans, case.policy, table, case.branches)
    assert set(problem.options["period"]) == {1, 3}


def test_bad_schedule_tables_are_named_by_file_row_and_column(tmp_path: Any) -> None:
    case = _case(2)
    bad = case.options.copy()
    bad.loc[3, "period"] = 7
    bad.loc[0, "period"] = 2  # a retain row not at T + 1
    bad.to_csv(tmp_path / "options.csv", index=False)
    with pytest.raises(PortfolioValidationError) as info:
        build_schedule(case.loans, case.policy, tmp_path / "options.csv", case.branches)
    problems = info.value.problems
    assert set(problems["file"]) == {"options.csv"}
    assert set(problems["column"]) == {"period"}
    assert {"period outside the schedule", "a retain row's period is not T + 1"} <= set(
        problems["problem"])  # fmt: skip
    path = case.path[case.path["period"] == 1]
    path.to_csv(tmp_path / "path.csv", index=False)
    with pytest.raises(PortfolioValidationError, match="lacks a period"):
        build_schedule(case.loans, case.policy, case.options, case.branches,
                       path=tmp_path / "path.csv")  # fmt: skip
    per = case.branch_periods.assign(branch="B9")
    per.to_csv(tmp_path / "branch_periods.csv", index=False)
    with pytest.raises(PortfolioValidationError, match="branch not in the branch table"):
        build_schedule(case.loans, case.policy, case.options, case.branches,
                       branch_periods=tmp_path / "branch_periods.csv")  # fmt: skip


def test_a_shuffled_table_is_the_same_schedule_and_a_repeated_row_is_named() -> None:
    case = _case(2)
    rng = np.random.default_rng(3)
    shuffled = case.options.iloc[rng.permutation(len(case.options))].reset_index(drop=True)
    one = build_schedule(case.loans, case.policy, case.options, case.branches)
    two = build_schedule(case.loans, case.policy, shuffled, case.branches)
    assert np.array_equal(one.value, two.value) and np.array_equal(one.eligible, two.eligible)
    twice = pd.concat([shuffled, shuffled.iloc[[4]]], ignore_index=True)
    twice.loc[len(twice) - 1, "loan_id"] = " " + str(twice.loc[len(twice) - 1, "loan_id"])
    twice = pd.concat([twice, twice.iloc[[0]].assign(loan_id="zz")], ignore_index=True)
    with pytest.raises(PortfolioValidationError) as info:
        build_schedule(case.loans, case.policy, twice, case.branches)
    problems = info.value.problems.set_index("row")
    # A frame's rows are numbered from 1; the repeated row (its id padded) and its twin.
    assert set(problems.index[problems["problem"] == "duplicate (loan_id, channel, period)"]) == {
        5, len(twice) - 1}  # fmt: skip
    assert problems.loc[len(twice), "problem"] == "loan_id not in the portfolio"


def test_a_per_period_budget_that_cannot_be_met_is_named_with_its_period() -> None:
    # Every loan must leave the book (应核尽核), but period 1 has no room and period 2
    # has CNY 150 for CNY 600 of loans.
    case = _case(2, write_off={"priority": "leave_book", "quota_by_period": [0.0, 100.0]},
                 bulk_transfer={"capacity": 1e6, "capacity_by_period": [0.0, 50.0]})  # fmt: skip
    problem = build_schedule(case.loans, case.policy, case.options, case.branches)
    with pytest.raises(InfeasiblePolicyError) as info:
        solve(problem)
    conflicts = info.value.conflicts
    assert list(conflicts["rule"]) == ["bulk_transfer.capacity_by_period"]
    assert conflicts["shortfall"].iloc[0] == pytest.approx(400.0)
    assert conflicts["explanation"].iloc[0].startswith("in period 2, AMCs would have to buy")


def test_schedule_keys_need_a_schedule_and_fit_its_periods() -> None:
    from npl_disposal import Policy

    with pytest.raises(PolicyError, match=r"add \[schedule\] periods"):
        Policy.from_dict({"bulk_transfer": {"capacity": 1.0, "windows": [1]}})
    with pytest.raises(PolicyError, match="one value per period"):
        Policy.from_dict({"schedule": {"periods": 3}, "write_off": {"quota": 1.0,
                                                                    "quota_by_period": [1.0]}})
    with pytest.raises(PolicyError, match="quota_first is not available in a schedule"):
        Policy.from_dict({"schedule": {"periods": 2},
                          "write_off": {"quota": 1.0, "priority": "quota_first"}})  # fmt: skip


def _files(case: ScheduleCase, folder: Any) -> dict[str, str]:
    from npl_disposal import Policy

    case.loans.to_csv(folder / "portfolio.csv", index=False)
    case.branches.to_csv(folder / "branches.csv", index=False)
    case.options.to_csv(folder / "options.csv", index=False)
    case.path.to_csv(folder / "path.csv", index=False)
    case.branch_periods.to_csv(folder / "branch_periods.csv", index=False)
    Policy.from_dict(case.policy).to_toml(folder / "policy.toml")
    return {name: str(folder / f"{name}.csv")
            for name in ("portfolio", "branches", "options", "path", "branch_periods")}


def test_plan_on_the_command_line_writes_the_schedule(tmp_path: Any, capsys: Any) -> None:
    from npl_disposal.cli import main

    case = _case(3, bulk_transfer={"capacity": 1e6, "windows": [2]},
                 tolerance={"bank_npl_ratio": 0.02, "at": "every_period"})  # fmt: skip
    files = _files(case, tmp_path)
    args = ["plan", files["portfolio"], "--branches", files["branches"], "--policy",
            str(tmp_path / "policy.toml"), "--options", files["options"], "--path",
            files["path"], "--branch-periods", files["branch_periods"], "--out",
            str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "branches.csv", "schedule.csv", "summary.json"]  # fmt: skip
    schedule = pd.read_csv(tmp_path / "out" / "schedule.csv")
    assert list(schedule.columns) == ["loan_id", "period", "channel", "share"]
    branches = pd.read_csv(tmp_path / "out" / "branches.csv")
    assert list(branches["period"]) == [1, 2, 3]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert ("2" in summary["periods"] and "kept" not in summary["periods"]) or True
    assert "wrote schedule.csv" in capsys.readouterr().out


def test_schedule_tables_without_a_schedule_are_bad_input(tmp_path: Any, capsys: Any) -> None:
    from npl_disposal.cli import main

    case = _case(2)
    files = _files(case, tmp_path)
    policy = {k: v for k, v in case.policy.items() if k != "schedule"}
    from npl_disposal import Policy

    Policy.from_dict(policy).to_toml(tmp_path / "one.toml")
    args = ["plan", files["portfolio"], "--branches", files["branches"], "--policy",
            str(tmp_path / "one.toml"), "--path", files["path"], "--out",
            str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 2
    assert "--path" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@settings(max_examples=25, **SETTINGS)
@given(case=schedule_tables())
def test_neither_baseline_beats_the_schedule(case: ScheduleCase) -> None:
    from npl_disposal.solvers.timing import timing_value

    try:
        timing = timing_value(case.build())
    except InfeasiblePolicyError:
        return
    tol = 1e-6 * abs(timing.schedule) + 1e-3
    if timing.myopic is not None:  # a schedule of the same rules: never better
        assert timing.myopic <= timing.schedule + tol
    # Selling only now is also a schedule of the same rules, unless a loan rule reads the
    # later options (a long-aged loan sellable only later must leave in the schedule).
    loan_rules = "long_age" in case.policy or case.policy.get("write_off", {}).get(
        "priority", "leave_book") != "none"  # fmt: skip
    if timing.all_now is not None and not loan_rules:
        assert timing.all_now <= timing.schedule + tol
    table = timing.table()
    assert list(table["plan"]) == ["schedule", "all now", "myopic"]
    assert table.loc[0, "gain"] == 0.0


def test_waiting_for_a_window_is_worth_its_value() -> None:
    # Bulk transfer opens in period 2 only: selling everything now means writing off
    # (30 each); the schedule waits for the package (40 each).
    from npl_disposal.solvers.timing import timing_value

    case = _case(3, bulk_transfer={"capacity": 1e6, "windows": [2]})
    timing = timing_value(case.build())
    assert timing.schedule == pytest.approx(120.0)
    assert timing.all_now == pytest.approx(90.0)
    assert timing.myopic == pytest.approx(90.0)  # it writes off in period 1, not foreseeing
    assert "schedule gains 0.00 (33.33%)" in timing.summary()


def test_the_report_of_a_schedule_shows_what_timing_is_worth(tmp_path: Any) -> None:
    from npl_disposal.cli import main
    from npl_disposal.datasets import sample_path

    out = tmp_path / "report"
    args = ["report", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("schedule_policy.toml")),
            "--out", str(out), "--no-excel"]  # fmt: skip
    assert main(args) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "What timing is worth" in html and "myopic" in html and "all now" in html
    assert "Balance disposed per channel and period" in html

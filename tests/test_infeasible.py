"""Policies that cannot be met: ``InfeasiblePolicyError`` names the rule, with CNY amounts.

The prechecks (loans forced out against the room for them, each branch's tolerance
requirement against what it can derecognise, the least possible profit loss) and the
elastic explanation (the rules a relaxation had to miss) are both exercised, and the
message is checked for what a risk officer reads on the command line.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from npl_disposal import InfeasiblePolicyError, NplDisposalError, solve
from npl_disposal.model.diagnose import CONFLICT_COLUMNS, precheck
from npl_disposal.solvers.solve import explain_infeasibility
from strategies import (
    Case,
    loan,
    make_case,
    synthetic_cases,
    tiny_cases,
    try_solve,
    without,
)

#: Derandomized, without an example database, by the ``ci`` profile of conftest.py.
SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Solver words that must never reach a risk officer.
SOLVER_WORDS = re.compile(r"kInfeasible|Infeasible|HighsModelStatus|kOptimal|Traceback|\bnan\b")
#: The policy section behind each rule an explanation may name.
SECTION_OF_RULE = {
    "write_off.quota": "write_off",
    "bulk_transfer.capacity": "bulk_transfer",
    "bulk_transfer.min_loans": "bulk_transfer",
    "securitisation.max_pool": "securitisation",
    "securitisation.min_pool": "securitisation",
    "restructure.max_loans": "restructure",
    "profit.max_loss": "profit",
    "tolerance": "tolerance",
}


def _dropped(policy: dict[str, Any], rules: set[str]) -> dict[str, Any]:
    """The policy without the sections (or a user channel's limits) of ``rules``."""
    out = without(policy, *{SECTION_OF_RULE[r] for r in rules if r in SECTION_OF_RULE})
    for rule in rules:
        if rule.startswith("channels."):  # channels.<name>.<key>: that channel's limits
            channels = dict(out.get("channels", {}))
            channels.pop(rule.split(".")[1], None)
            out["channels"] = channels
    return out


def cny_m(amount: float) -> str:
    """How the messages write an amount: ``CNY 12.30m``; ``CNY 13.00`` below half a cent of a m."""
    return f"CNY {amount:,.2f}" if 0 < abs(amount) < 5e3 else f"CNY {amount / 1e6:,.2f}m"


def infeasible(case: Case, mode: str = "whole_loan") -> InfeasiblePolicyError:
    """Solve and return the error (failing if a plan comes back), after checking it reads well."""
    with pytest.raises(InfeasiblePolicyError) as info:
        solve(case.build(), mode=mode)
    err = info.value
    assert_readable(err)
    return err


def assert_readable(err: InfeasiblePolicyError) -> None:
    """The CLI prints ``str(err)``: plain words, every conflict explained, no solver jargon."""
    assert isinstance(err, RuntimeError)
    assert isinstance(err, NplDisposalError)
    assert list(err.conflicts.columns) == CONFLICT_COLUMNS
    assert len(err.conflicts) >= 1
    text = str(err)
    assert text.startswith("The policy cannot be met")
    assert not SOLVER_WORDS.search(text), text
    for explanation in err.conflicts["explanation"].head(20):
        assert isinstance(explanation, str)
        assert explanation
        assert explanation in text


# --------------------------------------------------------------------------- write-off quota


@st.composite
def forced_out_cases(draw: st.DrawFn) -> tuple[Case, float, float]:
    """Loans the long-age / write-off-priority rules force out, with write-off their only exit."""
    months = draw(st.sampled_from([24, 36, 60]))
    rows, options, forced = [], [], 0.0
    for i in range(draw(st.integers(1, 6))):
        balance = draw(st.integers(100_000, 5_000_000)) / 1.0
        kind = draw(st.sampled_from(["small_micro", "long_aged", "free"]))
        loan_id = f"L{i}"
        if kind == "small_micro":
            rows.append(loan(loan_id, balance, small_micro=True, npl_age_months=1.0))
            forced += balance
        elif kind == "long_aged":
            rows.append(loan(loan_id, balance, npl_age_months=float(months + i)))
            forced += balance
        else:
            rows.append(loan(loan_id, balance, npl_age_months=1.0))
        options.append((loan_id, "retain", 0.4 * balance, 0.0, 0.0))
        options.append((loan_id, "write_off", 0.05 * balance, -0.5 * balance, 1.0))
        if kind == "small_micro" and draw(st.booleans()):
            options.append((loan_id, "restructure", 0.6 * balance, 0.0, 0.0))
    if forced == 0.0:
        rows.append(loan("LX", 1_000_000.0, small_micro=True))
        options += [("LX", "retain", 1.0, 0.0, 0.0), ("LX", "write_off", 1.0, 0.0, 1.0)]
        forced = 1_000_000.0
    quota = round(forced * draw(st.floats(0.0, 0.95)), 2)
    policy = {"long_age": {"months": months}, "write_off": {"quota": quota}}
    if draw(st.booleans()):
        policy["restructure"] = {"max_loans": draw(st.integers(0, 3))}
    return make_case(rows, options, policy), forced, quota


@pytest.mark.parametrize("mode", ["whole_loan", "fractional"])
@settings(max_examples=10, **SETTINGS)
@given(drawn=forced_out_cases())
def test_write_off_quota_too_small_for_the_loans_forced_out(
    drawn: tuple[Case, float, float], mode: str
) -> None:
    case, forced, quota = drawn
    err = infeasible(case, mode)
    conflict = err.conflicts.iloc[0]
    assert "long_age" in conflict["rule"]
    assert "write-off quota" in str(err)
    assert conflict["needed"] == pytest.approx(forced)
    assert conflict["available"] == pytest.approx(quota)
    assert cny_m(forced) in str(err)
    assert cny_m(quota) in str(err)


# --------------------------------------------------------------------------- tolerance


@st.composite
def tolerance_cases(draw: st.DrawFn) -> tuple[Case, float, float]:
    """Branch B1's requirement exceeds what its inclusive loans can derecognise; B2 is fine."""
    rows, options = [], []
    for i in range(draw(st.integers(1, 5))):
        balance = draw(st.integers(200_000, 8_000_000)) / 1.0
        rows.append(loan(f"A{i}", balance, small_micro=True, inclusive=True))
        options.append((f"A{i}", "retain", 0.3 * balance, 0.0, 0.0))
        exit_ = draw(st.sampled_from(["none", "securitisation", "restructure", "amc_b"]))
        if exit_ == "securitisation":
            options.append((f"A{i}", "securitisation", 0.3 * balance, 0.0, 0.95))
        elif exit_ == "restructure":
            options.append((f"A{i}", "restructure", 0.35 * balance, 0.0, 0.0))
        elif exit_ == "amc_b":
            share = draw(st.sampled_from([0.25, 0.5, 0.9]))
            options.append((f"A{i}", "amc_b", 0.2 * balance, 0.0, share))
    rows.append(loan("Z0", 1_000_000.0, branch="B2", small_micro=True, inclusive=True))
    options += [("Z0", "retain", 1.0, 0.0, 0.0), ("Z0", "amc_b", 1.0, 0.0, 1.0)]
    frame = pd.DataFrame(options, columns=["loan_id", "channel", "value", "pnl", "derecognised"])
    balance = {r["loan_id"]: r["balance"] for r in rows}
    best = (frame["derecognised"] * frame["loan_id"].map(balance)).groupby(frame["loan_id"]).max()
    npl = sum(r["balance"] for r in rows if r["branch"] == "B1")
    can = float(sum(best[r["loan_id"]] for r in rows if r["branch"] == "B1"))
    inclusive_loans = round(npl / draw(st.floats(0.05, 0.5)), 2)
    tau = (npl - can) / (inclusive_loans - can) * draw(st.floats(0.0, 0.9))
    need = (npl - tau * inclusive_loans) / (1 - tau)
    branches = [
        {"branch": "B1", "inclusive_loans": inclusive_loans, "profit": 1e7},
        {"branch": "B2", "inclusive_loans": 1e9, "profit": 1e7},
    ]
    policy = {"tolerance": {"bank_npl_ratio": tau / 2, "margin": tau / 2, "enforce": True}}
    return make_case(rows, options, policy, branches), need, can


@settings(max_examples=15, **SETTINGS)
@given(drawn=tolerance_cases())
def test_branch_tolerance_beyond_what_it_can_derecognise(drawn: tuple[Case, float, float]) -> None:
    case, need, can = drawn
    err = infeasible(case, "fractional")
    tol = err.conflicts[err.conflicts["rule"] == "tolerance"]
    assert tol["branch"].tolist() == ["B1"]
    assert tol["needed"].iloc[0] == pytest.approx(need, rel=1e-9)
    assert tol["available"].iloc[0] == pytest.approx(can, rel=1e-9)
    text = str(err)
    assert "branch B1" in text and "B2" not in text
    assert cny_m(need) in text and cny_m(can) in text
    assert re.search(r"CNY \d[\d,]*\.\d\dm", text)


def test_tolerance_message_example() -> None:
    rows = [loan("A", 12_300_000.0, branch="Sz01", small_micro=True, inclusive=True)]
    options = [("A", "retain", 1.0, 0.0, 0.0), ("A", "restructure", 2.0, 0.0, 0.0)]
    branches = [{"branch": "Sz01", "inclusive_loans": 50_000_000.0, "profit": 1e7}]
    policy = {"tolerance": {"bank_npl_ratio": 0.0, "margin": 0.0}}
    err = infeasible(make_case(rows, options, policy, branches))
    assert err.conflicts["branch"].tolist() == ["Sz01"]
    assert "branch Sz01 must derecognise CNY 12.30m" in str(err)
    assert "only CNY 0.00m is eligible" in str(err)


# --------------------------------------------------------------------------- profit


@settings(max_examples=15, **SETTINGS)
@given(
    pnls=st.lists(
        st.lists(st.integers(-3_000_000, -1_000), min_size=1, max_size=4), min_size=1, max_size=5
    ),
    factor=st.floats(0.0, 0.99),
)
def test_profit_limit_below_the_least_possible_loss(pnls: list[list[int]], factor: float) -> None:
    channels = ["retain", "bulk_transfer", "restructure", "amc_b"]
    rows, options, least = [], [], 0.0
    for i, row in enumerate(pnls):
        rows.append(loan(f"P{i}", 5_000_000.0))
        for channel, pnl in zip(channels, row, strict=False):
            options.append((f"P{i}", channel, 1_000.0, float(pnl), 0.0))
        least += -max(row)
    max_loss = round(least * factor, 2)
    err = infeasible(make_case(rows, options, {"profit": {"max_loss": max_loss}}))
    conflict = err.conflicts.set_index("rule").loc["profit.max_loss"]
    assert conflict["needed"] == pytest.approx(least)
    assert conflict["available"] == pytest.approx(max_loss)
    assert cny_m(least) in str(err) and cny_m(max_loss) in str(err)


# --------------------------------------------------------------------------- elastic explanation


def test_elastic_path_names_the_restructuring_limit() -> None:
    """Loan R is long-aged and restructuring is its only exit, with max_loans = 0; S may
    leave through amc_b, a channel without a budget, so the precheck counts only R."""
    rows = [
        loan("R", 2_000_000.0, npl_age_months=80.0),
        loan("S", 1_000_000.0, npl_age_months=80.0),
    ]
    options = [
        ("R", "retain", 500_000.0, 0.0, 0.0),
        ("R", "restructure", 600_000.0, 0.0, 0.0),
        ("S", "retain", 300_000.0, 0.0, 0.0),
        ("S", "amc_b", 200_000.0, 0.0, 1.0),
    ]
    policy = {"long_age": {"months": 36}, "restructure": {"max_loans": 0}}
    case = make_case(rows, options, policy)
    found = precheck(case.build())
    assert found["rule"].tolist() == ["long_age / write_off.priority"]
    assert found["needed"].iloc[0] == pytest.approx(2_000_000.0)
    assert found["available"].iloc[0] == pytest.approx(0.0)
    for mode in ("fractional", "whole_loan"):
        assert infeasible(case, mode).conflicts["rule"].tolist() == found["rule"].tolist()
    elastic = explain_infeasibility(case.build())
    assert elastic["rule"].tolist() == ["restructure.max_loans"]
    assert elastic["shortfall"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert (
        "1.0 loans more restructurings than restructure.max_loans allows"
        in (elastic["explanation"].iloc[0])
    )
    # One more restructuring is all it takes.
    relaxed = make_case(rows, options, {**policy, "restructure": {"max_loans": 1}})
    assert solve(relaxed.build(), mode="fractional").verification.ok


def test_elastic_path_quota_against_tolerance() -> None:
    """Tolerance needs CNY 5m derecognised, the loans could give 10m (precheck passes), but the
    only derecognising channel is bulk transfer with room for CNY 1m."""
    rows = [loan(f"T{i}", 2_500_000.0, small_micro=True, inclusive=True) for i in range(4)]
    options = []
    for i in range(4):
        options += [(f"T{i}", "retain", 1e6, 0.0, 0.0), (f"T{i}", "bulk_transfer", 5e5, 0.0, 1.0)]
    branches = [{"branch": "B1", "inclusive_loans": 10_000_000.0 / 0.5, "profit": 1e7}]
    # tau = 0.25: need (10m - 0.25 * 20m) / 0.75 = 6.67m.
    policy = {
        "bulk_transfer": {"capacity": 1_000_000.0},
        "tolerance": {"bank_npl_ratio": 0.2, "margin": 0.05},
    }
    case = make_case(rows, options, policy, branches)
    assert precheck(case.build()).empty
    err = infeasible(case, "fractional")
    named = set(err.conflicts["rule"])
    assert named <= {"tolerance", "bulk_transfer.capacity"} and named
    # 6.67m needed, 1m available: the misses add up to 5.67m whichever rule takes them.
    assert err.conflicts["shortfall"].sum() == pytest.approx(5_000_000.0 / 0.75 - 1e6, rel=1e-6)


@st.composite
def elastic_cases(draw: st.DrawFn) -> Case:
    """Small policies the prechecks cannot judge: an unbudgeted channel (amc_b) takes one
    forced-out loan, so only the LP (and its elastic relaxation) can tell."""
    channels = ("write_off", "bulk_transfer", "securitisation", "restructure")
    derecognised = {"write_off": 1.0, "bulk_transfer": 1.0, "securitisation": 0.95}
    rows = [loan("E0", 500_000.0, npl_age_months=60.0)]
    options = [("E0", "retain", 1e5, 0.0, 0.0), ("E0", "amc_b", 5e4, -1e5, 1.0)]
    for i in range(1, draw(st.integers(2, 6))):
        balance = float(draw(st.integers(1, 40)) * 50_000)
        inclusive = draw(st.booleans())
        rows.append(
            loan(
                f"E{i}",
                balance,
                npl_age_months=float(draw(st.sampled_from([6, 60]))),
                small_micro=inclusive,
                inclusive=inclusive,
            )
        )
        options.append((f"E{i}", "retain", 0.3 * balance, 0.0, 0.0))
        for channel in draw(st.lists(st.sampled_from(channels), min_size=1, unique=True)):
            value = balance * draw(st.floats(0.05, 0.5))
            share = derecognised.get(channel, 0.0)
            options.append((f"E{i}", channel, value, value - 0.5 * balance, share))
    total = sum(r["balance"] for r in rows)
    small = lambda: round(total * draw(st.floats(0.0, 0.4)), 2)  # noqa: E731
    policy: dict[str, Any] = {
        "long_age": {"months": 36},
        "write_off": {"quota": small()},
        "bulk_transfer": {"capacity": small(), "min_loans": draw(st.integers(0, 2))},
        "securitisation": {"max_pool": small()},
        "restructure": {"max_loans": draw(st.integers(0, 2))},
    }
    branches = None
    if draw(st.booleans()):
        npl = sum(r["balance"] for r in rows if r["inclusive"])
        ratio = draw(st.floats(0.05, 0.3))
        branches = [{"branch": "B1", "inclusive_loans": max(npl, 1.0) / ratio, "profit": 1e7}]
        tau = ratio * draw(st.floats(0.3, 0.95))
        policy["tolerance"] = {"bank_npl_ratio": tau / 2, "margin": tau / 2}
    return make_case(rows, options, policy, branches, "elastic")


@settings(max_examples=50, **SETTINGS)
@given(
    case=st.one_of(
        elastic_cases(), tiny_cases(min_loans=3, tight=True), synthetic_cases(max_loans=30)
    )
)
def test_every_explanation_is_readable_and_dropping_the_named_rules_restores_the_lp(
    case: Case,
) -> None:
    problem = case.build()
    try:
        solve(problem, mode="fractional")
        event("feasible")
    except InfeasiblePolicyError as err:
        event("prechecked" if not precheck(problem).empty else "elastic")
        assert_readable(err)
        rules = set(err.conflicts["rule"])
        assert "whole_loan" not in rules, "the LP itself is infeasible"
        if precheck(problem).empty:
            # The elastic plan breaks only the named rules: without them it is a plan.
            assert all(r in SECTION_OF_RULE or r.startswith("channels.") for r in rules), rules
            relaxed = case.build(_dropped(case.policy, rules))
            assert try_solve(relaxed, mode="fractional") is not None


# --------------------------------------------------------------------------- whole loans only


def test_whole_loan_only_infeasibility_names_whole_loan() -> None:
    """Pool must be exactly CNY 1.5m; loan C (long-aged, securitisation its only exit) puts
    1m in, and whole 1m loans can only make 1m, 2m or 3m. Half of A makes the LP work."""
    rows = [
        loan("A", 1_000_000.0),
        loan("B", 1_000_000.0),
        loan("C", 1_000_000.0, npl_age_months=70.0),
    ]
    options = []
    for loan_id in "ABC":
        options += [
            (loan_id, "retain", 400_000.0, 0.0, 0.0),
            (loan_id, "securitisation", 300_000.0, 0.0, 0.95),
        ]
    policy = {
        "long_age": {"months": 36},
        "securitisation": {"min_pool": 1_500_000.0, "max_pool": 1_500_000.0},
    }
    case = make_case(rows, options, policy)
    assert precheck(case.build()).empty
    fractional = solve(case.build(), mode="fractional")
    assert fractional.verification.ok
    err = infeasible(case, "whole_loan")
    assert err.conflicts["rule"].tolist() == ["whole_loan"]
    assert "whole-loan" in str(err) and "fractional" in str(err)

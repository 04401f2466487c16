"""Tests of npl_disposal.valuation.schedule: the options of a disposal schedule over time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal.datasets import make_portfolio
from npl_disposal.io.schema import STANDARD_CHANNELS
from npl_disposal.valuation import (
    EXAMPLE_MATRIX,
    ScheduleOptions,
    ValuationAssumptions,
    value_options,
    value_schedule,
)
from npl_disposal.valuation import schedule as schedule_module
from npl_disposal.valuation._workout import Kernel
from npl_disposal.valuation.options import resolve_inputs, workout_kernel
from npl_disposal.valuation.schedule import LOSS_CLASS_PROBABILITY, _later_options, _moves, _steps

EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MIGRATIONS = {"hazards": None, "monthly": EXAMPLE_MATRIX, "quarterly": EXAMPLE_MATRIX.to_period(3)}
KEY = ["loan_id", "channel"]


@st.composite
def portfolios(draw: st.DrawFn, max_loans: int = 30) -> pd.DataFrame:
    """Small synthetic loan tables; some ages between whole months."""
    n = draw(st.integers(1, max_loans))
    loans = make_portfolio(n, draw(st.integers(1, 3)), seed=draw(st.integers(0, 10_000))).loans
    if draw(st.booleans()):
        shift = np.where(np.arange(n) % 2 == 0, 0.0, draw(st.floats(0.05, 0.95)))
        loans = loans.assign(npl_age_months=loans["npl_age_months"] + shift)
    return loans


def today_rows(schedule: ScheduleOptions) -> pd.DataFrame:
    """Period-1 rows and the retain row, in value_options' columns and order."""
    o = schedule.options
    picked = o[(o["period"] == 1) | (o["channel"] == "retain")]
    loan = pd.factorize(picked["loan_id"])[0]  # the options are listed loan by loan
    order = np.lexsort((picked["channel"].cat.codes.to_numpy(), loan))
    return picked.iloc[order][["loan_id", "channel", "value", "pnl", "derecognised"]]


def assert_same_as_today(schedule: ScheduleOptions, today: pd.DataFrame) -> None:
    mine = today_rows(schedule)
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), today.reset_index(drop=True), check_exact=True
    )


# --------------------------------------------------------------------------- period 1 is today


@pytest.mark.parametrize("migration", list(MIGRATIONS))
def test_one_period_is_value_options_exactly(migration: str) -> None:
    loans = make_portfolio(300, 4, seed=7).loans
    loans = loans.assign(npl_age_months=loans["npl_age_months"] + 0.25 * (np.arange(300) % 3))
    today = value_options(loans, migration=MIGRATIONS[migration])
    schedule = value_schedule(loans, 1, migration=MIGRATIONS[migration])
    assert_same_as_today(schedule, today)
    o = schedule.options
    assert set(o["period"]) == {1, 2}
    assert (o.loc[o["period"] == 2, "channel"] == "retain").all()
    balance = loans.set_index("loan_id")["balance"]
    np.testing.assert_array_equal(o["balance"], balance.loc[o["loan_id"]].to_numpy())


@EXAMPLES
@given(
    loans=portfolios(),
    periods=st.integers(1, 6),
    months=st.sampled_from([1, 3, 6, 12]),
    migration=st.sampled_from(list(MIGRATIONS)),
)
def test_period_one_is_today_and_retain_is_kept_through_the_horizon(
    loans: pd.DataFrame, periods: int, months: int, migration: str
) -> None:
    schedule = value_schedule(loans, periods, months, migration=MIGRATIONS[migration])
    assert_same_as_today(schedule, value_options(loans, migration=MIGRATIONS[migration]))
    o = schedule.options
    assert list(o.columns) == list(schedule_module.SCHEDULE_COLUMNS)
    retain = o[o["channel"] == "retain"]
    assert list(retain["loan_id"]) == list(loans["loan_id"])
    assert (retain["period"] == periods + 1).all()
    assert ((o["period"] <= periods) | (o["channel"] == "retain")).all()
    assert not o.duplicated(["loan_id", "channel", "period"]).any()
    first = o[o["period"] == 1]
    today = loans.set_index("loan_id")["balance"]
    np.testing.assert_array_equal(first["balance"], today.loc[first["loan_id"]].to_numpy())
    np.testing.assert_array_equal(retain["balance"], today.loc[retain["loan_id"]].to_numpy())


# --------------------------------------------------------------------------- balances and values


@EXAMPLES
@given(
    loans=portfolios(),
    periods=st.integers(1, 8),
    months=st.sampled_from([1, 3, 12]),
    migration=st.sampled_from(list(MIGRATIONS)),
)
def test_balances_fall_with_time_and_values_are_finite(
    loans: pd.DataFrame, periods: int, months: int, migration: str
) -> None:
    schedule = value_schedule(loans, periods, months, migration=MIGRATIONS[migration])
    o, path = schedule.options, schedule.path
    today = loans.set_index("loan_id")["balance"]
    cap = today.loc[o["loan_id"]].to_numpy()
    assert (o["balance"] > 0).all()
    assert (o["balance"].to_numpy() <= cap).all()
    for column in ("value", "pnl", "balance", "derecognised"):
        assert np.isfinite(o[column].to_numpy()).all(), column
    offered = o[o["channel"] != "retain"].sort_values([*KEY, "period"], kind="stable")
    steps = offered.groupby(KEY, observed=True)["balance"].diff().dropna()
    assert (steps <= 0).all()

    assert len(path) == periods * len(loans)
    assert list(path["period"]) == list(range(1, periods + 1)) * len(loans)
    assert (path["balance"] >= 0).all()
    assert (path["balance"].to_numpy() <= today.loc[path["loan_id"]].to_numpy()).all()
    assert (path.groupby("loan_id", sort=False)["balance"].diff().dropna() <= 0).all()
    # kept to the end of period t is the balance at the start of period t + 1 (bulk: always open)
    bulk = o[o["channel"] == "bulk_transfer"].set_index(["loan_id", "period"])["balance"]
    ends = path.assign(period=path["period"] + 1).set_index(["loan_id", "period"])["balance"]
    shared = bulk.index.intersection(ends.index)
    np.testing.assert_allclose(bulk.loc[shared], ends.loc[shared], rtol=1e-12)


@EXAMPLES
@given(loans=portfolios(), periods=st.integers(4, 12), migration=st.sampled_from(list(MIGRATIONS)))
def test_zero_discount_rate_long_horizon_nothing_negative(
    loans: pd.DataFrame, periods: int, migration: str
) -> None:
    a = ValuationAssumptions(discount_rate=0.0, investor_discount_rate=0.0, horizon_months=240)
    o = value_schedule(loans, periods, 3, assumptions=a, migration=MIGRATIONS[migration]).options
    net_book = loans.set_index("loan_id").eval("balance - provision").loc[o["loan_id"]].to_numpy()
    share = o["balance"].to_numpy() / loans.set_index("loan_id")["balance"].loc[o["loan_id"]]
    tol = 1e-9 * np.abs(net_book) + 1e-6
    assert (o["value"] >= -tol).all()
    assert (o["balance"] > 0).all()
    assert o["derecognised"].between(0.0, 1.0).all()
    # the loss booked is at most the net book value still on the book then
    assert (o["pnl"].to_numpy() >= -share.to_numpy() * np.maximum(net_book, 0) - tol).all()
    no_gain = o["channel"].isin(["retain", "write_off", "restructure"])
    assert (o.loc[no_gain, "pnl"] <= tol[no_gain.to_numpy()]).all()


def test_at_a_zero_rate_waiting_to_write_off_loses_nothing() -> None:
    """The collections of the months kept outweigh the post-write-off share of them."""
    loans = make_portfolio(200, 2, seed=3).loans
    a = ValuationAssumptions(discount_rate=0.0, write_off_tax_deductible=False)
    o = value_schedule(loans, 6, 3, assumptions=a).options
    wo = o[o["channel"] == "write_off"].pivot(index="loan_id", columns="period", values="value")
    assert (wo.diff(axis=1).iloc[:, 1:].stack().dropna() >= -1e-6).all()


# --------------------------------------------------------------------------- the workout over time


def kept_then(loans: pd.DataFrame, months: int, migration: Any = None, **kw: Any) -> np.ndarray:
    """Value today of "keep ``months`` months, then keep (the retain workout)"."""
    _, lo, a, chain = resolve_inputs(loans, ValuationAssumptions(**kw), None, migration)
    kernel: Kernel = workout_kernel(lo, a, chain, later_months=months)
    moves = _moves(chain, [months])[0]
    value, _, _ = _later_options(lo, a, kernel, moves, months, _steps(chain, months))
    return value[0]


@pytest.mark.parametrize("migration", list(MIGRATIONS))
@pytest.mark.parametrize("months", [3, 6, 12])
def test_kept_then_retained_is_the_retain_value_over_a_longer_horizon(
    migration: str, months: int
) -> None:
    """Collections while kept plus the discounted retain value then equal today's retain
    value with the horizon lengthened by the months kept (the Markov property).
    """
    loans = make_portfolio(400, 4, seed=11).loans
    loans = loans.assign(npl_age_months=loans["npl_age_months"] + 0.4 * (np.arange(400) % 2))
    later = kept_then(loans, months, MIGRATIONS[migration], horizon_months=60)
    longer = ValuationAssumptions(horizon_months=60 + months)
    today = value_options(loans, assumptions=longer, migration=MIGRATIONS[migration])
    retain = today.loc[today["channel"] == "retain", "value"].to_numpy()
    np.testing.assert_allclose(later, retain, rtol=1e-9, atol=1e-6)


def test_a_migration_matrix_moves_later_periods_not_the_first() -> None:
    loans = make_portfolio(300, 4, seed=5).loans
    plain = value_schedule(loans, 4).options
    moved = value_schedule(loans, 4, migration=EXAMPLE_MATRIX).options
    bulk = [
        o[o["channel"] == "bulk_transfer"].set_index(["loan_id", "period"]) for o in (plain, moved)
    ]
    # the AMC's price does not depend on the workout chain: period 1 is the same ...
    pd.testing.assert_series_equal(bulk[0].xs(1, level="period")["value"],
                                   bulk[1].xs(1, level="period")["value"])  # fmt: skip
    # ... later periods see the loan in the state the matrix moves it to
    for period in (2, 3, 4):
        a, b = bulk[0].xs(period, level="period"), bulk[1].xs(period, level="period")
        assert not np.allclose(a["value"], b["value"])
        assert not np.allclose(a["balance"], b["balance"])
    assert_same_as_today(value_schedule(loans, 4, migration=EXAMPLE_MATRIX),
                         value_options(loans, migration=EXAMPLE_MATRIX))  # fmt: skip


def test_a_matrix_of_several_months_moves_the_loan_at_its_steps() -> None:
    """A quarterly matrix with monthly periods: the state changes at months 3, 6, ..."""
    loans = make_portfolio(50, 2, seed=2).loans
    path = value_schedule(loans, 6, 1, migration=EXAMPLE_MATRIX.to_period(3)).path
    wide = path.pivot(index="loan_id", columns="period", values="balance")
    np.testing.assert_array_equal(wide[1], loans.set_index("loan_id")["balance"].loc[wide.index])
    np.testing.assert_array_equal(wide[1], wide[2])
    assert (wide[3] < wide[2]).all()
    np.testing.assert_array_equal(wide[3], wide[4])


# --------------------------------------------------------------------------- eligibility over time


def two_loans(**changes: Any) -> pd.DataFrame:
    base = {
        "loan_id": ["A", "B"],
        "branch": ["B1", "B1"],
        "balance": [1e6, 1e6],
        "provision": [4e5, 4e5],
        "classification": ["doubtful", "doubtful"],
        "npl_age_months": [10.0, 10.0],
        "small_micro": [True, True],
        "inclusive": [True, True],
        "recourse_days": [100.0, 0.0],
        "viability": [True, True],
    }
    base.update(changes)
    return pd.DataFrame(base)


def channels(schedule: ScheduleOptions, loan: str) -> dict[int, set[str]]:
    o = schedule.options
    mine = o[(o["loan_id"] == loan) & (o["channel"] != "retain")]
    return {int(p): set(g["channel"].astype(str)) for p, g in mine.groupby("period")}


def test_recourse_that_has_started_runs_on_and_opens_write_off() -> None:
    schedule = value_schedule(two_loans(), 4)
    # A: 100 days today, about 191 days at the start of period 2 (>= 180): write-off opens
    assert "write_off" not in channels(schedule, "A")[1]
    assert all("write_off" in channels(schedule, "A")[t] for t in (2, 3, 4))
    # B: no recourse started, none assumed; doubtful stays more likely than loss
    assert all("write_off" not in chans for chans in channels(schedule, "B").values())


def test_more_likely_than_not_loss_opens_write_off_and_closes_restructuring() -> None:
    hazards = {"doubtful": {"loss": 0.3, "recovered": 0.01}}
    a = ValuationAssumptions(hazards=hazards)
    loans = two_loans(recourse_days=[0.0, 0.0])
    schedule = value_schedule(loans, 4, 1, assumptions=a)
    chain = resolve_inputs(loans, a, None, None)[3]
    moves = _moves(chain, [0, 1, 2, 3])
    loss_share = moves[:, 1, 2] / moves[:, 1].sum(axis=1)  # doubtful -> loss, given unresolved
    for t, share in enumerate(loss_share, start=1):
        open_ = channels(schedule, "A")[t]
        is_loss = share >= LOSS_CLASS_PROBABILITY
        assert ("write_off" in open_) == is_loss, (t, share)
        assert ("restructure" in open_) == (not is_loss), (t, share)
    assert loss_share[0] == 0 and loss_share[-1] >= LOSS_CLASS_PROBABILITY


def test_a_loan_surely_resolved_is_offered_nothing_later() -> None:
    matrix = pd.DataFrame(
        np.eye(6), index=["substandard", "doubtful", "loss", "recovered", "repaid", "written_off"]
    )
    matrix.columns = matrix.index
    matrix.loc["loss"] = [0, 0, 0, 1.0, 0, 0]  # every loss loan is recovered within a month
    loans = two_loans(classification=["loss", "doubtful"])
    o = value_schedule(loans, 3, 1, migration=matrix).options
    assert set(o.loc[o["loan_id"] == "A", "period"]) == {1, 4}  # today, and retain
    assert set(o.loc[o["loan_id"] == "B", "period"]) == {1, 2, 3, 4}


# --------------------------------------------------------------------------- shape and API


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[[], int]:
    calls = [0]
    original = getattr(schedule_module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(schedule_module, name, counted)
    return lambda: calls[0]


def test_vectorised_calls_do_not_grow_with_loans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valuing a block costs the same number of calls for 20 loans and for 2,000."""
    values = count_calls(monkeypatch, "channel_values")
    kept = count_calls(monkeypatch, "_kept_collections")
    counts = []
    for n in (20, 2_000):
        before = values(), kept()
        value_schedule(make_portfolio(n, 4, seed=1).loans, 4)
        counts.append((values() - before[0], kept() - before[1]))
    assert counts[0] == counts[1]
    assert counts[0] == (3 * 3, 3)  # classes x later periods; later periods


def test_summary_and_by_period() -> None:
    loans = make_portfolio(100, 2, seed=4).loans
    schedule = value_schedule(loans, 6)
    text = schedule.summary()
    assert "6 period(s) of 3 month(s)" in text and "100 loans" in text
    table = schedule.by_period()
    assert table.loc[(7, "retain"), "loans"] == 100
    assert table.loc[(1, "bulk_transfer"), "loans"] == 100
    years = table["year"].groupby(level="period").first()
    assert list(years) == [1, 1, 1, 1, 2, 2, 1]  # months 0-9, 12 and 15; retain: this year
    total = schedule.options.groupby("period")["value"].sum()
    np.testing.assert_allclose(table.groupby(level="period")["value"].sum(), total)
    assert list(schedule.options["channel"].cat.categories) == list(STANDARD_CHANNELS)
    with pytest.raises(AttributeError):
        schedule.periods = 2  # type: ignore[misc]


def test_many_periods_list_their_cells() -> None:
    """More than 127 cells per loan (25 periods and more) are listed with wider codes."""
    loans = make_portfolio(20, 1, seed=6).loans
    o = value_schedule(loans, 30, 1).options
    assert set(o["period"]) == set(range(1, 32))
    assert (o["channel"] == "retain").sum() == 20
    np.testing.assert_array_equal(
        o.loc[o["channel"] == "bulk_transfer"].groupby("loan_id").size(), np.full(20, 30)
    )


@pytest.mark.parametrize(
    ("periods", "months"), [(0, 3), (2, 0), (True, 3), (2.0, 3), (2, 1.5), (-1, 3)]
)
def test_periods_and_months_must_be_whole(periods: Any, months: Any) -> None:
    with pytest.raises(ValueError, match="whole number"):
        value_schedule(make_portfolio(5, 1, seed=1).loans, periods, months)

"""Tests of npl_disposal.valuation.recovery and npl_disposal.valuation (the options table)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal import Policy, PolicyError, build_problem, read_portfolio
from npl_disposal.datasets import make_portfolio
from npl_disposal.io.options import read_options
from npl_disposal.io.schema import NPL_CLASSES, STANDARD_CHANNELS
from npl_disposal.valuation import (
    PARAMETERS,
    SOURCES,
    ValuationAssumptions,
    value_options,
)
from npl_disposal.valuation.recovery import (
    COLLATERAL_TYPES,
    CollateralHaircut,
    RecoveryCurve,
    collateral_codes,
    expected_recovery,
    guarantee_payout,
    realisable_collateral,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "valuation.md"
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECURED_TYPES = ("real_estate", "equipment", "receivables", "房产", "something_else")
ALL_TYPES = ("none", *SECURED_TYPES)


# --------------------------------------------------------------------------- strategies


@st.composite
def loan_tables(draw: st.DrawFn, min_loans: int = 1, max_loans: int = 6) -> pd.DataFrame:
    """Small loan tables in the canonical columns (ages may be fractional)."""
    n = draw(st.integers(min_loans, max_loans))
    money = st.floats(1_000.0, 2.0e7, allow_nan=False)
    share = st.floats(0.0, 1.0, allow_nan=False)
    balance = draw(st.lists(money, min_size=n, max_size=n))
    small = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    rows = {
        "loan_id": [f"L{i:03d}" for i in range(n)],
        "branch": ["B1"] * n,
        "balance": balance,
        "provision": [
            b * s
            for b, s in zip(balance, draw(st.lists(share, min_size=n, max_size=n)), strict=True)
        ],
        "classification": draw(st.lists(st.sampled_from(NPL_CLASSES), min_size=n, max_size=n)),
        "npl_age_months": draw(
            st.lists(
                st.one_of(st.integers(0, 200).map(float), st.floats(0.0, 200.0)),
                min_size=n,
                max_size=n,
            )
        ),
        "small_micro": small,
        "inclusive": [s and draw(st.booleans()) for s in small],
        "collateral_value": [
            b * r
            for b, r in zip(
                balance, draw(st.lists(st.floats(0.0, 3.0), min_size=n, max_size=n)), strict=True
            )
        ],
        "guarantee_cover": draw(st.lists(share, min_size=n, max_size=n)),
        "recourse_days": draw(st.lists(st.floats(0.0, 2000.0), min_size=n, max_size=n)),
        "interest_receivable": [
            b * r
            for b, r in zip(
                balance, draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n)), strict=True
            )
        ],
        "viability": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "collateral_type": draw(st.lists(st.sampled_from(ALL_TYPES), min_size=n, max_size=n)),
    }
    return pd.DataFrame(rows)


def wide(options: pd.DataFrame, loans: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Options as a loans x channels table (NaN where not eligible)."""
    table = options.pivot(index="loan_id", columns="channel", values=column)
    return table.reindex(index=loans["loan_id"], columns=list(STANDARD_CHANNELS))


def tolerance(loans: pd.DataFrame) -> np.ndarray:
    return 1e-9 * loans["balance"].to_numpy()[:, None] + 1e-6


# --------------------------------------------------------------------------- recovery


def test_exponential_curve_decays_to_its_floor() -> None:
    curve = RecoveryCurve.exponential(0.4, 0.05, 24.0)
    rates = curve.rate(np.array([0.0, 24.0, 48.0, 1e4]))
    np.testing.assert_allclose(rates, [0.4, 0.225, 0.1375, 0.05])
    assert curve.rate(-5.0) == pytest.approx(0.4)


def test_table_curve_interpolates_and_is_flat_beyond() -> None:
    curve = RecoveryCurve.table([6, 18, 36], [0.5, 0.3, 0.1])
    np.testing.assert_allclose(curve.rate([0, 6, 12, 36, 100]), [0.5, 0.5, 0.4, 0.1, 0.1])
    assert RecoveryCurve.from_dict(curve.to_dict()) == curve


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial": 0.2, "floor": 0.3}, "floor"),
        ({"initial": 1.2}, "initial"),
        ({"half_life_months": 0.0}, "half_life"),
        ({"ages": (0, 12), "rates": (0.1, 0.2)}, "increase"),
        ({"ages": (12, 6), "rates": (0.2, 0.1)}, "strictly increasing"),
        ({"ages": (0, 12), "rates": (0.2,)}, "equal length"),
    ],
)
def test_invalid_curves_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RecoveryCurve(**kwargs)


@given(
    st.lists(st.floats(0.0, 400.0), min_size=2, max_size=20),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.1, 200.0),
)
def test_curves_never_rise_with_age(ages: list[float], a: float, b: float, hl: float) -> None:
    ordered = np.sort(np.asarray(ages))
    for curve in (
        RecoveryCurve.exponential(max(a, b), min(a, b), hl),
        RecoveryCurve.table([0.0, hl, 2 * hl], sorted([a, b, a * b], reverse=True)),
    ):
        rates = curve.rate(ordered)
        assert np.all(np.diff(rates) <= 1e-15)
        assert np.all((rates >= 0) & (rates <= 1))


def test_collateral_codes_read_aliases_and_default_unknown() -> None:
    labels = pd.Series(
        ["real_estate", " Real Estate ", "房产", "设备", "应收账款", "none", None, "gold"]
    )
    names = [*COLLATERAL_TYPES, "unknown"]
    got = [names[i] for i in collateral_codes(labels)]
    expected = ["real_estate", "real_estate", "real_estate", "equipment", "receivables", "none"]
    assert got == [*expected, "unknown", "unknown"]
    categorical = collateral_codes(labels.astype("category"))
    assert [names[i] for i in categorical] == got


def test_unknown_collateral_is_haircut_at_least_as_hard_as_known_types() -> None:
    a = ValuationAssumptions()
    known = [a.collateral_haircuts[t] for t in ("real_estate", "equipment", "receivables")]
    assert a.collateral_haircuts["unknown"] >= max(known)
    assert a.collateral_haircuts["none"] == 1.0


@given(
    st.floats(0.0, 1e7),
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.05),
    st.lists(st.floats(0.0, 500.0), min_size=2, max_size=10),
)
def test_realisable_collateral_never_negative_and_never_rises_with_age(
    value: float, haircut: float, slope: float, ages: list[float]
) -> None:
    cuts = (CollateralHaircut(haircut, slope),)
    got = realisable_collateral(value, np.zeros(len(ages), dtype=int), np.sort(ages), cuts)
    assert np.all(got >= 0) and np.all(got <= value * (1 - haircut) + 1e-6)
    assert np.all(np.diff(got) <= 1e-9)


@given(
    exposure=st.floats(1.0, 1e8),
    rate=st.floats(0.0, 1.0),
    collateral=st.floats(0.0, 2e8),
    more=st.floats(0.0, 1e8),
    cover=st.floats(0.0, 1.0),
    extra_cover=st.floats(0.0, 1.0),
    pay=st.floats(0.0, 1.0),
)
def test_expected_recovery_bounded_and_monotone(
    exposure: float,
    rate: float,
    collateral: float,
    more: float,
    cover: float,
    extra_cover: float,
    pay: float,
) -> None:
    base = float(expected_recovery(exposure, rate, collateral, cover, pay))
    assert 0.0 <= base <= exposure * (1 + 1e-12)
    tol = 1e-9 * exposure
    assert float(expected_recovery(exposure, rate, collateral + more, cover, pay)) >= base - tol
    higher = min(1.0, cover + extra_cover)
    assert float(expected_recovery(exposure, rate, collateral, higher, pay)) >= base - tol
    assert float(expected_recovery(exposure, rate * 0.5, collateral, cover, pay)) <= base + tol


def test_guarantee_pays_its_share_of_the_loss_after_collateral() -> None:
    assert float(guarantee_payout(100.0, 30.0, 0.8)) == pytest.approx(56.0)
    assert float(guarantee_payout(100.0, 130.0, 0.8)) == 0.0
    assert float(expected_recovery(100.0, 0.5, 30.0, 0.8)) == pytest.approx(30 + 56 + 7)


# --------------------------------------------------------------------------- options table


def test_options_table_shape_order_and_derecognised_shares() -> None:
    data = make_portfolio(400, 4, seed=7)
    pf = read_portfolio(data.loans, data.branches)
    options = value_options(pf)
    assert list(options.columns) == ["loan_id", "channel", "value", "pnl", "derecognised"]
    for column in ("value", "pnl", "derecognised"):
        assert options[column].dtype == np.float64
        assert np.isfinite(options[column]).all()
    retain = options[options["channel"] == "retain"]
    assert retain["loan_id"].tolist() == pf.loans["loan_id"].tolist()  # one each, in order
    order = options["channel"].cat.codes.to_numpy()
    loan = pd.Index(pf.loans["loan_id"]).get_indexer(options["loan_id"])
    assert np.all(np.diff(loan * 10 + order) > 0)  # by loan, then channel
    expected = {
        "retain": 0.0,
        "write_off": 1.0,
        "bulk_transfer": 1.0,
        "securitisation": 0.95,
        "restructure": 0.0,
    }
    got = options.groupby("channel", observed=True)["derecognised"].agg(["min", "max"])
    for channel, share in expected.items():
        assert got.loc[channel, "min"] == got.loc[channel, "max"] == pytest.approx(share)
    assert set(got.index) == set(STANDARD_CHANNELS)


def test_options_pass_validation_and_build_the_allocation_problem() -> None:
    data = make_portfolio(300, 4, seed=11)
    pf = read_portfolio(data.loans, data.branches)
    options = value_options(pf)
    checked = read_options(options, pf)
    assert len(checked) == len(options)
    problem = build_problem(pf, data.policy_dict(), options)
    assert problem.n_loans == 300
    assert problem.channels == STANDARD_CHANNELS
    assert problem.offered.sum() == len(options)
    assert (problem.derecognised[:, problem.channel("securitisation")] <= 0.95).all()


def test_options_round_trip_through_csv(tmp_path: Path) -> None:
    data = make_portfolio(50, 2, seed=3)
    options = value_options(data.loans)
    options.to_csv(tmp_path / "options.csv", index=False)
    pf = read_portfolio(data.loans)
    back = read_options(tmp_path / "options.csv", pf)
    np.testing.assert_allclose(back["value"].to_numpy(), options["value"].to_numpy())


def test_accepts_a_loans_file_and_a_policy_with_a_valuation_section(tmp_path: Path) -> None:
    data = make_portfolio(40, 2, seed=5)
    data.loans.to_csv(tmp_path / "portfolio.csv", index=False)
    policy = {"valuation": {"risk_retention": 0.10, "horizon_months": 24}}
    options = value_options(tmp_path / "portfolio.csv", policy=policy)
    sec = options[options["channel"] == "securitisation"]
    assert len(sec) > 0 and np.allclose(sec["derecognised"], 0.90)
    default = value_options(tmp_path / "portfolio.csv")
    assert not np.allclose(options["value"], default["value"])


@EXAMPLES
@given(loan_tables(), st.floats(0.0, 80.0))
def test_value_never_rises_with_age(loans: pd.DataFrame, months: float) -> None:
    older = loans.assign(npl_age_months=loans["npl_age_months"] + months)
    young = wide(value_options(loans), loans)
    old = wide(value_options(older), loans)
    for channel in ("retain", "bulk_transfer", "securitisation"):
        both = young[channel].notna() & old[channel].notna()
        assert (old.loc[both, channel] <= young.loc[both, channel] + 1e-6).all(), channel


@EXAMPLES
@given(loan_tables(), st.floats(0.0, 3.0), st.floats(0.0, 1.0))
def test_value_never_falls_with_more_collateral_or_cover(
    loans: pd.DataFrame, extra: float, cover: float
) -> None:
    base = wide(value_options(loans), loans)
    secured = loans.assign(collateral_value=loans["collateral_value"] + extra * loans["balance"])
    covered = loans.assign(guarantee_cover=np.minimum(1.0, loans["guarantee_cover"] + cover))
    tol = tolerance(loans)
    for changed in (secured, covered):
        more = wide(value_options(changed), loans)
        for channel in ("retain", "bulk_transfer", "securitisation", "write_off"):
            both = base[channel].notna() & more[channel].notna()
            gap = (more[channel] - base[channel]).to_numpy()
            assert np.all(gap[both.to_numpy()] >= -tol[both.to_numpy(), 0]), channel


@EXAMPLES
@given(loan_tables(), st.booleans())
def test_retain_value_at_most_the_claim_and_eligibility_rules(
    loans: pd.DataFrame, with_interest: bool
) -> None:
    a = ValuationAssumptions(interest_in_exposure=with_interest)
    options = value_options(loans, a)
    values = wide(options, loans)
    claim = loans["balance"] + (loans["interest_receivable"] if with_interest else 0.0)
    assert (values["retain"].to_numpy() <= claim.to_numpy() * (1 + 1e-12)).all()
    assert (values["retain"] >= 0).all()
    assert values["retain"].notna().all()
    offered = values.notna()
    loss = (loans["classification"] == "loss").to_numpy()
    viable = loans["viability"].to_numpy()
    assert not offered["restructure"].to_numpy()[loss | ~viable].any()
    assert offered["restructure"].to_numpy()[~loss & viable].all()
    assert offered["write_off"].to_numpy()[loss].all()
    assert offered["bulk_transfer"].all()
    pnl = wide(options, loans, "pnl")
    net_book = (loans["balance"] - loans["provision"]).to_numpy()
    np.testing.assert_allclose(pnl["write_off"].dropna(), -net_book[offered["write_off"]])
    assert (pnl["retain"] <= 0).all() and (pnl[offered["restructure"]]["restructure"] <= 0).all()


def test_loss_class_small_micro_loan_past_recourse_threshold_can_be_written_off() -> None:
    loans = make_portfolio(20, 2, seed=1).loans.copy()
    loans["classification"] = "substandard"
    loans["recourse_days"] = 0.0
    loans["small_micro"] = True
    loans.loc[0, ["classification", "recourse_days"]] = ["loss", 400.0]
    loans.loc[1, ["recourse_days", "balance"]] = [200.0, 5e5]  # substandard past threshold
    loans.loc[1, "provision"] = 1e5
    loans.loc[2, "legal_evidence"] = True  # legal evidence, no recourse yet
    loans["legal_evidence"] = loans["legal_evidence"].fillna(False).astype(bool)
    values = wide(value_options(loans), loans)
    assert values["write_off"].notna().tolist()[:4] == [True, True, True, False]
    assert values["write_off"].notna().sum() == 3


def test_securitisation_offered_to_secured_or_granular_loans_only() -> None:
    loans = make_portfolio(60, 2, seed=2).loans
    values = wide(value_options(loans), loans)
    secured = (loans["collateral_type"] != "none") & (loans["collateral_value"] > 0)
    granular = loans["balance"] <= 500_000
    assert (values["securitisation"].notna().to_numpy() == (secured | granular).to_numpy()).all()


def test_bulk_prices_match_the_pilot_calibration() -> None:
    data = make_portfolio(20_000, 8, seed=4)
    loans = data.loans
    values = wide(value_options(loans), loans)
    claim = loans["balance"] + loans["interest_receivable"]
    price = values["bulk_transfer"].to_numpy() / (1 - 0.02)
    secured = (loans["collateral_type"] != "none").to_numpy()
    plain = ~secured & (loans["guarantee_cover"] == 0).to_numpy()
    secured_price = price[secured].sum() / claim[secured].sum()
    unsecured_price = price[plain].sum() / claim[plain].sum()
    assert 0.22 <= secured_price <= 0.38  # pilot: about 30 % of principal + interest
    assert 0.01 <= unsecured_price <= 0.08  # unsecured personal packages: a few per cent


# --------------------------------------------------------------------------- exactness


def reference_retain(
    loans: pd.DataFrame, a: ValuationAssumptions, matrix: pd.DataFrame | None = None, step: int = 1
) -> np.ndarray:
    """Month-by-month expectation, loan by loan (slow, obvious)."""
    states = list(NPL_CLASSES)
    if matrix is None:
        q = np.array([[a.hazards[c][d] for d in states] for c in states])
        q[np.diag_indices(3)] = [1 - sum(a.hazards[c].values()) for c in states]
        rec = np.array([a.hazards[c]["recovered"] for c in states])
        cure = np.array([a.hazards[c]["repaid"] for c in states])
    else:
        q = matrix.loc[states, states].to_numpy()
        rec = matrix.loc[states, "recovered"].to_numpy()
        cure = matrix.loc[states, ["repaid", "normal"]].sum(axis=1).to_numpy()
    names = [*COLLATERAL_TYPES, "unknown"]
    out = []
    for loan in loans.itertuples():
        kind = names[collateral_codes(pd.Series([loan.collateral_type]))[0]]
        path = {
            "c": states.index(loan.classification),
            "e": loan.balance,
            "v": loan.collateral_value,
            "cp": loan.guarantee_cover * a.guarantee_pay_rate,
            "alpha": 1 - a.collateral_haircuts[kind],
            "beta": a.collateral_age_slope[kind],
            "q": q,
            "rec": rec,
            "cure": cure,
            "step": step,
        }
        whole = math.floor(loan.npl_age_months)
        frac = loan.npl_age_months - whole
        low = path_value(a, whole, **path)
        high = path_value(a, whole + 1, **path) if frac else low
        out.append((1 - frac) * low + frac * high)
    return np.array(out)


def path_value(a: ValuationAssumptions, age: float, **p: Any) -> float:
    """Expected discounted workout cash of one loan starting at a whole ``age``."""
    states = list(NPL_CLASSES)
    e, v, cp, step = p["e"], p["v"], p["cp"], p["step"]
    delta = (1 + a.discount_rate) ** (-a.guarantee_lag_months / 12)
    dist, total, cured = np.eye(3)[p["c"]], 0.0, 0.0
    for t in range(1, int(a.horizon_months // step) + 1):
        now = age + t * step
        disc = (1 + a.discount_rate) ** (-(t * step) / 12)
        coll = min(e, v * max(0.0, p["alpha"] - p["beta"] * now))
        for s, state in enumerate(states):
            u = float(a.recovery_curves[state].rate(now))
            got = coll + delta * cp * (e - coll) + u * (1 - cp) * (e - coll)
            total += disc * dist[s] * p["rec"][s] * got
            cured += disc * dist[s] * p["cure"][s] * e
        dist = dist @ p["q"]
    return (1 - a.collection_cost) * total + cured


@settings(max_examples=10, deadline=None)
@given(loan_tables(max_loans=4), st.integers(6, 60), st.floats(0.0, 0.02))
def test_retain_value_equals_the_month_by_month_expectation(
    loans: pd.DataFrame, horizon: int, slope: float
) -> None:
    a = ValuationAssumptions(horizon_months=horizon, collateral_age_slope={"real_estate": slope})
    got = wide(value_options(loans, a), loans)["retain"].to_numpy()
    np.testing.assert_allclose(got, reference_retain(loans, a), rtol=1e-9, atol=1e-6)


@dataclasses.dataclass(frozen=True)
class Matrix:
    """A stand-in for npl_disposal.valuation.MigrationMatrix (duck-typed)."""

    matrix: np.ndarray
    states: tuple[str, ...]
    months: int = 1


def quarterly_matrix() -> pd.DataFrame:
    states = [*NPL_CLASSES, "normal", "repaid", "recovered", "written_off"]
    m = pd.DataFrame(0.0, index=states, columns=states)
    rows = {
        "substandard": {"substandard": 0.7, "doubtful": 0.1, "normal": 0.05, "recovered": 0.15},
        "doubtful": {"doubtful": 0.7, "loss": 0.1, "repaid": 0.02, "recovered": 0.18},
        "loss": {"loss": 0.8, "recovered": 0.1, "written_off": 0.1},
    }
    for state, row in rows.items():
        for to, p in row.items():
            m.loc[state, to] = p
    for s in states[3:]:
        m.loc[s, s] = 1.0
    return m


def test_migration_matrix_drives_the_workout() -> None:
    loans = make_portfolio(12, 2, seed=9).loans
    a = ValuationAssumptions(horizon_months=36)
    m = quarterly_matrix()
    obj = Matrix(m.to_numpy(), tuple(m.index), months=3)
    got = wide(value_options(loans, a, migration=obj), loans)["retain"].to_numpy()
    np.testing.assert_allclose(got, reference_retain(loans, a, m, step=3), rtol=1e-9)
    assert not np.allclose(got, wide(value_options(loans, a), loans)["retain"].to_numpy())


def test_monthly_matrix_of_the_default_hazards_reproduces_the_default() -> None:
    loans = make_portfolio(30, 2, seed=8).loans
    a = ValuationAssumptions()
    states = [*NPL_CLASSES, "recovered", "repaid", "written_off"]
    m = pd.DataFrame(0.0, index=states, columns=states)
    for c in NPL_CLASSES:
        for d, p in a.hazards[c].items():
            m.loc[c, d] = p
        m.loc[c, c] = 1 - sum(a.hazards[c].values())
    for s in states[3:]:
        m.loc[s, s] = 1.0
    pd.testing.assert_frame_equal(value_options(loans, a, migration=m), value_options(loans, a))


def test_bad_migration_matrices_are_refused() -> None:
    loans = make_portfolio(5, 1, seed=1).loans
    m = quarterly_matrix()
    with pytest.raises(ValueError, match="lacks the NPL state"):
        value_options(loans, migration=m.drop(index="loss", columns="loss"))
    bad = m.copy()
    bad.loc["doubtful", "loss"] = 0.5
    with pytest.raises(ValueError, match="summing to 1"):
        value_options(loans, migration=bad)
    with pytest.raises(TypeError, match="MigrationMatrix"):
        value_options(loans, migration=[[1.0]])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- assumptions


def test_assumptions_round_trip_through_dicts_and_toml() -> None:
    a = ValuationAssumptions(
        discount_rate=0.06,
        recovery_curves={"loss": {"ages": [0, 24], "rates": [0.1, 0.02]}},
        hazards={"doubtful": {"recovered": 0.05}},
        write_off_evidence_columns=("court_ruling", "bankrupt"),
    )
    assert ValuationAssumptions.from_dict(a.to_dict()) == a
    assert a.hazards["doubtful"]["recovered"] == 0.05
    assert a.hazards["doubtful"]["loss"] == ValuationAssumptions().hazards["doubtful"]["loss"]
    text = Policy.from_dict({"valuation": a.to_dict()}).to_toml()
    assert ValuationAssumptions.from_policy(Policy.from_toml_text(text)) == a
    assert ValuationAssumptions.from_dict({}) == ValuationAssumptions()
    assert ValuationAssumptions.from_policy(None) == ValuationAssumptions()


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        ValuationAssumptions.from_dict(data)
    return info.value.problems


def test_every_bad_valuation_key_is_named_in_one_error() -> None:
    problems = problems_of(
        {
            "discount_rat": 0.05,
            "investor_discount_rate": -0.01,
            "collection_cost": 1.5,
            "horizon_months": 12.5,
            "interest_in_exposure": "yes",
            "hazards": {"loss": {"recovered": 0.9, "written_off": 0.2}, "normal": {}},
            "recovery_curves": {"doubtful": {"initial": 0.1, "floor": 0.2}},
            "collateral_haircuts": {"gold": 0.5, "equipment": -0.1},
            "restructure_observation_months": 6,
        }
    )
    where = [p[0] for p in problems]
    assert "[valuation] discount_rat" in where
    assert "did you mean 'discount_rate'" in dict(problems)["[valuation] discount_rat"]
    for key in (
        "[valuation] investor_discount_rate",
        "[valuation] collection_cost",
        "[valuation] horizon_months",
        "[valuation] interest_in_exposure",
        "[valuation] hazards.loss",
        "[valuation] hazards.normal",
        "[valuation] recovery_curves.doubtful",
        "[valuation] collateral_haircuts.gold",
        "[valuation] collateral_haircuts.equipment",
        "[valuation] restructure_observation_months",
    ):
        assert key in where, (key, where)


def test_bad_valuation_section_of_a_policy_raises_policy_error() -> None:
    policy = Policy.from_dict({"valuation": {"tax_rate": 25}})
    with pytest.raises(PolicyError, match=r"\[valuation\] tax_rate.*did you mean 0.25"):
        value_options(make_portfolio(5, 1, seed=1).loans, policy=policy)
    with pytest.raises(PolicyError, match="risk_retention"):
        ValuationAssumptions(risk_retention=2.0)


def test_every_parameter_has_a_source_and_is_documented() -> None:
    fields = {f.name for f in dataclasses.fields(ValuationAssumptions)}
    assert fields == set(PARAMETERS)
    assert all(source in SOURCES for *_, source in PARAMETERS.values())
    table = ValuationAssumptions.parameter_table()
    assert list(table["parameter"]) == [f.name for f in dataclasses.fields(ValuationAssumptions)]
    text = DOCS.read_text(encoding="utf-8")
    for name in fields:
        assert f"`{name}`" in text, name


def test_assumptions_pickle_hash_and_replace() -> None:
    import pickle

    a = ValuationAssumptions(tax_rate=0.15, bulk_price_share={"loss": 0.4})
    assert pickle.loads(pickle.dumps(a)) == a
    assert hash(a) == hash(ValuationAssumptions.from_dict(a.to_dict()))
    assert a.replace(tax_rate=0.25).bulk_price_share["loss"] == 0.4
    with pytest.raises(PolicyError, match="tax_rate"):
        a.replace(tax_rate=-1)


def test_required_columns_suffice_and_missing_types_count_as_unknown() -> None:
    loans = pd.DataFrame(
        {
            "loan_id": ["A", "B", "C"],
            "branch": ["B1"] * 3,
            "balance": [1e6, 1e6, 1e6],
            "provision": [3e5, 6e5, 1e6],
            "classification": ["次级", "可疑", "损失"],
            "npl_age_months": [3, 30, 90],
            "small_micro": [True, False, True],
            "inclusive": [True, False, False],
        }
    )
    options = value_options(loans)
    assert options.groupby("channel", observed=True).size().to_dict() == {
        "retain": 3,
        "write_off": 1,
        "bulk_transfer": 3,
    }
    with_value = value_options(loans.assign(collateral_value=5e5))
    gain = wide(with_value, loans)["retain"] - wide(options, loans)["retain"]
    # unknown type: the hardest haircut (receivables'), worth something only while young
    assert gain["A"] > 0 and (gain >= 0).all()
    typed = value_options(loans.assign(collateral_value=5e5, collateral_type="none"))
    np.testing.assert_allclose(wide(typed, loans)["retain"], wide(options, loans)["retain"])


def test_accepts_the_ageing_modules_migration_matrix() -> None:
    ageing = pytest.importorskip("npl_disposal.valuation.migration")
    matrix = getattr(ageing, "EXAMPLE_MATRIX", None)
    if matrix is None:
        pytest.skip("npl_disposal.valuation.migration has no EXAMPLE_MATRIX")
    loans = make_portfolio(50, 2, seed=6).loans
    from_matrix = value_options(loans, migration=matrix)
    pd.testing.assert_frame_equal(from_matrix, value_options(loans, migration=matrix.frame()))
    retain = wide(from_matrix, loans)["retain"]
    assert (retain <= loans.set_index("loan_id")["balance"] * (1 + 1e-12)).all()


@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("block", [1, 7, 64])
def test_valuing_in_blocks_gives_the_same_options(
    block: int, threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loans are valued a block at a time, on threads; block size and threads change nothing."""
    import npl_disposal.valuation.options as valuation

    loans = make_portfolio(300, 4, seed=11).loans
    whole = value_options(loans)
    monkeypatch.setattr(valuation, "BLOCK_LOANS", block)
    monkeypatch.setenv("NPL_DISPOSAL_THREADS", threads)
    pd.testing.assert_frame_equal(value_options(loans), whole, check_exact=True)

"""Tests of the synthetic portfolio generator and the bundled sample."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from npl_disposal.datasets import (
    INCLUSIVE_CREDIT_LIMIT,
    LONG_AGE_MONTHS,
    SyntheticPortfolio,
    make_portfolio,
)
from npl_disposal.io.schema import (
    BRANCH_COLUMNS,
    LOAN_COLUMNS,
    NPL_CLASSES,
    OPTION_COLUMNS,
    STANDARD_CHANNELS,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA = Path(__file__).resolve().parents[1] / "src" / "npl_disposal" / "data"
SAMPLE = (2000, 8, 2022)


@pytest.fixture(scope="module")
def sample() -> SyntheticPortfolio:
    return make_portfolio(*SAMPLE)


def frames(p: SyntheticPortfolio) -> list[pd.DataFrame]:
    return [p.loans, p.branches, p.options]


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    for a, b in zip(
        frames(make_portfolio(300, 4, 5)), frames(make_portfolio(300, 4, 5)), strict=True
    ):
        pd.testing.assert_frame_equal(a, b)


def test_different_seed_gives_different_frames() -> None:
    a, b = make_portfolio(300, 4, 5), make_portfolio(300, 4, 6)
    assert not a.loans["balance"].equals(b.loans["balance"])
    assert not a.options["value"].equals(b.options["value"])


def test_sizes_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="n_loans"):
        make_portfolio(0, 3)
    with pytest.raises(ValueError, match="n_branches"):
        make_portfolio(10, 0)


# --- loan table -----------------------------------------------------------------------------


def assert_loan_invariants(p: SyntheticPortfolio, n_loans: int, n_branches: int) -> None:
    loans = p.loans
    assert list(loans.columns) == [c.name for c in LOAN_COLUMNS]
    assert len(loans) == n_loans
    assert loans["loan_id"].is_unique
    assert (loans["balance"] > 0).all()
    assert (loans["provision"] >= 0).all()
    assert (loans["provision"] <= loans["balance"]).all()
    assert (~loans["inclusive"] | loans["small_micro"]).all()
    assert (loans.loc[loans["inclusive"], "balance"] <= INCLUSIVE_CREDIT_LIMIT).all()
    assert loans["classification"].isin(NPL_CLASSES).all()
    assert loans["guarantee_cover"].between(0, 1).all()
    for name in ("npl_age_months", "recourse_days", "days_past_due", "collateral_value"):
        assert (loans[name] >= 0).all(), name
    assert (loans["npl_age_months"] == np.floor(loans["npl_age_months"])).all()
    assert loans["collateral_type"].isin(["none", "real_estate", "equipment", "receivables"]).all()
    unsecured = loans["collateral_type"] == "none"
    assert (loans.loc[unsecured, "collateral_value"] == 0).all()
    assert set(loans["branch"]) <= set(p.branches["branch"])
    assert len(p.branches) == n_branches


def assert_option_invariants(p: SyntheticPortfolio) -> None:
    options, loans = p.options, p.loans
    assert list(options.columns) == [c.name for c in OPTION_COLUMNS]
    assert set(options["loan_id"]) == set(loans["loan_id"])
    assert not options.duplicated(["loan_id", "channel"]).any()
    assert options["channel"].isin(STANDARD_CHANNELS).all()
    retain = options[options["channel"] == "retain"]
    assert len(retain) == len(loans) and retain["loan_id"].is_unique
    assert options["derecognised"].between(0, 1).all()
    merged = options.merge(loans, on="loan_id")
    assert (merged["value"] >= 0).all()
    assert (merged["value"] <= merged["balance"] + 0.005).all()
    shares = merged.groupby("channel")["derecognised"].agg(["min", "max"])
    expected = {"retain": 0.0, "write_off": 1.0, "bulk_transfer": 1.0,
                "securitisation": 0.95, "restructure": 0.0}  # fmt: skip
    for channel, share in expected.items():
        if channel in shares.index:
            assert tuple(shares.loc[channel]) == (share, share), channel
    restructured = merged[merged["channel"] == "restructure"]
    assert (restructured["classification"] != "loss").all()
    assert restructured["viability"].all()
    write_off = merged[merged["channel"] == "write_off"]
    assert (merged.loc[merged["channel"] == "write_off", "pnl"]
            == -(write_off["balance"] - write_off["provision"]).round(2)).all()  # fmt: skip
    # Sorted by loan, then channel in STANDARD_CHANNELS order.
    order = pd.Index(STANDARD_CHANNELS).get_indexer(options["channel"])
    key = pd.Index(loans["loan_id"]).get_indexer(options["loan_id"]) * 10 + order
    assert (np.diff(key) > 0).all()


def assert_branch_invariants(p: SyntheticPortfolio) -> None:
    branches, loans = p.branches, p.loans
    assert list(branches.columns) == [c.name for c in BRANCH_COLUMNS]
    npl = loans[loans["inclusive"]].groupby("branch")["balance"].sum()
    npl = npl.reindex(branches["branch"]).fillna(0.0).to_numpy()
    assert (branches["inclusive_loans"].to_numpy() >= npl).all()
    assert (branches["profit"] > 0).all()
    assert branches["wage_rate"].between(0.08, 0.15).all()
    assert (branches["inclusive_loans_start"] < branches["inclusive_loans"]).all()


@settings(max_examples=25, deadline=None)
@given(
    n_loans=st.integers(1, 80),
    n_branches=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_hold_for_any_small_portfolio(n_loans: int, n_branches: int, seed: int) -> None:
    p = make_portfolio(n_loans, n_branches, seed)
    assert_loan_invariants(p, n_loans, n_branches)
    assert_option_invariants(p)
    assert_branch_invariants(p)
    policy = p.policy_dict()
    assert policy["write_off"]["quota"] >= 0


@pytest.mark.parametrize(("n_loans", "n_branches", "seed"), [SAMPLE, (5000, 30, 1), (700, 3, 9)])
def test_invariants_hold_for_larger_portfolios(n_loans: int, n_branches: int, seed: int) -> None:
    p = make_portfolio(n_loans, n_branches, seed)
    assert_loan_invariants(p, n_loans, n_branches)
    assert_option_invariants(p)
    assert_branch_invariants(p)


def test_dtypes_are_canonical(sample: SyntheticPortfolio) -> None:
    kinds = {c.name: c.kind for c in (*LOAN_COLUMNS, *BRANCH_COLUMNS, *OPTION_COLUMNS)}
    for frame in frames(sample):
        for name, dtype in frame.dtypes.items():
            kind = kinds[str(name)]
            if kind == "bool":
                assert dtype == np.bool_, name
            elif kind in ("id", "text", "class"):
                assert pd.api.types.is_string_dtype(dtype), name
            else:
                assert dtype == np.float64, name
    loans = sample.loans
    assert loans["loan_id"].iloc[0] == "L0000001"
    assert list(sample.branches["branch"]) == [f"B{i:03d}" for i in range(1, 9)]


def test_money_is_rounded_to_cents(sample: SyntheticPortfolio) -> None:
    money = [c.name for c in LOAN_COLUMNS if c.kind == "money"]
    values = sample.loans[money].to_numpy()
    assert np.allclose(values, np.round(values, 2), rtol=0, atol=1e-6)
    for name in ("value", "pnl"):
        assert np.allclose(sample.options[name], sample.options[name].round(2), rtol=0, atol=1e-6)


def test_distributions_look_like_small_micro_npls(sample: SyntheticPortfolio) -> None:
    loans = sample.loans
    by_class = loans.groupby("classification")["balance"].sum()
    assert by_class["substandard"] > by_class["doubtful"] > by_class["loss"]
    coverage = loans.groupby("classification")[["provision", "balance"]].sum()
    rate = coverage["provision"] / coverage["balance"]
    assert rate["substandard"] < rate["doubtful"] < rate["loss"] <= 1
    assert 0.85 <= loans["small_micro"].mean() <= 0.91
    assert 1e5 < loans.loc[loans["small_micro"], "balance"].median() < 1e6
    assert (loans["npl_age_months"] > LONG_AGE_MONTHS).mean() > 0.05
    floors = loans.groupby("classification")["days_past_due"].min()
    assert floors["substandard"] >= 90 and floors["doubtful"] >= 180 and floors["loss"] >= 360
    assert (loans["recourse_days"] <= loans["days_past_due"]).all()
    ratio = loans.groupby("classification")["viability"].mean()
    assert ratio["loss"] < ratio["substandard"]


def test_some_branches_start_above_the_tolerance_threshold(sample: SyntheticPortfolio) -> None:
    npl = sample.loans[sample.loans["inclusive"]].groupby("branch")["balance"].sum()
    ratio = (
        npl.reindex(sample.branches["branch"]).to_numpy()
        / sample.branches["inclusive_loans"].to_numpy()
    )
    above = ratio > sample.threshold
    assert 1 <= above.sum() < len(ratio)
    assert (ratio[~above] >= 0.015).all() and (ratio < 0.08).all()


def test_summary_names_the_key_figures(sample: SyntheticPortfolio) -> None:
    text = sample.summary()
    assert "2,000 loans" in text and "8 branches" in text and "above the threshold" in text
    assert repr(sample) == "SyntheticPortfolio(n_loans=2000, n_branches=8, seed=2022)"


# --- policy ---------------------------------------------------------------------------------


def test_policy_dict_has_every_section(sample: SyntheticPortfolio) -> None:
    policy = sample.policy_dict()
    assert policy["mode"] == {"mode": "whole_loan"}
    assert policy["long_age"] == {"months": LONG_AGE_MONTHS}
    assert policy["tolerance"] == {"bank_npl_ratio": 0.0159, "margin": 0.03, "enforce": True}
    assert policy["wage_pool"] == {"consider_share": 0.0, "rate": 0.1}
    sec = policy["securitisation"]
    assert 0 < sec["min_pool"] <= sec["max_pool"] and sec["fixed_cost"] > 0
    for money in (policy["write_off"]["quota"], policy["bulk_transfer"]["capacity"],
                  sec["min_pool"], sec["max_pool"], policy["profit"]["max_loss"]):  # fmt: skip
        assert money == round(money) and money >= 0
    assert isinstance(policy["bulk_transfer"]["min_loans"], int)
    assert isinstance(policy["restructure"]["max_loans"], int)


def solve_canonical(p: SyntheticPortfolio, whole_loan: bool) -> tuple[bool, dict[str, float]]:
    """Solve the model (docs/model.md) with scipy's HiGHS; success and each budget's slack."""
    loans, options, policy = p.loans, p.options, p.policy_dict()
    n, m = len(loans), len(options)
    row = pd.Index(loans["loan_id"]).get_indexer(options["loan_id"])
    channel = options["channel"].to_numpy(str)
    scale = 1e6  # money in CNY millions keeps HiGHS well conditioned
    balance = loans["balance"].to_numpy(float)[row] / scale
    nv, bulk_y, sec_y = m + 2, m, m + 1
    fixed = policy["securitisation"]["fixed_cost"] / scale
    cost = np.concatenate([-options["value"].to_numpy(float) / scale, [0.0, fixed]])

    upper = np.ones(nv)
    has_other = np.bincount(row, weights=channel != "retain", minlength=n) > 0
    can_write_off = np.zeros(n, bool)
    can_write_off[row[channel == "write_off"]] = True
    long_aged = (loans["npl_age_months"].to_numpy() >= policy["long_age"]["months"]) & has_other
    priority = loans["small_micro"].to_numpy(bool) & can_write_off
    upper[:m][(channel == "retain") & (long_aged | priority)[row]] = 0
    upper[:m][(channel == "restructure") & priority[row]] = 0

    def coef(name: str, weight: np.ndarray | float, y: int | None = None, yw: float = 0.0):
        r = np.zeros(nv)
        r[:m] = np.where(channel == name, weight, 0.0) if name else weight
        if y is not None:
            r[y] = yw
        return r

    budgets = {
        "write_off.quota": (coef("write_off", balance), policy["write_off"]["quota"] / scale),
        "bulk.capacity": (
            coef("bulk_transfer", balance, bulk_y, -policy["bulk_transfer"]["capacity"] / scale),
            0.0,
        ),
        "bulk.min_loans": (
            coef("bulk_transfer", -1.0, bulk_y, policy["bulk_transfer"]["min_loans"]),
            0.0,
        ),
        "sec.max_pool": (
            coef("securitisation", balance, sec_y,
                 -policy["securitisation"]["max_pool"] / scale), 0.0,
        ),
        "sec.min_pool": (
            coef("securitisation", -balance, sec_y,
                 policy["securitisation"]["min_pool"] / scale), 0.0,
        ),
        "restructure.max_loans": (coef("restructure", 1.0), policy["restructure"]["max_loans"]),
        "profit.max_loss": (
            coef("", -options["pnl"].to_numpy(float) / scale, sec_y, fixed),
            policy["profit"]["max_loss"] / scale,
        ),
    }  # fmt: skip
    tau = p.threshold
    branch = pd.Index(p.branches["branch"]).get_indexer(loans["branch"])
    inclusive = loans["inclusive"].to_numpy(bool)
    npl = np.bincount(branch, loans["balance"] * inclusive, len(p.branches)) / scale
    total = p.branches["inclusive_loans"].to_numpy(float) / scale
    weight = -(1 - tau) * balance * options["derecognised"].to_numpy(float) * inclusive[row]
    tolerance = sp.csr_matrix((weight, (branch[row], np.arange(m))), shape=(len(total), nv))

    constraints = [
        LinearConstraint(sp.csr_matrix((np.ones(m), (row, np.arange(m))), shape=(n, nv)), 1, 1),
        LinearConstraint(tolerance, -np.inf, tau * total - npl),
        *(LinearConstraint(r[None, :], -np.inf, hi) for r, hi in budgets.values()),
    ]
    result = milp(
        cost,
        constraints=constraints,
        bounds=Bounds(np.zeros(nv), upper),
        integrality=np.full(nv, int(whole_loan)),
        options={"time_limit": 60, "mip_rel_gap": 1e-3},
    )
    if result.x is None:
        return False, {}
    slack = {name: float(hi - r @ result.x) for name, (r, hi) in budgets.items()}
    slack["tolerance"] = float(np.min(tau * total - npl - tolerance @ result.x))
    return True, slack


@pytest.mark.parametrize(("n_loans", "n_branches", "seed"), [SAMPLE, (600, 5, 3), (60, 2, 8)])
def test_policy_is_feasible_and_several_budgets_bind(
    n_loans: int, n_branches: int, seed: int
) -> None:
    feasible, slack = solve_canonical(make_portfolio(n_loans, n_branches, seed), whole_loan=False)
    assert feasible
    assert min(slack.values()) > -1e-6
    binding = {name for name, s in slack.items() if s < 1e-6}
    assert len(binding) >= 3, slack


def test_sample_policy_is_feasible_in_whole_loan_mode(sample: SyntheticPortfolio) -> None:
    feasible, slack = solve_canonical(sample, whole_loan=True)
    assert feasible
    assert min(slack.values()) > -1e-6


# --- bundled sample -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "attr", "columns"),
    [
        ("portfolio.csv", "loans", LOAN_COLUMNS),
        ("branches.csv", "branches", BRANCH_COLUMNS),
        ("options.csv", "options", OPTION_COLUMNS),
    ],
)
def test_bundled_csv_equals_the_generator(
    sample: SyntheticPortfolio, file: str, attr: str, columns: tuple
) -> None:
    path = DATA / file
    assert path.exists(), f"run scripts/make_sample.py to create {path}"
    read = pd.read_csv(path)
    expected: pd.DataFrame = getattr(sample, attr)
    assert list(read.columns) == list(expected.columns)
    money = [c.name for c in columns if c.kind == "money"]
    for name in money:
        np.testing.assert_allclose(read[name], expected[name], rtol=0, atol=0.005)
    others = [name for name in expected.columns if name not in money]
    pd.testing.assert_frame_equal(read[others], expected[others], check_dtype=False)


def test_bundled_scenarios_and_history_equal_their_generators() -> None:
    """scenarios.csv: the standard stresses of the bundled portfolio; history.csv: 300
    loans over 24 months of the example chain (``scripts/make_sample.py`` writes both)."""
    from npl_disposal import read_portfolio
    from npl_disposal.datasets import make_history
    from npl_disposal.valuation.stress import stress_scenarios

    portfolio = read_portfolio(DATA / "portfolio.csv", DATA / "branches.csv")
    expected = stress_scenarios(portfolio)
    read = pd.read_csv(DATA / "scenarios.csv")
    pd.testing.assert_frame_equal(read, expected, check_dtype=False, rtol=1e-12, atol=0)
    history = pd.read_csv(DATA / "history.csv")
    drawn = make_history(300, 24, seed=SAMPLE[2])
    assert list(history.columns) == list(drawn.columns)
    assert history["loan_id"].tolist() == drawn["loan_id"].tolist()
    assert (history["period"].to_numpy() == drawn["period"].to_numpy()).all()
    assert history["state"].tolist() == drawn["state"].astype(str).tolist()


def test_bundled_sample_is_small() -> None:
    files = ["portfolio.csv", "branches.csv", "options.csv", "policy.toml"]
    assert sum((DATA / name).stat().st_size for name in files) < 1_000_000


def test_bundled_policy_equals_policy_dict(sample: SyntheticPortfolio) -> None:
    with (DATA / "policy.toml").open("rb") as handle:
        assert tomllib.load(handle) == sample.policy_dict()

"""Drawing a synthetic portfolio: loans, synthetic channel options and the branch table."""


from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.datasets._calibration import (
    ABOVE_THRESHOLD_EXCESS,
    AGE_SHAPE,
    BALANCE_MEDIAN,
    BALANCE_SIGMA,
    BANK_DISCOUNT_RATE,
    BANK_NPL_RATIO,
    BRANCH_DIRICHLET_ALPHA,
    BULK,
    BULK_AGE_DECAY_MONTHS,
    BULK_CLASS_FACTOR,
    BULK_FEES,
    BULK_INELIGIBLE_SHARE,
    BULK_PRICE,
    BULK_PRICE_CAP,
    BULK_PRICE_SIGMA,
    CLASS_SHARES,
    COLLATERAL_DECAY_MONTHS,
    COLLATERAL_SIGMA,
    COLLATERAL_TO_BALANCE,
    COLLATERAL_TYPE_SHARES,
    COLLATERAL_TYPES,
    COLLECTION_COST,
    DAYS_PER_MONTH,
    DPD_FLOOR,
    GUARANTEE_COVER_RANGE,
    GUARANTEE_PAY_RATE,
    GUARANTEED_SHARE_OF_SMALL_MICRO,
    INCLUSIVE_CREDIT_LIMIT,
    INCLUSIVE_GROWTH_RANGE,
    INCLUSIVE_NPL_RATIO_RANGE,
    INCLUSIVE_SHARE_OF_LOANS,
    INCLUSIVE_SHARE_OF_SMALL_MICRO,
    INDUSTRIES,
    INDUSTRY_SHARES,
    INTEREST_RATE,
    INVESTOR_DISCOUNT_RATE,
    LIQUIDATION_RATE,
    LONG_AGE_MONTHS,
    MAX_AGE_MONTHS,
    MEAN_AGE_MONTHS,
    MIN_BALANCE,
    MODIFICATION_LOSS,
    PROFIT_ON_LOANS,
    PROVISION_RATE_RANGE,
    RECOURSE_LAG_MONTHS,
    RECOVERY_DECAY_MONTHS,
    REDEFAULT_PER_MONTH,
    REDEFAULT_PROBABILITY,
    RESTRUCTURE,
    RESTRUCTURED_PV_FACTOR,
    SECURITISATION_DERECOGNISED,
    SECURITISATION_GRANULAR_BALANCE,
    SECURITISATION_SERVICING,
    SMALL_MICRO_SHARE,
    TOLERANCE_MARGIN,
    TOLERANCE_REACH,
    UNSECURED_RECOVERY,
    VIABILITY_DECAY_MONTHS,
    VIABLE_SHARE,
    WAGE_RATE_RANGE,
    WRITE_OFF,
    WRITE_OFF_MIN_AGE_MONTHS,
    WRITE_OFF_MIN_RECOURSE_DAYS,
    WRITE_OFF_RECOVERY,
    YEARS_TO_RECOVER,
)
from npl_disposal.datasets._sizing import size_policy
from npl_disposal.io.portfolio import inclusive_npl
from npl_disposal.io.schema import (
    BRANCH_COLUMNS,
    LOAN_COLUMNS,
    NPL_CLASSES,
    OPTION_COLUMNS,
    STANDARD_CHANNELS,
)

__all__ = ["SyntheticPortfolio", "make_portfolio"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class SyntheticPortfolio:
    """A synthetic NPL portfolio: loans, branches and (synthetic) channel options.

    Money is CNY yuan (float64, cents); ages are months; shares are in [0, 1].
    """

    loans: pd.DataFrame
    branches: pd.DataFrame
    options: pd.DataFrame
    seed: int = 0
    bank_npl_ratio: float = BANK_NPL_RATIO

    def __repr__(self) -> str:
        return (
            f"SyntheticPortfolio(n_loans={len(self.loans)}, "
            f"n_branches={len(self.branches)}, seed={self.seed})"
        )

    @property
    def threshold(self) -> float:
        """Inclusive NPL tolerance threshold: bank NPL ratio + 3 percentage points."""
        return self.bank_npl_ratio + TOLERANCE_MARGIN

    def policy_dict(self) -> dict[str, dict[str, Any]]:
        """Return a feasible policy shaped like ``policy.toml`` (money in whole CNY yuan).

        Each budget is the larger of what a rule-abiding baseline whole-loan plan uses
        (plus 10 % headroom, so that plan stays feasible) and a share of what the
        best-value plan would use (so budgets bind: on the sample's LP relaxation the
        write-off quota, bulk capacity, securitisation pool and restructuring cap do).
        """
        return size_policy(self)

    def summary(self) -> str:
        """Describe the portfolio in a few lines a risk officer reads first."""
        loans, branches = self.loans, self.branches
        by_class = loans.groupby("classification", sort=False)["balance"].sum()
        class_mix = ", ".join(
            f"{c} {by_class.get(c, 0.0) / loans['balance'].sum():.0%}" for c in NPL_CLASSES
        )
        npl = inclusive_npl(loans, branches["branch"].tolist())
        ratio = npl / branches["inclusive_loans"].to_numpy()
        above = int((ratio > self.threshold).sum())
        counts = self.options["channel"].value_counts()
        eligible = ", ".join(f"{c} {int(counts.get(c, 0))}" for c in STANDARD_CHANNELS)
        return "\n".join([
            f"Synthetic NPL portfolio (seed {self.seed}): {len(loans):,} loans, "
            f"{len(branches)} branches, balance CNY {loans['balance'].sum() / 1e6:,.1f} m, "
            f"provisions CNY {loans['provision'].sum() / 1e6:,.1f} m",
            f"Class mix by balance: {class_mix}",
            f"Small/micro {loans['small_micro'].mean():.0%} of loans, inclusive "
            f"{loans['inclusive'].mean():.0%}; aged {LONG_AGE_MONTHS}m+ "
            f"{(loans['npl_age_months'] >= LONG_AGE_MONTHS).mean():.0%}",
            f"Inclusive NPL ratio by branch {ratio.min():.2%} to {ratio.max():.2%}; "
            f"{above} branch(es) above the threshold {self.threshold:.2%}",
            f"Eligible loans by channel (synthetic economics): {eligible}",
        ])  # fmt: skip


def make_portfolio(n_loans: int = 2000, n_branches: int = 8, seed: int = 0) -> SyntheticPortfolio:
    """Draw a synthetic small/micro NPL portfolio, deterministic in ``seed``.

    Args:
        n_loans: number of non-performing loans (>= 1).
        n_branches: number of branches ``B001``... (>= 1); sizes follow Dirichlet weights.
        seed: seed of the numpy random generator.

    Returns:
        A :class:`SyntheticPortfolio` with canonical ``loans``, ``branches`` and ``options``.

    """
    if n_loans < 1 or n_branches < 1:
        raise ValueError(f"n_loans and n_branches must be >= 1, got {n_loans}, {n_branches}")
    rng = np.random.default_rng(seed)
    loans = _draw_loans(rng, n_loans, n_branches)
    loan = _LoanArrays.of(loans)
    eligible = _channel_eligibility(rng, loan)
    values = _channel_values(rng, loan)
    options = _build_options(loans, eligible, values, _channel_pnl(values, loan))
    full_exit = eligible[:, WRITE_OFF] | eligible[:, BULK]
    branches = _build_branches(rng, loans, full_exit, n_branches)
    return SyntheticPortfolio(loans, branches, options, seed, BANK_NPL_RATIO)


# --- Loans ----------------------------------------------------------------------------------


def _ids(prefix: str, count: int, width: int) -> pd.Series:
    """Return ids ``prefix`` + zero-padded 1..count (e.g. ``L0000001``) as a str Series."""
    digits = pd.Series(np.arange(1, count + 1)).astype("str").str.zfill(width)
    return prefix + digits


def _labels(names: tuple[str, ...], codes: IntArray) -> pd.api.extensions.ExtensionArray:
    """Return the string labels of integer ``codes`` without a Python loop."""
    return pd.array(list(names), dtype="str").take(codes)


def _cents(values: FloatArray) -> FloatArray:
    """Round CNY amounts to cents."""
    return np.round(values, 2)


def _draw_loans(rng: np.random.Generator, n: int, n_branches: int) -> pd.DataFrame:
    """Draw the loan table in canonical columns and dtypes."""
    weights = rng.dirichlet(np.full(n_branches, BRANCH_DIRICHLET_ALPHA))
    branch = rng.choice(n_branches, size=n, p=weights)
    cls = rng.choice(len(NPL_CLASSES), size=n, p=CLASS_SHARES)
    age = np.minimum(
        np.floor(rng.gamma(AGE_SHAPE, np.asarray(MEAN_AGE_MONTHS)[cls] / AGE_SHAPE)),
        MAX_AGE_MONTHS,
    )
    small_micro = rng.random(n) < SMALL_MICRO_SHARE
    balance = _draw_balances(rng, small_micro)
    inclusive = (
        small_micro
        & (rng.random(n) < INCLUSIVE_SHARE_OF_SMALL_MICRO)
        & (balance <= INCLUSIVE_CREDIT_LIMIT)
    )
    low, high = np.asarray(PROVISION_RATE_RANGE).T
    provision = np.minimum(_cents(balance * rng.uniform(low[cls], high[cls])), balance)
    collateral_type, collateral_value = _draw_collateral(rng, balance)
    days_past_due, recourse_days = _draw_arrears(rng, cls, age)
    columns: dict[str, Any] = {
        "loan_id": _ids("L", n, max(7, len(str(n)))),
        "branch": _labels(_branch_names(n_branches), branch),
        "balance": balance,
        "provision": provision,
        "classification": _labels(NPL_CLASSES, cls),
        "npl_age_months": age,
        "small_micro": small_micro,
        "inclusive": inclusive,
        "collateral_value": collateral_value,
        "guarantee_cover": _draw_guarantee_cover(rng, small_micro),
        "recourse_days": recourse_days,
        "days_past_due": days_past_due,
        "interest_receivable": _cents(
            balance * INTEREST_RATE * np.minimum(age + 3.0, 36.0) / 12.0 * rng.uniform(0.5, 1.0, n)
        ),
        "industry": _labels(INDUSTRIES, rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_SHARES)),
        "viability": rng.random(n)
        < np.asarray(VIABLE_SHARE)[cls] * np.exp(-age / VIABILITY_DECAY_MONTHS),
        "collateral_type": _labels(COLLATERAL_TYPES, collateral_type),
    }
    assert list(columns) == [c.name for c in LOAN_COLUMNS]
    return pd.DataFrame(columns)


def _branch_names(n_branches: int) -> tuple[str, ...]:
    """Return branch codes ``B001``, ``B002``... (wider when there are over 999)."""
    return tuple(_ids("B", n_branches, max(3, len(str(n_branches)))))


def _draw_balances(rng: np.random.Generator, small_micro: BoolArray) -> FloatArray:
    """Draw lognormal balances (CNY yuan): small/micro median 300k, others 4m."""
    median = np.where(small_micro, BALANCE_MEDIAN["small_micro"], BALANCE_MEDIAN["other"])
    balance = median * np.exp(rng.normal(0.0, BALANCE_SIGMA, small_micro.size))
    return _cents(np.maximum(balance, MIN_BALANCE))


def _draw_collateral(rng: np.random.Generator, balance: FloatArray) -> tuple[IntArray, FloatArray]:
    """Draw the collateral type code and market value (CNY yuan, 0 when unsecured)."""
    kind = rng.choice(len(COLLATERAL_TYPES), size=balance.size, p=COLLATERAL_TYPE_SHARES)
    ratio = np.asarray(COLLATERAL_TO_BALANCE)[kind]
    value = balance * ratio * np.exp(rng.normal(0.0, COLLATERAL_SIGMA, balance.size))
    return kind, _cents(value)


def _draw_guarantee_cover(rng: np.random.Generator, small_micro: BoolArray) -> FloatArray:
    """Draw the government guarantee cover (share of the loss; 0 without a guarantee)."""
    guaranteed = small_micro & (rng.random(small_micro.size) < GUARANTEED_SHARE_OF_SMALL_MICRO)
    cover = rng.uniform(*GUARANTEE_COVER_RANGE, small_micro.size)
    return np.where(guaranteed, np.round(cover, 4), 0.0)


def _draw_arrears(
    rng: np.random.Generator, cls: IntArray, age: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Draw days past due (class floor + part of the age) and legal recourse days (<= dpd)."""
    n = age.size
    past_due = np.asarray(DPD_FLOOR)[cls] + np.floor(age * DAYS_PER_MONTH * rng.uniform(0.2, 1, n))
    lag = rng.uniform(*RECOURSE_LAG_MONTHS, n)
    recourse = np.floor(np.maximum(age - lag, 0.0) * DAYS_PER_MONTH * rng.uniform(0.4, 1.0, n))
    return past_due, np.minimum(recourse, past_due)


# --- Options (synthetic channel economics) --------------------------------------------------


@dataclass(frozen=True)
class _LoanArrays:
    """The loan columns the synthetic channel economics use, as numpy arrays."""

    balance: FloatArray
    provision: FloatArray
    cls: IntArray
    age: FloatArray
    collateral: FloatArray
    collateral_kind: IntArray
    cover: FloatArray
    interest: FloatArray
    recourse: FloatArray
    viable: BoolArray

    @classmethod
    def of(cls, loans: pd.DataFrame) -> _LoanArrays:
        """Extract the arrays from a canonical loan table."""
        return cls(
            balance=loans["balance"].to_numpy(float),
            provision=loans["provision"].to_numpy(float),
            cls=pd.Index(NPL_CLASSES).get_indexer(loans["classification"]),
            age=loans["npl_age_months"].to_numpy(float),
            collateral=loans["collateral_value"].to_numpy(float),
            collateral_kind=pd.Index(COLLATERAL_TYPES).get_indexer(loans["collateral_type"]),
            cover=loans["guarantee_cover"].to_numpy(float),
            interest=loans["interest_receivable"].to_numpy(float),
            recourse=loans["recourse_days"].to_numpy(float),
            viable=loans["viability"].to_numpy(bool),
        )

    @property
    def net_book(self) -> FloatArray:
        """Net book value: balance less provision (CNY yuan)."""
        return self.balance - self.provision

    @property
    def secured(self) -> BoolArray:
        """Whether the loan has collateral."""
        return self.collateral_kind != 0


def _gross_recovery(loan: _LoanArrays) -> FloatArray:
    """Return expected undiscounted collection recoveries (CNY yuan, at most the balance)."""
    unsecured = loan.balance * np.asarray(UNSECURED_RECOVERY)[loan.cls]
    unsecured *= np.exp(-loan.age / RECOVERY_DECAY_MONTHS)
    from_collateral = loan.collateral * np.asarray(LIQUIDATION_RATE)[loan.collateral_kind]
    from_collateral *= np.exp(-loan.age / COLLATERAL_DECAY_MONTHS)
    recovered = np.minimum(unsecured + from_collateral, loan.balance)
    return recovered + GUARANTEE_PAY_RATE * loan.cover * (loan.balance - recovered)


def _channel_values(rng: np.random.Generator, loan: _LoanArrays) -> FloatArray:
    """Return the (n, 5) value matrix in STANDARD_CHANNELS order (CNY yuan, synthetic)."""
    n = loan.balance.size
    gross = _gross_recovery(loan)
    years = np.asarray(YEARS_TO_RECOVER)[loan.cls]
    retain = gross * ((1 + BANK_DISCOUNT_RATE) ** -years - COLLECTION_COST)
    write_off = loan.balance * rng.uniform(*WRITE_OFF_RECOVERY, n)
    price_rate = np.where(loan.secured, BULK_PRICE["secured"], BULK_PRICE["unsecured"])
    price_rate = price_rate * np.asarray(BULK_CLASS_FACTOR)[loan.cls]
    price_rate *= np.exp(-loan.age / BULK_AGE_DECAY_MONTHS + rng.normal(0, BULK_PRICE_SIGMA, n))
    price = np.minimum(price_rate * (loan.balance + loan.interest), BULK_PRICE_CAP * gross)
    bulk = price * (1 - BULK_FEES)
    securitised = gross * (1 + INVESTOR_DISCOUNT_RATE) ** -years * (1 - SECURITISATION_SERVICING)
    redefault = np.asarray((*REDEFAULT_PROBABILITY, 1.0))[loan.cls]
    redefault = np.minimum(redefault + REDEFAULT_PER_MONTH * loan.age, 0.9)
    restructure = (1 - redefault) * loan.balance * RESTRUCTURED_PV_FACTOR + redefault * retain
    values = np.column_stack([retain, write_off, bulk, securitised, restructure])
    return _cents(np.clip(values, 0.0, loan.balance[:, None]))


def _channel_eligibility(rng: np.random.Generator, loan: _LoanArrays) -> BoolArray:
    """Return the (n, 5) eligibility matrix (synthetic rules, see the module docstring)."""
    n = loan.balance.size
    loss = loan.cls == NPL_CLASSES.index("loss")
    write_off = (
        loss
        | (loan.recourse >= WRITE_OFF_MIN_RECOURSE_DAYS)
        | (loan.age >= WRITE_OFF_MIN_AGE_MONTHS)
    )
    bulk = rng.random(n) >= BULK_INELIGIBLE_SHARE
    securitisation = loan.secured | (loan.balance <= SECURITISATION_GRANULAR_BALANCE)
    restructure = loan.viable & ~loss
    return np.column_stack([np.ones(n, bool), write_off, bulk, securitisation, restructure])


def _channel_pnl(values: FloatArray, loan: _LoanArrays) -> FloatArray:
    """Return the (n, 5) profit-impact matrix: gain or loss against net book value."""
    pnl = values - loan.net_book[:, None]
    pnl[:, WRITE_OFF] = -loan.net_book
    pnl[:, RESTRUCTURE] = -MODIFICATION_LOSS * loan.balance
    return _cents(pnl)


def _build_options(
    loans: pd.DataFrame, eligible: BoolArray, values: FloatArray, pnl: FloatArray
) -> pd.DataFrame:
    """Build the options table, sorted by loan then channel in STANDARD_CHANNELS order."""
    derecognised = np.array([0.0, 1.0, 1.0, SECURITISATION_DERECOGNISED, 0.0])
    row, channel = np.nonzero(eligible)  # row-major: loan order, then channel order
    frame = pd.DataFrame({
        "loan_id": loans["loan_id"].array.take(row),
        "channel": _labels(STANDARD_CHANNELS, channel),
        "value": values[row, channel],
        "pnl": pnl[row, channel],
        "derecognised": derecognised[channel],
    })  # fmt: skip
    assert list(frame.columns) == [c.name for c in OPTION_COLUMNS]
    return frame


# --- Branches -------------------------------------------------------------------------------


def _sum_by_branch(loans: pd.DataFrame, branches: pd.DataFrame, weights: FloatArray) -> FloatArray:
    """Sum ``weights`` (one per loan) per row of ``branches``."""
    code = pd.Index(branches["branch"]).get_indexer(loans["branch"])
    known = code >= 0
    sums = np.bincount(code[known], weights=weights[known], minlength=len(branches))
    return sums.astype(np.float64)


def _build_branches(
    rng: np.random.Generator, loans: pd.DataFrame, full_exit: BoolArray, n_branches: int
) -> pd.DataFrame:
    """Build the branch table; a few branches start above the tolerance threshold.

    ``full_exit`` flags the loans that write-off or bulk transfer can take out entirely.
    """
    frame = pd.DataFrame({"branch": pd.Series(_branch_names(n_branches), dtype="str")})
    npl = inclusive_npl(loans, frame["branch"].tolist())
    exit_weights = loans["balance"].to_numpy(float) * loans["inclusive"].to_numpy(bool) * full_exit
    derecognisable = _sum_by_branch(loans, frame, exit_weights)
    threshold = BANK_NPL_RATIO + TOLERANCE_MARGIN
    ratio = _branch_npl_ratios(rng, npl, derecognisable, threshold)
    typical = float(np.mean(npl[npl > 0] / ratio[npl > 0])) if (npl > 0).any() else 1e8
    inclusive_loans = np.round(np.where(npl > 0, npl / ratio, typical), 2)
    profit = inclusive_loans / INCLUSIVE_SHARE_OF_LOANS * rng.uniform(*PROFIT_ON_LOANS, n_branches)
    frame["inclusive_loans"] = inclusive_loans
    frame["profit"] = np.maximum(np.round(profit), 1.0)
    frame["wage_rate"] = np.round(rng.uniform(*WAGE_RATE_RANGE, n_branches), 3)
    growth = rng.uniform(*INCLUSIVE_GROWTH_RANGE, n_branches)
    frame["inclusive_loans_start"] = np.round(inclusive_loans / (1 + growth))
    assert list(frame.columns) == [c.name for c in BRANCH_COLUMNS]
    return frame


def _branch_npl_ratios(
    rng: np.random.Generator, npl: FloatArray, derecognisable: FloatArray, threshold: float
) -> FloatArray:
    """Draw inclusive NPL ratios N_k / L_k; about a quarter of branches exceed ``threshold``.

    A branch is put above the threshold only if derecognising at most TOLERANCE_REACH of
    its write-off or bulk-eligible inclusive NPL brings it back within tolerance.
    """
    k = npl.size
    ratio = rng.uniform(*INCLUSIVE_NPL_RATIO_RANGE, k)
    share = np.divide(derecognisable, npl, out=np.zeros(k), where=npl > 0)
    # Largest ratio r with (N - D) <= threshold (L - D) for D = reach * share * N, L = N / r.
    ceiling = threshold / np.maximum(1 - TOLERANCE_REACH * (1 - threshold) * share, 1e-9)
    can_exceed = ceiling > threshold + ABOVE_THRESHOLD_EXCESS[0]
    order = rng.permutation(k)
    chosen = order[can_exceed[order]][: max(1, round(k / 4))]
    excess = rng.uniform(*ABOVE_THRESHOLD_EXCESS, k)
    above = np.minimum(threshold + excess, ceiling)
    ratio[chosen] = above[chosen]
    return ratio



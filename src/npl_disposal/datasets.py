"""Synthetic small/micro NPL portfolios for examples, tests and benchmarks.

:func:`make_portfolio` draws, from one seed and fully vectorised (2.4-3 s for 1M loans
on a 2-core machine), a portfolio in the canonical layout of DESIGN.md section 5:

* ``loans`` -- one row per non-performing loan, every column of
  :data:`npl_disposal.io.schema.LOAN_COLUMNS`, money in CNY yuan rounded to cents;
* ``branches`` -- per branch its inclusive small/micro loans (performing + NPL), profit,
  wage-pool rate and start-of-period inclusive loans;
* ``options`` -- per loan and eligible channel its value, profit impact and derecognised
  share. **These channel economics are synthetic** (simple closed-form recoveries, AMC
  prices and costs chosen to look plausible); the library's own valuation layer replaces
  them for real work.

:meth:`SyntheticPortfolio.policy_dict` proposes budgets, sized from what is eligible, under
which several constraints bind and a whole-loan plan is known to exist.

Calibration in one paragraph (sources and every parameter: ``docs/calibration.md``): the
bank's NPL ratio is 1.59 % (NFRA, commercial banks, end-2023) and the inclusive small/micro
tolerance is that ratio plus 3 percentage points (State Council executive meeting,
5 June 2019); inclusive loans are small/micro loans with a credit line of at most
CNY 10 million (CBIRC); specific provisions start at the PBoC 2002 guidance rates
(substandard 25 %, doubtful 50 %, loss 100 %) and are drawn within ranges; bulk-transfer
prices average about 30 % of principal plus interest (Credit Asset Registration & Transfer
Center pilot report 2022: 30.19 %; unsecured personal packages 2.65 %); securitisation keeps
a 5 % risk retention (PBoC/CBRC announcement, December 2013); government guarantees cover
40-80 % of a loss (National Financing Guarantee Fund: the bank keeps at least 20 %).
Balances, ages, class mix, collateral and recoveries are assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.io.portfolio import inclusive_npl
from npl_disposal.io.schema import (
    BRANCH_COLUMNS,
    LOAN_COLUMNS,
    NPL_CLASSES,
    OPTION_COLUMNS,
    STANDARD_CHANNELS,
)

__all__ = [
    "BANK_NPL_RATIO",
    "COLLATERAL_TYPES",
    "INCLUSIVE_CREDIT_LIMIT",
    "LONG_AGE_MONTHS",
    "TOLERANCE_MARGIN",
    "SyntheticPortfolio",
    "make_portfolio",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

# --- Regulatory figures (sourced: docs/calibration.md) --------------------------------------
#: Commercial banks' NPL ratio, end-2023 (NFRA quarterly statistics).
BANK_NPL_RATIO = 0.0159
#: Inclusive small/micro NPL tolerance above the bank's ratio (State Council, 2019).
TOLERANCE_MARGIN = 0.03
#: Credit line (CNY yuan) up to which a small/micro loan counts as inclusive (普惠型).
INCLUSIVE_CREDIT_LIMIT = 10_000_000.0
#: NPL age (months) from which the policy asks for disposal (synthetic policy choice).
LONG_AGE_MONTHS = 36
#: Specific provision ranges by class (PBoC 2002 guidance rates 25 % / 50 % / 100 % within).
PROVISION_RATE_RANGE = ((0.25, 0.50), (0.50, 0.80), (0.95, 1.00))
#: Government financing guarantee cover of the loss (the bank keeps at least 20 %).
GUARANTEE_COVER_RANGE = (0.40, 0.80)
#: Share of a securitised loan that leaves the NPL stock (5 % risk retention).
SECURITISATION_DERECOGNISED = 0.95
#: Days past due at which each class typically starts (90+ / 180+ / 360+ days).
DPD_FLOOR = (90.0, 180.0, 360.0)

# --- Portfolio assumptions ------------------------------------------------------------------
SMALL_MICRO_SHARE = 0.88
INCLUSIVE_SHARE_OF_SMALL_MICRO = 0.85
#: Loan count shares of substandard, doubtful, loss.
CLASS_SHARES = (0.45, 0.35, 0.20)
#: Mean months since the loan became non-performing, by class (gamma, shape 1.5).
MEAN_AGE_MONTHS = (10.0, 22.0, 40.0)
AGE_SHAPE = 1.5
MAX_AGE_MONTHS = 180.0
#: Lognormal balance: median (CNY yuan) and log-sigma, small/micro and other borrowers.
BALANCE_MEDIAN = {"small_micro": 300_000.0, "other": 4_000_000.0}
BALANCE_SIGMA = 1.0
MIN_BALANCE = 1_000.0
COLLATERAL_TYPES = ("none", "real_estate", "equipment", "receivables")
COLLATERAL_TYPE_SHARES = (0.40, 0.42, 0.10, 0.08)
#: Median collateral value / balance and its log-sigma, by collateral type.
COLLATERAL_TO_BALANCE = (0.0, 0.80, 0.50, 0.40)
COLLATERAL_SIGMA = 0.5
GUARANTEED_SHARE_OF_SMALL_MICRO = 0.15
#: Contract rate (per year) used to accrue interest receivable.
INTEREST_RATE = 0.05
INDUSTRIES = (
    "manufacturing", "wholesale_retail", "construction", "accommodation_catering",
    "agriculture", "transport_logistics", "business_services", "other",
)  # fmt: skip
INDUSTRY_SHARES = (0.24, 0.30, 0.08, 0.08, 0.07, 0.07, 0.08, 0.08)
#: Probability that the borrower is viable for restructuring, by class, at age 0.
VIABLE_SHARE = (0.55, 0.30, 0.08)
VIABILITY_DECAY_MONTHS = 36.0
#: Legal recourse starts this many months after default (uniform range), then accrues at
#: a uniform 40-100 % pace.
RECOURSE_LAG_MONTHS = (3.0, 12.0)
DAYS_PER_MONTH = 30.4

# --- Synthetic channel economics (assumptions) ----------------------------------------------
UNSECURED_RECOVERY = (0.40, 0.22, 0.06)
RECOVERY_DECAY_MONTHS = 36.0
COLLATERAL_DECAY_MONTHS = 120.0
LIQUIDATION_RATE = (0.0, 0.60, 0.35, 0.30)
GUARANTEE_PAY_RATE = 0.90
YEARS_TO_RECOVER = (1.5, 2.0, 2.5)
BANK_DISCOUNT_RATE = 0.08
COLLECTION_COST = 0.03
WRITE_OFF_RECOVERY = (0.03, 0.10)
WRITE_OFF_MIN_RECOURSE_DAYS = 180.0
WRITE_OFF_MIN_AGE_MONTHS = 24.0
#: AMC price as a share of principal plus interest before age decay and noise.
BULK_PRICE = {"secured": 0.40, "unsecured": 0.06}
BULK_CLASS_FACTOR = (1.15, 1.00, 0.80)
BULK_AGE_DECAY_MONTHS = 60.0
BULK_PRICE_SIGMA = 0.2
BULK_FEES = 0.02
#: An AMC pays at most this share of the recoveries the bank expects from collection.
BULK_PRICE_CAP = 0.8
BULK_INELIGIBLE_SHARE = 0.03
SECURITISATION_GRANULAR_BALANCE = 500_000.0
INVESTOR_DISCOUNT_RATE = 0.06
SECURITISATION_SERVICING = 0.06
REDEFAULT_PROBABILITY = (0.30, 0.45)
REDEFAULT_PER_MONTH = 0.005
RESTRUCTURED_PV_FACTOR = 0.90
MODIFICATION_LOSS = 0.02

# --- Branch assumptions ---------------------------------------------------------------------
BRANCH_DIRICHLET_ALPHA = 1.5
INCLUSIVE_NPL_RATIO_RANGE = (0.015, 0.042)
#: Excess over the tolerance threshold of the branches drawn above it.
ABOVE_THRESHOLD_EXCESS = (0.003, 0.015)
#: Share of derecognisable inclusive NPL a branch above threshold needs, at most.
TOLERANCE_REACH = 0.6
#: Inclusive small/micro loans as a share of all loans (PBoC, March 2024: 13.5 %).
INCLUSIVE_SHARE_OF_LOANS = 0.135
PROFIT_ON_LOANS = (0.006, 0.012)
WAGE_RATE_RANGE = (0.08, 0.15)
INCLUSIVE_GROWTH_RANGE = (0.02, 0.08)

# --- Policy sizing --------------------------------------------------------------------------
BASELINE_HEADROOM = 1.10
DEMAND_SHARE = {"write_off": 0.8, "bulk_transfer": 0.8, "securitisation": 0.6,
                "restructure": 0.5, "profit": 0.9}  # fmt: skip
BULK_MIN_LOANS = 10
MIN_POOL_SHARE = 0.25
SECURITISATION_FIXED_COST = {"rate": 0.005, "floor": 300_000.0}

RETAIN, WRITE_OFF, BULK, SECURITISATION, RESTRUCTURE = range(5)


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
        return _size_policy(self)

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


# --- Policy sizing --------------------------------------------------------------------------


@dataclass(frozen=True)
class _OptionMatrices:
    """Options as (n, 5) matrices in STANDARD_CHANNELS order; NaN where not eligible."""

    value: FloatArray
    pnl: FloatArray
    derecognised: FloatArray

    @classmethod
    def of(cls, loans: pd.DataFrame, options: pd.DataFrame) -> _OptionMatrices:
        """Pivot the options table onto the loan order of ``loans``."""
        row = pd.Index(loans["loan_id"]).get_indexer(options["loan_id"])
        col = pd.Index(STANDARD_CHANNELS).get_indexer(options["channel"])
        keep = (row >= 0) & (col >= 0)
        shape = (len(loans), len(STANDARD_CHANNELS))
        out = []
        for name in ("value", "pnl", "derecognised"):
            matrix = np.full(shape, np.nan)
            matrix[row[keep], col[keep]] = options[name].to_numpy(float)[keep]
            out.append(matrix)
        return cls(*out)

    @property
    def eligible(self) -> BoolArray:
        """Where a channel is eligible."""
        return ~np.isnan(self.value)


def _allowed(portfolio: SyntheticPortfolio, options: _OptionMatrices) -> BoolArray:
    """Eligible channels left once the long-age and write-off priority rules apply."""
    loans = portfolio.loans
    allowed = options.eligible.copy()
    other = allowed[:, 1:].any(axis=1)
    long_aged = (loans["npl_age_months"].to_numpy(float) >= LONG_AGE_MONTHS) & other
    priority = loans["small_micro"].to_numpy(bool) & allowed[:, WRITE_OFF]
    allowed[long_aged | priority, RETAIN] = False
    allowed[priority, RESTRUCTURE] = False
    return allowed


def _best_value_plan(options: _OptionMatrices, allowed: BoolArray) -> IntArray:
    """Channel per loan with the highest value among allowed ones (budgets ignored)."""
    return np.argmax(np.where(allowed, options.value, -np.inf), axis=1)


def _baseline_plan(
    portfolio: SyntheticPortfolio, options: _OptionMatrices, allowed: BoolArray
) -> IntArray:
    """Return a plain whole-loan plan that meets every rule: the anchor of feasibility.

    Loans the rules push out of retain are sold in bulk (the exit that costs the least
    profit), else written off, else securitised, else restructured; everything else is
    retained; then branches above tolerance sell their largest retained inclusive loans.
    """
    plan = np.full(allowed.shape[0], RETAIN)
    forced = ~allowed[:, RETAIN]
    for channel in (RESTRUCTURE, SECURITISATION, WRITE_OFF, BULK):  # last match wins
        plan[forced & allowed[:, channel]] = channel
    return _restore_tolerance(portfolio, options, allowed, plan)


def _restore_tolerance(
    portfolio: SyntheticPortfolio, options: _OptionMatrices, allowed: BoolArray, plan: IntArray
) -> IntArray:
    """Move the largest retained inclusive loans of branches above tolerance to full exit."""
    loans, branches, tau = portfolio.loans, portfolio.branches, portfolio.threshold
    branch = pd.Index(branches["branch"]).get_indexer(loans["branch"])
    inclusive = loans["inclusive"].to_numpy(bool)
    balance = loans["balance"].to_numpy(float)
    taken = np.nan_to_num(options.derecognised[np.arange(plan.size), plan])
    k = len(branches)
    npl = np.bincount(branch, weights=balance * inclusive, minlength=k)
    derec = np.bincount(branch, weights=balance * taken * inclusive, minlength=k)
    total = branches["inclusive_loans"].to_numpy(float)
    need = np.maximum((npl - derec) - tau * (total - derec), 0.0) / (1 - tau)
    exit_channel = np.where(allowed[:, BULK], BULK, WRITE_OFF)
    candidate = inclusive & (plan == RETAIN) & allowed[np.arange(plan.size), exit_channel]
    idx = np.flatnonzero(candidate)
    idx = idx[np.lexsort((-balance[idx], branch[idx]))]
    cumulative = pd.Series(balance[idx]).groupby(branch[idx]).cumsum().to_numpy()
    chosen = idx[cumulative - balance[idx] < need[branch[idx]]]
    plan = plan.copy()
    plan[chosen] = exit_channel[chosen]
    return plan


@dataclass(frozen=True)
class _Usage:
    """What a whole-loan plan uses of each budget (CNY yuan or loan counts)."""

    write_off: float
    bulk_transfer: float
    bulk_loans: int
    securitisation: float
    restructure: int
    pnl: float


def _usage(balance: FloatArray, options: _OptionMatrices, plan: IntArray) -> _Usage:
    """Sum a plan's budget usage and profit impact."""
    by_channel = np.bincount(plan, weights=balance, minlength=len(STANDARD_CHANNELS))
    counts = np.bincount(plan, minlength=len(STANDARD_CHANNELS))
    return _Usage(
        write_off=float(by_channel[WRITE_OFF]),
        bulk_transfer=float(by_channel[BULK]),
        bulk_loans=int(counts[BULK]),
        securitisation=float(by_channel[SECURITISATION]),
        restructure=int(counts[RESTRUCTURE]),
        pnl=float(np.nansum(options.pnl[np.arange(plan.size), plan])),
    )


def _budget(baseline: float, demand: float, share: float) -> float:
    """Whole-yuan budget: baseline plus headroom, or a share of demand if larger."""
    return float(math.ceil(max(BASELINE_HEADROOM * baseline, share * demand)))


def _size_policy(portfolio: SyntheticPortfolio) -> dict[str, dict[str, Any]]:
    """Size every budget of the policy from a baseline plan and the best-value plan."""
    options = _OptionMatrices.of(portfolio.loans, portfolio.options)
    allowed = _allowed(portfolio, options)
    balance = portfolio.loans["balance"].to_numpy(float)
    base = _usage(balance, options, _baseline_plan(portfolio, options, allowed))
    best = _usage(balance, options, _best_value_plan(options, allowed))
    max_pool = _budget(base.securitisation, best.securitisation, DEMAND_SHARE["securitisation"])
    min_pool = float(math.floor(MIN_POOL_SHARE * max_pool))
    if base.securitisation > 0:
        min_pool = min(min_pool, float(math.floor(base.securitisation)))
    fixed_cost = float(round(max(SECURITISATION_FIXED_COST["floor"],
                                 SECURITISATION_FIXED_COST["rate"] * max_pool)))  # fmt: skip
    base_loss = -base.pnl + (fixed_cost if base.securitisation > 0 else 0.0)
    min_loans = min(BULK_MIN_LOANS, base.bulk_loans) if base.bulk_loans else BULK_MIN_LOANS
    return {
        "mode": {"mode": "whole_loan"},
        "long_age": {"months": LONG_AGE_MONTHS},
        "write_off": {"quota": _budget(base.write_off, best.write_off, DEMAND_SHARE["write_off"])},
        "bulk_transfer": {
            "capacity": _budget(
                base.bulk_transfer, best.bulk_transfer, DEMAND_SHARE["bulk_transfer"]
            ),
            "min_loans": int(min_loans),
        },
        "securitisation": {"min_pool": min_pool, "max_pool": max_pool, "fixed_cost": fixed_cost},
        "restructure": {
            "max_loans": int(
                max(base.restructure, math.floor(DEMAND_SHARE["restructure"] * best.restructure))
            )
        },
        "profit": {"max_loss": _budget(max(base_loss, 0.0), -best.pnl, DEMAND_SHARE["profit"])},
        "tolerance": {
            "bank_npl_ratio": portfolio.bank_npl_ratio,
            "margin": TOLERANCE_MARGIN,
            "enforce": True,
        },
        "wage_pool": {"consider_share": 0.0, "rate": 0.1},
    }

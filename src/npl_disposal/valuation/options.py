"""Value every disposal channel for every loan: the options table.

>>> from npl_disposal.datasets import make_portfolio
>>> from npl_disposal.valuation import value_options
>>> options = value_options(make_portfolio(200, 4, seed=1).loans)
>>> list(options.columns)
['loan_id', 'channel', 'value', 'pnl', 'derecognised']

:func:`value_options` returns one row per loan and *eligible* channel, in the order
``retain, write_off, bulk_transfer, securitisation, restructure``; every loan has its
``retain`` row. Columns (money in CNY yuan, float64):

``value``
    present value, today, of the cash the bank gets from the channel net of costs;
``pnl``
    this year's pre-tax profit impact relative to doing nothing in the accounts today
    (the net book value ``balance - provision`` stays as it is);
``derecognised``
    the share of the balance that leaves the NPL stock this year.

Channel by channel (``E`` is the claim the workout pursues: the balance, plus interest
receivable when ``interest_in_exposure`` is set):

* ``retain`` -- the loan stays in collection. Each month it may move between the NPL
  classes, be *recovered* (the workout ends and brings
  :func:`~npl_disposal.valuation.recovery.expected_recovery` at the loan's age *then*: collateral
  after its haircut, the
  guarantee on the rest -- paid ``guarantee_lag_months`` later -- and the class's
  unsecured recovery curve on what is left), be *repaid* (cured: ``E`` comes back) or be
  written off (nothing). Monthly hazards come from the assumptions, or from a migration
  matrix (``migration``). Recoveries are discounted at ``discount_rate`` over
  ``horizon_months`` (nothing is counted beyond), less ``collection_cost``. So the value
  is at most ``E``; it never rises with age and never falls with more collateral or
  guarantee cover. ``pnl`` is the provision top-up the valuation implies this year,
  ``min(0, value - (balance - provision))``; provisions above it are not released.
  ``derecognised`` 0.
* ``write_off`` -- eligible for the loss class; for doubtful / substandard loans once
  legal recourse has lasted ``write_off_recourse_days`` and the balance is within the
  simplified write-off threshold (small/micro or other borrowers); or whenever a
  legal-evidence flag column (``write_off_evidence_columns``) is true. ``value``: the
  collections that continue after write-off (账销案存), a share ``post_write_off_recovery``
  of the workout recoveries less ``post_write_off_cost``, plus the tax saving on the
  unprovided balance when write-offs are deductible. ``pnl = -(balance - provision)``
  (post-write-off collections are income when received, not counted this year).
  ``derecognised`` 1.
* ``bulk_transfer`` -- every loan. The AMC pays ``bulk_price_share`` of the recovery it
  expects on principal plus interest (collateral after haircut, guarantee, and its own
  unsecured price curve by class and age); ``value`` is that price less
  ``bulk_transaction_cost``; ``pnl = value - (balance - provision)``; ``derecognised`` 1.
  The price is calibrated to the 银登中心 pilot (about 30 % of principal plus interest on
  average; a few per cent for unsecured personal packages).
* ``securitisation`` -- collateralised loans and granular ones (balance at most
  ``securitisation_granular_balance``). ``value``: the pool's recoveries (and cures)
  discounted at ``investor_discount_rate`` less servicing and variable issuance costs
  (the fixed issuance cost is the policy's ``[securitisation] fixed_cost``);
  ``pnl = value - (balance - provision)``; ``derecognised = 1 - risk_retention``.
* ``restructure`` -- viable borrowers (``viability`` true) outside the loss class.
  ``value = (1 - q) * PV(restructured instalments) + q * retain value - restructure
  cost``, capped at ``E``, with re-default probability ``q`` by class rising with age;
  ``pnl = min(0, value - (balance - provision))``; ``derecognised`` 0 (the loan stays
  non-performing through the observation period of at least 12 months).

Every parameter is a field of :class:`ValuationAssumptions` (defaults and sources in
``docs/valuation.md``); a ``[valuation]`` section of ``policy.toml`` overrides them.
The computation is vectorised over loans: the month-by-month workout is summed in small
(class x age x month) tables, never in a loans x months matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal._threads import for_blocks
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.schema import NPL_CLASSES, OPTION_COLUMNS, STANDARD_CHANNELS
from npl_disposal.io.tables import TableSource
from npl_disposal.policy import PolicyLike
from npl_disposal.valuation._defaults import RESTRUCTURABLE
from npl_disposal.valuation._workout import (
    AGE_CAP,
    BULK,
    LOSS,
    RESTRUCTURE,
    RETAIN,
    SECURITISATION,
    WRITE_OFF,
    Chain,
    Kernel,
    Loans,
    MigrationLike,
    annuity_pv_factor,
    per_class,
    workout,
)
from npl_disposal.valuation.assumptions import ValuationAssumptions
from npl_disposal.valuation.recovery import (
    expected_recovery,
)

__all__ = ["BLOCK_LOANS", "value_options"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
Problem = tuple[str, str]

#: Loans valued at a time: a block's few dozen temporary arrays stay in the processor's cache.
BLOCK_LOANS = 32_768


def resolve_inputs(
    portfolio: Portfolio | TableSource,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None,
    policy: PolicyLike,
    migration: MigrationLike | None,
) -> tuple[pd.DataFrame, Loans, ValuationAssumptions, Chain]:
    """The loan table, its arrays, the assumptions in force and the workout chain."""
    if isinstance(assumptions, ValuationAssumptions):
        a = assumptions
    elif assumptions is not None:
        a = ValuationAssumptions.from_dict(assumptions)
    elif policy is not None:
        a = ValuationAssumptions.from_policy(policy)
    else:
        a = ValuationAssumptions()
    pf = portfolio if isinstance(portfolio, Portfolio) else read_portfolio(portfolio)
    loans = pf.loans
    lo = Loans.of(loans, a.write_off_evidence_columns)
    chain = (
        Chain.from_migration(migration)
        if migration is not None
        else Chain.from_hazards(a.hazards)
    )
    return loans, lo, a, chain


def workout_kernel(
    lo: Loans, a: ValuationAssumptions, chain: Chain, later_months: int = 0
) -> Kernel:
    """The workout kernel at both rates (bank, investor) for ages up to ``later_months`` on."""
    n = lo.balance.size
    oldest = math.floor(float(lo.age.max())) + 1 + later_months if n else 1
    curves = [a.recovery_curves[c] for c in NPL_CLASSES]
    return Kernel(
        chain,
        curves,
        a.horizon_months,
        (a.discount_rate, a.investor_discount_rate),
        int(min(oldest, AGE_CAP)),
    )


def claim_terms(
    lo: Loans, a: ValuationAssumptions
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """What the workout pursues, per loan.

    Exposure ``E`` (CNY yuan), collateral share realised at NPL age 0 ``alpha``, its fall
    per month of age ``beta``, and the share of the loss the guarantee pays ``cover``.
    """
    haircuts = a.haircuts()
    alpha = 1.0 - np.array([h.haircut for h in haircuts])[lo.type_code]
    beta = np.array([h.age_slope for h in haircuts])[lo.type_code]
    cover = lo.cover * a.guarantee_pay_rate
    exposure = lo.balance + lo.interest if a.interest_in_exposure else lo.balance.copy()
    return exposure, alpha, beta, cover


def eligibility(
    lo: Loans, a: ValuationAssumptions, loss: BoolArray, recourse: FloatArray
) -> BoolArray:
    """(5, n) channels open to each loan; rows in STANDARD_CHANNELS order.

    ``loss``: whether the loan counts as loss class; ``recourse``: days of legal recourse.
    """
    threshold = np.where(lo.small_micro, a.write_off_balance_small_micro, a.write_off_balance_other)
    eligible = np.empty((len(STANDARD_CHANNELS), lo.balance.size), dtype=bool)
    eligible[RETAIN] = True
    eligible[WRITE_OFF] = (
        loss | ((recourse >= a.write_off_recourse_days) & (lo.balance <= threshold)) | lo.evidence
    )
    eligible[BULK] = True
    eligible[SECURITISATION] = lo.secured | (lo.balance <= a.securitisation_granular_balance)
    eligible[RESTRUCTURE] = lo.viable & ~loss
    return eligible


def _channel_matrices(
    lo: Loans, a: ValuationAssumptions, kernel: Kernel
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """(5, n) value, pnl and eligibility; rows in STANDARD_CHANNELS order.

    One workout kernel serves every loan; the loans are valued in blocks of
    ``BLOCK_LOANS``, so that each step's arrays stay in the processor's cache
    (benchmarks/README.md, design measurements).
    """
    n = lo.balance.size
    k = len(STANDARD_CHANNELS)
    value, pnl, eligible = np.empty((k, n)), np.empty((k, n)), np.empty((k, n), dtype=bool)

    def work(piece: slice) -> None:
        block = lo.block(piece)
        value[:, piece], pnl[:, piece] = channel_values(block, a, kernel)
        eligible[:, piece] = eligibility(block, a, block.cls == LOSS, block.recourse)

    for_blocks(n, BLOCK_LOANS, work)
    return value, pnl, eligible


def channel_values(
    lo: Loans, a: ValuationAssumptions, kernel: Kernel
) -> tuple[FloatArray, FloatArray]:
    """(5, n) value and pnl of every channel for one block of loans (CNY yuan)."""
    n = lo.balance.size
    exposure, alpha, beta, cover = claim_terms(lo, a)
    deltas = [(1.0 + r) ** (-a.guarantee_lag_months / 12.0) for r in
              (a.discount_rate, a.investor_discount_rate)]  # fmt: skip
    (gross, cure), (gross_inv, cure_inv) = workout(
        kernel, lo, exposure, alpha, beta, cover, deltas
    )
    retain = (1.0 - a.collection_cost) * gross + cure
    costs = a.securitisation_servicing_cost + a.securitisation_issuance_cost
    securitised = (gross_inv + cure_inv) * max(0.0, 1.0 - costs)

    claim = lo.balance + lo.interest
    realisable = np.minimum(lo.collateral * np.clip(alpha - beta * lo.age, 0.0, 1.0), claim)
    unsecured = per_class(a.bulk_price_curves, lo.cls, lo.age)
    amc = expected_recovery(claim, unsecured, realisable, cover)
    price_share = np.array([a.bulk_price_share[c] for c in NPL_CLASSES])[lo.cls]
    bulk = price_share * amc * (1.0 - a.bulk_transaction_cost)

    net_book = lo.net_book
    shield_share = np.where(
        (lo.balance <= a.tax_simplified_balance) | lo.evidence, 1.0, a.tax_deductible_share
    )
    shield = (
        a.tax_rate * shield_share * np.maximum(net_book, 0.0)
        * (1.0 + a.discount_rate) ** (-a.tax_lag_months / 12.0)
        if a.write_off_tax_deductible else np.zeros(n)
    )  # fmt: skip
    write_off = a.post_write_off_recovery * gross * (1.0 - a.post_write_off_cost) + shield

    redefault = np.array([a.restructure_redefault[c] for c in RESTRUCTURABLE] + [1.0])[lo.cls]
    redefault = np.minimum(
        redefault + a.restructure_redefault_per_month * lo.age, a.restructure_redefault_max
    )
    redefault[lo.cls == LOSS] = 1.0
    factor = annuity_pv_factor(a.restructure_rate, a.discount_rate, a.restructure_term_months)
    performing = exposure * (1.0 - a.restructure_concession) * factor
    restructure = np.minimum(
        (1.0 - redefault) * performing + redefault * retain - a.restructure_cost * lo.balance,
        exposure,
    )

    value = np.stack([retain, write_off, bulk, securitised, restructure])
    pnl = np.subtract(value, net_book)
    np.minimum(pnl[RETAIN], 0.0, out=pnl[RETAIN])
    np.negative(net_book, out=pnl[WRITE_OFF])
    np.minimum(pnl[RESTRUCTURE], 0.0, out=pnl[RESTRUCTURE])
    return value, pnl


def eligible_options(
    value: FloatArray, pnl: FloatArray, eligible: BoolArray
) -> tuple[IntArray, np.ndarray, FloatArray, FloatArray]:
    """The eligible cells of the (cells, loans) grids, listed by loan then cell.

    Returns each option's loan position, cell code (the smallest integer type that holds
    them: int8 for the five channels), value and pnl. Each block of ``BLOCK_LOANS`` loans
    is listed on its own, into its place in the output, so its cells stay in cache
    (benchmarks/README.md, design measurements).
    """
    k, n = eligible.shape
    code = next(t for t in (np.int8, np.int16, np.int32) if k <= np.iinfo(t).max)
    if n == 0:
        return np.empty(0, np.intp), np.empty(0, code), np.empty(0), np.empty(0)
    per_loan = eligible.sum(axis=0, dtype=code)
    ends = np.cumsum(np.add.reduceat(per_loan, np.arange(0, n, BLOCK_LOANS), dtype=np.int64))
    total = int(ends[-1])
    row, col = np.empty(total, dtype=np.intp), np.empty(total, dtype=code)
    out_value, out_pnl = np.empty(total), np.empty(total)

    def work(piece: slice) -> None:
        block = piece.start // BLOCK_LOANS
        first = int(ends[block - 1]) if block else 0
        cells = np.flatnonzero(eligible[:, piece].T)  # by loan, then channel
        out = slice(first, first + cells.size)
        loan, channel = np.divmod(cells, k)
        row[out] = loan + piece.start
        col[out] = channel
        out_value[out] = value[:, piece][channel, loan]
        out_pnl[out] = pnl[:, piece][channel, loan]

    for_blocks(n, BLOCK_LOANS, work)
    return row, col, out_value, out_pnl


def derecognised_shares(a: ValuationAssumptions) -> FloatArray:
    """Share of the balance each channel takes off the NPL stock, in STANDARD_CHANNELS order."""
    return np.array([0.0, 1.0, 1.0, 1.0 - a.risk_retention, 0.0])


def value_options(
    portfolio: Portfolio | TableSource,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None = None,
    policy: PolicyLike = None,
    migration: MigrationLike | None = None,
) -> pd.DataFrame:
    """Value every eligible channel of every loan: the options table.

    Args:
        portfolio: a :class:`~npl_disposal.Portfolio`, or a loans table (DataFrame or
            CSV / Parquet path), validated with :func:`~npl_disposal.read_portfolio`.
        assumptions: :class:`ValuationAssumptions` or a ``[valuation]`` mapping; when
            absent, the ``[valuation]`` section of ``policy`` (or the defaults).
        policy: a policy (Policy, mapping or ``policy.toml`` path) whose ``[valuation]``
            section is used when ``assumptions`` is not given.
        migration: optional one-period migration matrix (``.matrix``, ``.states``,
            ``.months``, e.g. ``npl_disposal.valuation.MigrationMatrix``, or a square
            DataFrame) replacing the monthly hazards of the assumptions. States
            ``recovered`` end the workout with a recovery; ``repaid``, ``normal`` and
            ``special_mention`` with a cure; anything else outside the NPL classes with
            nothing.

    Returns:
        DataFrame ``loan_id, channel, value, pnl, derecognised`` sorted by loan then
        channel (``retain, write_off, bulk_transfer, securitisation, restructure``), one
        row per eligible option; money in CNY yuan (float64). ``channel`` is categorical.

    """
    loans, lo, a, chain = resolve_inputs(portfolio, assumptions, policy, migration)
    value, pnl, eligible = _channel_matrices(lo, a, workout_kernel(lo, a, chain))
    row, col, value, pnl = eligible_options(value, pnl, eligible)
    del eligible
    ids = loans["loan_id"].to_numpy(dtype=object)
    frame = pd.DataFrame(
        {
            "loan_id": pd.Series(ids[row], dtype=object, copy=False),
            "channel": pd.Categorical.from_codes(col, categories=list(STANDARD_CHANNELS)),
            "value": value,
            "pnl": pnl,
            "derecognised": derecognised_shares(a)[col],
        },
        copy=False,
    )
    assert list(frame.columns) == [c.name for c in OPTION_COLUMNS]
    return frame

"""Budgets for a synthetic portfolio: sized from what is eligible so several rules bind."""


from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.datasets._calibration import (
    BASELINE_HEADROOM,
    BULK,
    BULK_MIN_LOANS,
    DEMAND_SHARE,
    LONG_AGE_MONTHS,
    MIN_POOL_SHARE,
    RESTRUCTURE,
    RETAIN,
    SECURITISATION,
    SECURITISATION_FIXED_COST,
    TOLERANCE_MARGIN,
    WRITE_OFF,
)
from npl_disposal.io.schema import (
    STANDARD_CHANNELS,
)

if TYPE_CHECKING:
    from npl_disposal.datasets.portfolios import SyntheticPortfolio

__all__ = ["size_policy"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]


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


def size_policy(portfolio: SyntheticPortfolio) -> dict[str, dict[str, Any]]:
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

"""Scenarios made by revaluing the portfolio under stressed valuation assumptions.

A :class:`Stress` scales the assumptions a bad year moves: collateral prices (the
share of collateral value a sale realises), the prices AMCs pay for bulk packages,
cure rates (loans that become performing again) and recovery rates (workout
recoveries, and the recoveries after write-off). :func:`stress_scenarios` values
every channel of every loan under each stress and takes, per channel and segment,
the ratio of stressed to base value: the scenarios table
(``scenario, probability, channel, segment, factor``) that
:func:`~npl_disposal.build_problem` reads.

>>> from npl_disposal.valuation.stress import stress_scenarios
>>> scenarios = stress_scenarios(portfolio)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.io._ids import in_order, locate
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.scenarios import segment_codes
from npl_disposal.io.tables import TableSource
from npl_disposal.valuation.assumptions import ValuationAssumptions
from npl_disposal.valuation.options import value_options
from npl_disposal.valuation.recovery import RecoveryCurve

__all__ = ["STANDARD_STRESSES", "Stress", "stress_scenarios", "stressed_assumptions"]


@dataclass(frozen=True)
class Stress:
    """A named stress of the valuation and its probability; each multiplier 1 leaves it as is.

    ``collateral_price`` scales what collateral realises (0.8: property prices 20%
    lower); ``amc_price`` the share of value AMCs pay for bulk packages;
    ``cure_rate`` the monthly rate at which NPLs are repaid and become performing;
    ``recovery_rate`` workout recoveries (the recovery curves, the monthly rate of
    recovered workouts, recoveries after write-off). Shares are capped at 1.
    """

    name: str
    probability: float
    collateral_price: float = 1.0
    amc_price: float = 1.0
    cure_rate: float = 1.0
    recovery_rate: float = 1.0

    def __post_init__(self) -> None:
        problems = [f"{k} must be a number >= 0; got {getattr(self, k)!r}"
                    for k in ("probability", "collateral_price", "amc_price", "cure_rate",
                              "recovery_rate")
                    if not (isinstance(getattr(self, k), (int, float))
                            and getattr(self, k) >= 0)]  # fmt: skip
        if not (isinstance(self.name, str) and self.name):
            problems.append(f"name must be non-empty text; got {self.name!r}")
        if problems:
            raise ValueError(f"Stress {self.name!r}: " + "; ".join(problems))


#: A named set of stresses a risk committee asks about, with illustrative probabilities:
#: property prices 20% lower, AMCs paying a third less, cures drying up, and all at once.
STANDARD_STRESSES: tuple[Stress, ...] = (
    Stress("base", 0.55),
    Stress("property_down_20", 0.15, collateral_price=0.8),
    Stress("amc_down_33", 0.10, amc_price=2.0 / 3.0),
    Stress("cures_dry_up", 0.10, cure_rate=0.5),
    Stress("recession", 0.10, collateral_price=0.8, amc_price=0.8, cure_rate=0.5,
           recovery_rate=0.8),
)  # fmt: skip


def stressed_assumptions(base: ValuationAssumptions, stress: Stress) -> ValuationAssumptions:
    """``base`` with the stress applied (collateral, AMC prices, cures, recoveries)."""
    realised = {k: 1.0 - min(1.0, (1.0 - h) * stress.collateral_price)
                for k, h in base.collateral_haircuts.items()}  # fmt: skip
    bulk = {k: min(1.0, v * stress.amc_price) for k, v in base.bulk_price_share.items()}
    curves = {k: _scaled_curve(c, stress.recovery_rate) for k, c in base.recovery_curves.items()}
    hazards = {src: _scaled_hazards(row, stress) for src, row in base.hazards.items()}
    post = min(1.0, base.post_write_off_recovery * stress.recovery_rate)
    return base.replace(collateral_haircuts=realised, bulk_price_share=bulk,
                        recovery_curves=curves, hazards=hazards,
                        post_write_off_recovery=post)  # fmt: skip


def _scaled_curve(curve: RecoveryCurve, factor: float) -> RecoveryCurve:
    rates = tuple(min(1.0, r * factor) for r in curve.rates)
    return dataclasses.replace(curve, initial=min(1.0, curve.initial * factor),
                               floor=min(1.0, curve.floor * factor), rates=rates)  # fmt: skip


def _scaled_hazards(row: Mapping[str, float], stress: Stress) -> dict[str, float]:
    scale = {"repaid": stress.cure_rate, "recovered": stress.recovery_rate}
    out = {dest: rate * scale.get(dest, 1.0) for dest, rate in row.items()}
    total = sum(out.values())
    return out if total <= 1.0 else {d: r / total for d, r in out.items()}


def stress_scenarios(
    portfolio: Portfolio | TableSource,
    stresses: Sequence[Stress] = STANDARD_STRESSES,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None = None,
    segment_by: str = "classification",
    branches: TableSource | None = None,
) -> pd.DataFrame:
    """The scenarios table of ``stresses``: per channel and segment, stressed / base value.

    Every channel of every loan is valued under the base ``assumptions`` (default:
    the library's) and under each stress; a segment's factor for a channel is the
    ratio of the sums of its stressed and base values (1 where the base sum is not
    positive; never below 0). Probabilities are the stresses' own, scaled to sum to 1.
    Returns ``scenario, probability, channel, segment, factor``.
    """
    pf = portfolio if isinstance(portfolio, Portfolio) else read_portfolio(portfolio, branches)
    if not stresses:
        raise ValueError("stress_scenarios needs at least one Stress")
    base = (assumptions if isinstance(assumptions, ValuationAssumptions)
            else ValuationAssumptions.from_dict(assumptions or {}))  # fmt: skip
    codes, segments = segment_codes(pf.loans, segment_by)
    reference = _sums(value_options(pf, base), pf, codes, segments)
    total = sum(s.probability for s in stresses)
    if total <= 0:
        raise ValueError("the stresses' probabilities sum to 0; give each a probability > 0")
    parts = []
    for stress in stresses:
        stressed = _sums(value_options(pf, stressed_assumptions(base, stress)), pf, codes,
                         segments)
        ratio = stressed.reindex(reference.index, fill_value=0.0) / reference
        factor = np.where(reference > 0, np.maximum(ratio, 0.0), 1.0)
        parts.append(pd.DataFrame({
            "scenario": stress.name, "probability": stress.probability / total,
            "channel": reference.index.get_level_values("channel"),
            "segment": reference.index.get_level_values("segment"), "factor": factor,
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _sums(options: pd.DataFrame, pf: Portfolio, codes: np.ndarray,
          segments: tuple[str, ...]) -> pd.Series:  # fmt: skip
    """The options' values summed per (channel, segment), CNY yuan."""
    ids = pf.loans["loan_id"].to_numpy(dtype=object)
    keys = options["loan_id"].to_numpy(dtype=object)
    loan = in_order(ids, keys)
    if loan is None:
        loan = locate(ids, keys)
    segment = np.asarray(segments, dtype=object)[codes[loan]]
    frame = pd.DataFrame({"channel": options["channel"].astype(str).to_numpy(),
                          "segment": segment, "value": options["value"].to_numpy()})  # fmt: skip
    return frame.groupby(["channel", "segment"], sort=True)["value"].sum()

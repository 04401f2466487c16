"""The plan's value in every scenario, recomputed from the tables: expected value and tail mean.

:func:`risk_figures` joins the plan to the options table, sums the value sent to
each (channel, segment) and applies each scenario's factors by matching the scenarios
table on its text keys, never through the model's aggregates; the tail mean is then
found by sorting the scenario values (:func:`~npl_disposal.policy.risk.tail_mean`).
:func:`~npl_disposal.verify_plan` calls it when given scenarios and checks the floor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.io.scenarios import Scenarios, segment_codes
from npl_disposal.model._join import PlanJoin
from npl_disposal.policy._values import millions
from npl_disposal.policy.risk import TailRule, tail_mean
from npl_disposal.policy.sections import Risk

__all__ = ["RiskFigures", "risk_figures", "scenario_values"]


@dataclass(frozen=True, eq=False)
class RiskFigures:
    """A plan's value per scenario (CNY yuan), its expected value and tail mean at ``alpha``."""

    values: pd.Series
    probability: pd.Series
    expected_value: float
    tail_mean: float
    alpha: float
    aversion: float
    min_tail_value: float | None

    def frame(self) -> pd.DataFrame:
        """One row per scenario: ``scenario, probability, value, tail_weight``, worst first.

        ``tail_weight`` is the share of the scenario's probability counted in the tail.
        """
        out = pd.DataFrame({"scenario": self.values.index, "probability": self.probability.values,
                            "value": self.values.values})  # fmt: skip
        out = out.sort_values("value", kind="stable").reset_index(drop=True)
        before = out["probability"].cumsum() - out["probability"]
        inside = np.clip((1.0 - self.alpha) - before, 0.0, out["probability"])
        out["tail_weight"] = np.divide(inside, out["probability"], where=out["probability"] > 0,
                                       out=np.zeros(len(out)))  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        """The fields summary.json adds: expected value, tail mean, alpha, each scenario's value."""
        return {
            "expected_value": self.expected_value,
            "tail_mean": self.tail_mean,
            "alpha": self.alpha,
            "aversion": self.aversion,
            "min_tail_value": self.min_tail_value,
            "scenarios": {str(k): float(v) for k, v in self.values.items()},
        }

    def summary(self) -> str:
        """Expected value, tail mean and the worst and best scenarios, in CNY millions."""
        worst, best = self.values.idxmin(), self.values.idxmax()
        return (f"expected value {millions(self.expected_value)}, tail mean at "
                f"α={self.alpha:g} {millions(self.tail_mean)} over {len(self.values):,} "
                f"scenarios (worst {worst}: {millions(float(self.values[worst]))}; best "
                f"{best}: {millions(float(self.values[best]))})")  # fmt: skip


def scenario_values(
    joined: PlanJoin, loans: pd.DataFrame, scenarios: Scenarios, fixed: float
) -> pd.Series:
    """``V_s``: each scenario's value of the joined plan, less the ``fixed`` costs (CNY)."""
    codes, segments = segment_codes(loans, scenarios.segment_by)
    g = len(segments)
    key = joined.chan.astype(np.int64) * g + codes[joined.loan]
    sums = np.bincount(key, weights=joined.value * joined.share, minlength=len(joined.channels) * g)
    used = np.flatnonzero(sums)
    amounts = pd.DataFrame({
        "channel": np.asarray(joined.channels, dtype=object)[used // g],
        "segment": np.asarray(segments, dtype=object)[used % g],
        "amount": sums[used],
    })  # fmt: skip
    listed = scenarios.table.merge(amounts, on=["channel", "segment"], how="inner")
    change = ((listed["factor"] - 1.0) * listed["amount"]).groupby(listed["scenario"]).sum()
    base = float(sums.sum()) - fixed
    values = base + change.reindex(list(scenarios.names), fill_value=0.0)
    return values.rename("value").rename_axis("scenario")


def risk_figures(
    joined: PlanJoin,
    loans: pd.DataFrame,
    scenarios: Scenarios,
    section: Risk | None,
    fixed: float,
) -> RiskFigures:
    """The plan's scenario values, expected value and tail mean (``section``: ``[risk]``)."""
    section = section if section is not None else Risk()
    values = scenario_values(joined, loans, scenarios, fixed)
    prob = pd.Series(scenarios.probability, index=values.index, name="probability")
    v = values.to_numpy(dtype=float)
    return RiskFigures(values, prob, float(prob.to_numpy() @ v),
                       tail_mean(v, prob.to_numpy(), section.alpha), section.alpha,
                       section.aversion, section.min_tail_value)  # fmt: skip


def floor_miss(figures: RiskFigures, section: Risk | None) -> tuple[float, float, str] | None:
    """``(tail mean, floor, words)`` when a floor is set (the verifier checks the two)."""
    if section is None or section.min_tail_value is None:
        return None
    return figures.tail_mean, section.min_tail_value, TailRule(section).broken(figures.tail_mean)


def as_mapping(figures: RiskFigures | None) -> Mapping[str, Any]:
    """summary.json's scenario fields, or none."""
    return figures.to_dict() if figures is not None else {}

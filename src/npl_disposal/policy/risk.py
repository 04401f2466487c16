"""The tail rule of ``[risk]``, defined once: its keys, its words, its check and its miss.

Scenarios multiply option values by factors per channel and segment; the plan's value
in scenario s is ``V_s``. The tail mean at ``alpha`` is the probability-weighted mean
of ``V_s`` over the worst ``1 - alpha`` of the probability (the scenario at the
boundary counted in part). :class:`TailRule` states how the policy weighs it
(``aversion``), its floor (``min_tail_value``), how :func:`tail_mean` measures it and
how a miss or an unreachable floor is worded. The model's rows are in
:mod:`npl_disposal.model.risk`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npl_disposal.policy._values import millions
from npl_disposal.policy.sections import Risk

__all__ = ["FLOOR_RULE", "MODEL_RULES", "TailRule", "tail_mean", "tail_weights"]

#: The rule key of the floor on the tail mean.
FLOOR_RULE = "risk.min_tail_value"
#: Rules of rows that define the tail model's levels rather than limit the plan.
MODEL_RULES = ("risk.aggregate", "risk.shortfall")


def tail_mean(values: np.ndarray, probability: np.ndarray, alpha: float) -> float:
    """Mean of ``values`` over their worst ``1 - alpha`` of ``probability``, by sorting.

    The scenario at the boundary counts with the part of its probability that
    falls inside the tail (the Rockafellar-Uryasev reading). ``probability`` sums
    to 1 and ``alpha`` is in [0, 1).
    """
    return float(tail_weights(values, probability, alpha) @ np.asarray(values, dtype=float))


def tail_weights(values: np.ndarray, probability: np.ndarray, alpha: float) -> np.ndarray:
    """Each scenario's weight in the tail mean (summing to 1), found by sorting ``values``.

    The tail mean is ``weights @ values``; for any other plan ``weights @ its values``
    is at least its tail mean (the tail mean is the least such mean over the weights
    the tail allows), so the weights give a linear upper bound on it.
    """
    order = np.argsort(values, kind="stable")
    p = np.asarray(probability, dtype=float)[order]
    mass = 1.0 - alpha
    before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    weights = np.zeros(p.size)
    weights[order] = np.clip(mass - before, 0.0, p) / mass
    return weights


@dataclass(frozen=True)
class TailRule:
    """``[risk]``: the weight on the tail mean and its floor, in the bank's words."""

    section: Risk

    @property
    def level(self) -> str:
        """The tail's level as written in messages: ``α=0.95``."""
        return f"α={self.section.alpha:g}"

    def describe(self) -> list[str]:
        """Its lines in :meth:`~npl_disposal.Policy.summary`."""
        risk = self.section
        lines = [f"  recovery risk: expected value + {risk.aversion:g} x tail mean at "
                 f"{self.level} (the worst {1 - risk.alpha:.0%} of the scenarios), "
                 f"segments by {risk.segment_by}"]  # fmt: skip
        if risk.min_tail_value is not None:
            lines.append(f"  tail floor: the tail mean at {self.level} must reach "
                         f"{millions(risk.min_tail_value)}")  # fmt: skip
        return lines

    @property
    def short(self) -> str:
        """How a model row missing the floor is worded (``{x}``: the amount missed)."""
        return f"the tail mean at {self.level} misses the policy's floor by {{x}}"

    def broken(self, tail: float) -> str:
        """How the verifier words a plan whose tail mean is below the floor."""
        floor = self.section.min_tail_value
        return (f"the plan's tail mean at {self.level} is {millions(tail)}, below the "
                f"policy's floor {millions(floor if floor is not None else 0.0)}")

    def unreachable(self, reach: float) -> str:
        """How an infeasible floor is explained: the most the tail mean can reach."""
        floor = self.section.min_tail_value
        asked = millions(floor if floor is not None else 0.0).removeprefix("CNY ")
        return (f"the tail mean at {self.level} can reach at most {millions(reach)}; the "
                f"policy asks {asked} ([risk] min_tail_value)")

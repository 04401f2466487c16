"""Why a tail floor cannot be met: the most the plan's tail mean can reach, in CNY.

The tail model's rows hold with every other rule of the policy; maximising the tail
mean alone over them (the LP relaxation, an upper bound for whole loans too) gives
the most any plan can reach. Below ``[risk] min_tail_value`` the floor is the
conflict, worded by :meth:`~npl_disposal.policy.risk.TailRule.unreachable`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from npl_disposal.model.diagnose import conflict
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.rows import Block
from npl_disposal.policy.risk import FLOOR_RULE, TailRule
from npl_disposal.solvers._pricing import solve_fractional

__all__ = ["max_tail_mean", "tail_floor_conflict"]

_CENT = 0.01


def max_tail_mean(problem: AllocationProblem) -> float:
    """The most the tail mean can reach under every rule but its floor (CNY; nan: no plan).

    Solves the LP with the tail mean as its only objective.
    """
    risk = problem.risk
    if risk is None or not risk.modelled:
        return float("nan")
    prob = dict(zip(risk.scenarios.names, risk.scenarios.probability, strict=True))
    blocks = tuple(_tail_only(b, risk.width, risk.tail_scale, prob) for b in problem.blocks)
    rows = problem.rows
    lower = np.where(np.array(rows.rule) == FLOOR_RULE, -np.inf, rows.lower)
    variant = replace(problem, value=np.zeros_like(problem.value), blocks=blocks,
                      rows=replace(rows, lower=lower))  # fmt: skip
    outcome = solve_fractional(variant)
    if outcome.status != "optimal" or np.abs(outcome.shortfall).max(initial=0.0) > _CENT:
        return float("nan")
    return float(max(outcome.objective, outcome.bound)) + risk.floor


def _tail_only(block: Block, width: float, scale: float, prob: dict[str, float]) -> Block:
    """The block weighed by the tail mean alone (``W e - W / (1 - alpha) sum pi_s w_s``)."""
    if block.name == "risk_threshold":
        return replace(block, fixed_cost=-width)
    if block.name.startswith("risk_shortfall[") and block.name[15:-1] in prob:
        return replace(block, fixed_cost=scale * prob[block.name[15:-1]])
    return replace(block, fixed_cost=0.0)


def tail_floor_conflict(problem: AllocationProblem) -> pd.DataFrame | None:
    """The conflict when the floor is above the most the tail mean can reach, else None."""
    risk = problem.risk
    if risk is None or risk.section.min_tail_value is None:
        return None
    floor = risk.section.min_tail_value
    reach = max_tail_mean(problem)
    if not np.isfinite(reach) or reach >= floor - _CENT:
        return None
    row = conflict(FLOOR_RULE, floor, reach, "CNY", TailRule(risk.section).unreachable(reach))
    return pd.DataFrame([row])

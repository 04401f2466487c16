"""The whole portfolio's figures a partition's problem needs, reduced over every partition.

The wage-pool model's rows have per-branch coefficients that sum over every loan of
the branch (U_k, the most it can lose) or need its inclusive NPL over every partition
(the tolerance margin), and they decide which branches have wage-pool terms at all: a
partition cannot know them alone. Each partition, built once, sends its per-branch
sums (two numbers a branch); the coordinator adds them up into
:class:`~npl_disposal.model.wage_pool.WagePoolFigures` and every partition is built
again with them, so that each has the whole problem's wage-pool rows and blocks. Only
a policy that optimises the wage pool needs this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from npl_disposal.distributed._partitions import _Part
from npl_disposal.io.portfolio import Branches
from npl_disposal.model.wage_pool import (
    WagePoolFigures,
    securitisable,
    tolerance_margin,
    upper_bounds,
    worst_losses,
)
from npl_disposal.policy import Policy


@dataclass(frozen=True, eq=False)
class _Share:
    """A partition's per-branch sums, CNY yuan, one per branch of the branch table.

    ``worst``: its loans' worst eligible losses; ``pool``: their balance eligible for
    securitisation (``securitised``: whether any of its loans is offered it).
    """

    worst: np.ndarray
    pool: np.ndarray
    securitised: bool


def _needs_context(policy: Policy) -> bool:
    """Whether the partitions' problems need the whole portfolio's figures (with branches)."""
    wage = policy.wage_pool
    return wage is not None and wage.optimised


def _share(part: _Part) -> _Share:
    """The partition's per-branch sums, from its problem (worker side)."""
    p = part.need()
    k = len(p.branches)
    sec = p.channel("securitisation")
    return _Share(
        worst_losses(p.pnl, p.eligible, p.branch_index, k),
        securitisable(p.balance, p.eligible, sec, p.branch_index, k),
        sec >= 0,
    )


def _context(shares: Sequence[_Share], policy: Policy, table: Branches) -> WagePoolFigures:
    """The wage-pool figures of the whole portfolio: the partitions' sums (coordinator side).

    ``table`` holds the branch figures over every partition (its inclusive NPL summed).
    """
    worst = np.sum([s.worst for s in shares], axis=0)
    pool = np.sum([s.pool for s in shares], axis=0)
    upper = upper_bounds(policy, worst, pool, any(s.securitised for s in shares))
    return WagePoolFigures(upper, tolerance_margin(policy, table))

"""What a solve method hands back before the result is verified: :class:`Outcome`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from npl_disposal.model.problem import AllocationProblem

if TYPE_CHECKING:
    from npl_disposal.solvers._aggregate import Grouping
    from npl_disposal.solvers._formulation import GrowingLP

__all__ = ["Outcome", "failed", "plan_value"]


@dataclass(frozen=True, eq=False)
class Outcome:
    """The raw outcome of a solve: shares on the grid, on/off levels, objective and bound.

    ``status`` is ``optimal``, ``feasible`` (a plan, the proof stopped),
    ``time_limit``, ``no_solution``, ``infeasible``, ``unbounded`` or ``error``;
    ``objective`` and ``bound`` are CNY yuan; ``duals`` the resource rows' duals
    (scaled units, min form); ``shortfall`` how far an elastic solve missed each row
    (natural units). The rest says how it went: passes, the loans the LP held, the
    seconds of each step, the solver's words; ``lp`` and ``sample`` keep what a later
    solve of the same problem may restart from, ``reduced`` the reduced values at
    ``duals`` when the solve computed them (not to be changed), ``groups`` the loans'
    groups a solve over groups ended with. Build it by keywords.
    """

    status: str
    shares: np.ndarray
    y: np.ndarray
    objective: float
    bound: float
    duals: np.ndarray
    shortfall: np.ndarray
    iterations: int = 0
    free_loans: int = 0
    free: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""
    lp: GrowingLP | None = field(default=None, repr=False)
    sample: tuple[AllocationProblem, Outcome] | None = field(default=None, repr=False)
    priced_only: bool = False
    reduced: np.ndarray | None = field(default=None, repr=False)
    groups: Grouping | None = field(default=None, repr=False)


def failed(problem: AllocationProblem, status: str, message: str = "", **extra: object) -> Outcome:
    """An outcome without a plan (``status`` says why), its arrays empty or zero."""
    k = len(problem.rows)
    return Outcome(
        status=status,
        shares=np.zeros(problem.eligible.shape),
        y=np.zeros(len(problem.blocks)),
        objective=math.nan,
        bound=math.nan,
        duals=np.zeros(k),
        shortfall=np.zeros(k),
        message=message,
        **extra,  # type: ignore[arg-type]
    )


def plan_value(problem: AllocationProblem, shares: np.ndarray, y: np.ndarray) -> float:
    """Objective of a plan: sum of v_im x_im less the blocks' fixed costs, CNY yuan."""
    return float(np.vdot(problem.value, shares) + problem.block_cost @ y)

"""What a plan does, measured: the linear sums every rule bounds, and the branch figures.

A :class:`Measure` is a sum over options of a coefficient times the option's share:
the balance sent to a channel, the loans sent to it, the profit impact, the inclusive
balance derecognised. It is stated once, here, and used twice: the model builder puts
its coefficients in a row of the problem, and :func:`~npl_disposal.verify_plan`
evaluates it on a plan joined to the loan and options tables (never the solver's
matrix). Both hand the measure the options it selects (:class:`Options`), so the
coefficient is the same formula in both uses.

The branch figures of ``docs/model.md`` are built on measures: :data:`DERECOGNISED`
(inclusive balance leaving the NPL stock, per branch) and :func:`npl_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

__all__ = [
    "BRANCH_PNL",
    "DERECOGNISED",
    "LOANS",
    "MONEY",
    "PROFIT",
    "SMALL_MICRO_WRITTEN_OFF",
    "WRITTEN_OFF",
    "Measure",
    "Measured",
    "Options",
    "channel_balance",
    "channel_loans",
    "npl_loss",
]

#: Units of a measure: CNY yuan or a number of loans.
MONEY, LOANS = "CNY", "loans"

Weight = Literal["balance", "loans", "pnl", "derecognised", "path"]


class Options(Protocol):
    """Options a measure selected: one item per (loan, channel), as arrays.

    ``balance`` is the balance the option takes off the book (CNY yuan: the loan's
    balance, or in a schedule its expected balance at disposal), ``pnl`` the option's
    profit impact (CNY yuan), ``derecognised`` its derecognised share of the balance.
    """

    @property
    def balance(self) -> np.ndarray:
        """The balance the option takes off the book, CNY yuan."""
        ...

    @property
    def pnl(self) -> np.ndarray:
        """The option's profit impact, CNY yuan."""
        ...

    @property
    def derecognised(self) -> np.ndarray:
        """The option's derecognised share."""
        ...

    def kept(self, period: int) -> np.ndarray:
        """Each option's loan's expected NPL balance at the end of ``period`` if kept (CNY)."""
        ...


@dataclass(frozen=True)
class Measure:
    """A linear measure of a plan: the sum of ``weight`` x share over selected options.

    ``weight`` is ``"balance"`` (CNY yuan), ``"loans"`` (1 per loan), ``"pnl"`` (CNY
    yuan of this year's profit) or ``"derecognised"`` (balance x derecognised share,
    CNY yuan). Only options of ``channel`` count when it is given, only inclusive
    small/micro loans when ``inclusive``, only small/micro loans when
    ``small_micro``; ``by_branch`` sums per branch instead of over the portfolio.

    In a schedule, ``periods`` keeps only options disposed in those periods (the
    retain option's period is T + 1), and the weight ``"path"`` is the loan's expected
    NPL balance at the end of period ``at`` if kept, times the option's derecognised
    share (CNY yuan): the inclusive NPL a plan has taken off the branch by then.
    """

    weight: Weight
    channel: str | None = None
    inclusive: bool = False
    by_branch: bool = False
    small_micro: bool = False
    periods: tuple[int, ...] | None = None
    at: int | None = None

    @property
    def segment(self) -> str | None:
        """The loan flag the measure keeps (``inclusive``, ``small_micro``), if any."""
        if self.inclusive:
            return "inclusive"
        return "small_micro" if self.small_micro else None

    @property
    def unit(self) -> str:
        """``"loans"`` for a count, else ``"CNY"``."""
        return LOANS if self.weight == "loans" else MONEY

    def coefficients(self, options: Options) -> np.ndarray:
        """Each selected option's coefficient (CNY yuan or loans per unit of share)."""
        if self.weight == "balance":
            return np.asarray(options.balance, dtype=float)
        if self.weight == "loans":
            return np.ones(len(options.balance))
        if self.weight == "pnl":
            return np.asarray(options.pnl, dtype=float)
        if self.weight == "path":
            if self.at is None:
                raise ValueError("a path measure needs the period it is checked at")
            return options.kept(self.at) * options.derecognised
        return options.balance * options.derecognised


def channel_balance(channel: str, by_branch: bool = False) -> Measure:
    """Balance (CNY yuan) sent to ``channel``."""
    return Measure("balance", channel, by_branch=by_branch)


def channel_loans(channel: str) -> Measure:
    """Loans (shares of loans) sent to ``channel``."""
    return Measure("loans", channel)


#: This year's profit impact of the plan, CNY yuan (before fixed costs).
PROFIT = Measure("pnl")
#: Per branch: the inclusive small/micro NPL balance the plan derecognises, CNY yuan.
DERECOGNISED = Measure("derecognised", inclusive=True, by_branch=True)
#: Per branch: this year's profit impact of the branch's loans, CNY yuan.
BRANCH_PNL = Measure("pnl", by_branch=True)
#: Per branch: the inclusive small/micro balance written off, CNY yuan.
WRITTEN_OFF = Measure("balance", "write_off", inclusive=True, by_branch=True)
#: The small/micro balance written off, CNY yuan (``[write_off] priority = "quota_first"``).
SMALL_MICRO_WRITTEN_OFF = Measure("balance", "write_off", small_micro=True)


class Measured(Protocol):
    """A plan as its measures see it: what :func:`~npl_disposal.verify_plan` checks.

    ``levels`` are the on/off levels of the plan's switched channels (0 or 1 in
    whole-loan mode).
    """

    @property
    def levels(self) -> Mapping[str, float]:
        """On/off level of each switched channel (used: 1)."""
        ...

    def evaluate(self, measure: Measure) -> float | np.ndarray:
        """The measure's value: a number, or an array over branches when ``by_branch``."""
        ...


def npl_loss(plan: Measured, fixed_costs: Mapping[str, float]) -> np.ndarray:
    """Each branch's NPL loss (CNY yuan): ``max(0, -pnl + its share of fixed costs)``.

    A channel's fixed cost (paid when it is used) is shared among branches by their
    balance in the channel.
    """
    pnl = np.asarray(plan.evaluate(BRANCH_PNL), dtype=float)
    for name, cost in fixed_costs.items():
        pooled = np.asarray(plan.evaluate(channel_balance(name, by_branch=True)), dtype=float)
        if pooled.sum() > 0:
            pnl = pnl - cost * float(plan.levels.get(name, 1.0)) * pooled / pooled.sum()
    return np.maximum(0.0, -pnl) + 0.0  # no "-0.0" in reports

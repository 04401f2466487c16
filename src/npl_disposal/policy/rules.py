"""Every rule of the policy, defined once: what it bars, bounds, checks and says.

:func:`rules_of` reads a :class:`~npl_disposal.Policy` into the rules in force:

* loan rules (:class:`LongAgeRule`, :class:`WriteOffPriorityRule`): which loans may not
  use which channels (the model removes those options; the verifier finds any share
  on them);
* budgets (:class:`~npl_disposal.policy.budgets.ChannelBudget`, one per channel a section
  budgets), the profit floor (:class:`ProfitFloor`) and the tolerance
  (:class:`ToleranceRule`): :class:`~npl_disposal.policy.budgets.Limit` s on measures of
  the plan (a row each in the model, a check each in the verifier);
* the wage pool (:class:`WagePoolRule`): its figures, the ``max_fall`` check and the
  words; its rows are the wage-pool model of :mod:`npl_disposal.model.wage_pool`.

Each rule also says how an infeasibility reads (``short`` words of its limits, and the
quick checks run before any solve) and how :meth:`Policy.summary` states it. The
formulation is written out in ``docs/model.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from npl_disposal.policy._values import millions, money, pct
from npl_disposal.policy.budgets import ChannelBudget, Limit, channel_budgets
from npl_disposal.policy.measures import (
    DERECOGNISED,
    PROFIT,
    SMALL_MICRO_WRITTEN_OFF,
    Measured,
    npl_loss,
)
from npl_disposal.policy.sections import LongAge, Profit, Tolerance, WagePool

if TYPE_CHECKING:
    from npl_disposal.io.portfolio import Branches
    from npl_disposal.policy.policy import Policy

__all__ = [
    "LoanRule",
    "LongAgeRule",
    "Offers",
    "ProfitFloor",
    "Rules",
    "ToleranceRule",
    "WagePoolRule",
    "WriteOffPriorityRule",
    "rules_of",
    "tolerance_requirement",
]


# --------------------------------------------------------------------------- loan rules


class Offers(Protocol):
    """Which channels each loan is offered (rows of the options table), per loan."""

    def offered(self, channel: str) -> np.ndarray:
        """Mask of the loans offered ``channel``."""
        ...

    def offered_besides(self, channel: str) -> np.ndarray:
        """Mask of the loans offered any channel other than ``channel``."""
        ...


class LoanRule(Protocol):
    """A rule that bars some loans from some channels."""

    @property
    def rule(self) -> str:
        """The rule's name, e.g. ``long_age.months``."""
        ...

    @property
    def label(self) -> str:
        """How the compliance table names it, e.g. ``long_age``."""
        ...

    def concerns(self, offers: Offers, loans: pd.DataFrame) -> np.ndarray:
        """The loans the rule is about, barred or not (a mask over ``loans``)."""
        ...

    def barred(self, offers: Offers, loans: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
        """The loans (a mask over ``loans``) and the channels they may not use."""
        ...

    def broken(self) -> str:
        """How a plan that uses a barred option reads, after ``loan X: ``."""
        ...


@dataclass(frozen=True)
class LongAgeRule:
    """``[long_age] months``: an NPL this old may not be retained if another channel takes it."""

    section: LongAge
    rule: str = "long_age.months"
    label: str = "long_age"

    def concerns(self, offers: Offers, loans: pd.DataFrame) -> np.ndarray:
        """Mask of the loans aged at least ``months`` of NPL age."""
        return np.asarray(loans["npl_age_months"].to_numpy() >= self.section.months, dtype=bool)

    def barred(self, offers: Offers, loans: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
        """Long-aged loans that another channel can take may not be retained."""
        return self.concerns(offers, loans) & offers.offered_besides("retain"), ("retain",)

    def broken(self) -> str:
        """The words for a long-aged loan kept."""
        return f"aged {self.section.months:g} months or more and disposable, but retained"

    def describe(self) -> list[str]:
        """Its line in :meth:`Policy.summary`."""
        return [
            f"  long-aged NPLs: may not be retained from {self.section.months:g} months of NPL age"
        ]


@dataclass(frozen=True)
class WriteOffPriorityRule:
    """优先安排核销, ``[write_off] priority``: small/micro loans come first for write-off.

    ``"leave_book"`` (the default, also without a ``[write_off]`` section): a small/micro
    loan offered write-off may not be retained or restructured (应核尽核).
    ``"quota_first"``: the write-off ``quota`` (CNY yuan) goes to small/micro loans
    offered write-off first, a limit on the balance written off of them
    (:meth:`required`); they may stay on the book once the quota is spent.
    """

    reading: str = "leave_book"
    quota: float = math.inf
    rule: str = "write_off.priority"
    label: str = "write_off_priority"

    def concerns(self, offers: Offers, loans: pd.DataFrame) -> np.ndarray:
        """Mask of the small/micro loans offered write-off (none under ``"none"``)."""
        if self.reading == "none":
            return np.zeros(len(loans), dtype=bool)
        return loans["small_micro"].to_numpy(dtype=bool) & offers.offered("write_off")

    def barred(self, offers: Offers, loans: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
        """Under ``leave_book``, small/micro loans offered write-off may not stay or restructure."""
        if self.reading != "leave_book":
            return np.zeros(len(loans), dtype=bool), ()
        return self.concerns(offers, loans), ("retain", "restructure")

    def broken(self) -> str:
        """The words for such a loan kept or restructured."""
        return "small/micro and eligible for write-off, but retained or restructured"

    def required(self, offers: Offers, loans: pd.DataFrame) -> float | None:
        """Small/micro balance (CNY yuan) the plan must write off under ``quota_first``.

        What filling the quota with the small/micro loans offered write-off reaches,
        largest first, taking each that still fits (:func:`fill_quota`): all of them
        when they fit together. Loans are not split, so the quota may stay unused by
        less than the smallest loan that did not fit; fractional mode keeps the same
        limit, so that it stays a bound of the whole-loan plan. None under the other
        readings.
        """
        if self.reading != "quota_first":
            return None
        balance = loans["balance"].to_numpy(dtype=float)[self.concerns(offers, loans)]
        return fill_quota(balance, self.quota)

    def limits(self, required: float | None) -> list[Limit]:
        """Under ``quota_first``: small/micro balance written off ``>= required``."""
        if required is None:
            return []
        return [
            Limit(
                name="write_off_priority",
                rule="write_off.priority",
                measure=SMALL_MICRO_WRITTEN_OFF,
                sense=">=",
                amount=required,
                short="the write-off quota would go {x} less to small/micro loans than "
                "write_off.priority = quota_first requires",
                broken="small/micro loans written off CNY {amount:,.2f}; the quota must "
                "first take CNY {limit:,.2f} of them",
            )
        ]

    def describe(self) -> list[str]:
        """Its line in :meth:`Policy.summary`."""
        if self.reading == "quota_first":
            return ["  write-off priority: the quota goes to small/micro loans eligible for "
                    "write-off first (quota_first)"]  # fmt: skip
        if self.reading == "none":
            return ["  write-off priority: none (small/micro loans compete for write-off like "
                    "any other)"]  # fmt: skip
        return ["  write-off priority: small/micro loans eligible for write-off must leave "
                "the book (leave_book)"]  # fmt: skip


def fill_quota(balance: np.ndarray, quota: float) -> float:
    """Balance (CNY yuan) taken by filling ``quota`` largest first with each that fits.

    Vectorised: after each loan that does not fit the room left is less than half
    what it was, so there are at most ~log2(quota / smallest balance) rounds.
    """
    ordered = np.sort(balance)[::-1]
    room, start = float(quota), 0
    while start < len(ordered):
        start += int(np.searchsorted(-ordered[start:], -room, side="left"))  # first that fits
        if start >= len(ordered):
            break
        run = np.cumsum(ordered[start:])
        taken = int(np.searchsorted(run, room, side="right"))
        room -= float(run[taken - 1])
        start += taken
    return float(quota - room)


# --------------------------------------------------------------------------- profit


@dataclass(frozen=True)
class ProfitFloor:
    """``[profit] max_loss``: this year's profit, less fixed costs, falls by at most this."""

    section: Profit
    costs: tuple[tuple[str, float], ...] = ()

    def limits(self) -> list[Limit]:
        """Profit impact less the fixed costs of the channels used ``>= -max_loss``."""
        return [
            Limit(
                name="profit_max_loss",
                rule="profit.max_loss",
                measure=PROFIT,
                sense=">=",
                amount=-self.section.max_loss,
                costs=self.costs,
                short="profit would fall {x} more than profit.max_loss allows",
                broken="profit falls by CNY {amount:,.2f}; the limit is CNY {limit:,.2f}",
                negate=True,
            )
        ]

    def shortfall(self, least_loss: float) -> str | None:
        """Words when even the plan that loses least loses ``least_loss`` (CNY) too much."""
        if -least_loss >= -self.section.max_loss - 0.01:
            return None
        return (
            f"even the plan that costs the least profit loses {millions(least_loss)} this "
            f"year; the policy allows a loss of {millions(self.section.max_loss)} "
            "(profit.max_loss)"
        )

    def describe(self) -> list[str]:
        """Its line in :meth:`Policy.summary`."""
        return [f"  profit: may fall by at most {money(self.section.max_loss)}"]


# --------------------------------------------------------------------------- tolerance


def tolerance_requirement(
    npl: np.ndarray, inclusive_loans: np.ndarray, threshold: float
) -> np.ndarray:
    """Inclusive NPL (CNY yuan) each branch must derecognise to meet the threshold.

    From (N - D) <= tau (L - D): D >= (N - tau L) / (1 - tau); negative means none.
    """
    return (npl - threshold * inclusive_loans) / (1.0 - threshold)


@dataclass(frozen=True)
class ToleranceRule:
    """``[tolerance]``: each branch's inclusive NPL ratio after the plan at most tau.

    ``N - D <= tau (L - D)`` for every branch, with ``N`` its inclusive small/micro NPL,
    ``L`` its inclusive loans, ``D`` the inclusive NPL the plan derecognises and ``tau
    = bank_npl_ratio + margin``. Imposed in the optimiser when ``enforce``; always
    checked in the branch figures.
    """

    section: Tolerance

    @property
    def threshold(self) -> float:
        """tau, the tolerated inclusive NPL ratio (a share)."""
        return self.section.threshold

    def limits(self, branches: Branches | None) -> list[Limit]:
        """One limit per branch that must derecognise: ``D >= (N - tau L) / (1 - tau)``."""
        if not self.section.enforce or branches is None:
            return []
        tau = self.threshold
        need = tolerance_requirement(branches.inclusive_npl, branches.inclusive_loans, tau)
        out = []
        for b in np.flatnonzero(need > 0):
            name = branches.names[b]
            npl, total = float(branches.inclusive_npl[b]), float(branches.inclusive_loans[b])
            out.append(
                Limit(
                    name=f"tolerance[{name}]",
                    rule="tolerance",
                    measure=DERECOGNISED,
                    sense=">=",
                    amount=float(need[b]),
                    branch=name,
                    short="branch {branch} needs {x} more derecognised inclusive NPL to be "
                    "within tolerance",
                    broken=f"branch {name}: inclusive NPL after disposal CNY {{amount:,.2f}} is "
                    f"above {tau:.2%} of its inclusive loans (CNY {{limit:,.2f}})",
                    restate=_restated(npl, total, tau),
                )
            )
        return out

    def shortfalls(self, branches: Branches, can: np.ndarray) -> list[tuple[int, float, str]]:
        """Branches that cannot get within tolerance, derecognising at most ``can`` (CNY).

        Each as ``(branch position, need, words)``.
        """
        if not self.section.enforce:
            return []
        npl, total, tau = branches.inclusive_npl, branches.inclusive_loans, self.threshold
        need = tolerance_requirement(npl, total, tau)
        return [
            (
                int(b),
                float(need[b]),
                f"branch {branches.names[b]} must derecognise {millions(need[b])} of inclusive "
                f"NPL to bring its ratio from {npl[b] / total[b]:.2%} to the threshold "
                f"{tau:.2%}; only "
                f"{millions(can[b])} is eligible for a channel that derecognises it",
            )
            for b in np.flatnonzero(need > can + 0.01)
        ]

    def describe(self) -> list[str]:
        """Its line in :meth:`Policy.summary`."""
        tol = self.section
        how = "enforced in the optimiser" if tol.enforce else "checked, not enforced"
        return [
            f"  tolerance: branch inclusive NPL ratio <= {pct(tol.bank_npl_ratio)} + "
            f"{pct(tol.margin)} = {pct(tol.threshold)} ({how})"
        ]


def _restated(npl: float, total: float, tau: float) -> Callable[[float], tuple[float, float]]:
    """The tolerance checked as ``N - D <= tau (L - D)`` for a derecognised ``D``."""
    return lambda derecognised: (npl - derecognised, tau * (total - derecognised))


# --------------------------------------------------------------------------- wage pool


@dataclass(frozen=True)
class WagePoolRule:
    """``[wage_pool]``: each branch's wage pool after the plan's NPL losses.

    A branch counts its NPL loss in full, or at ``consider_share`` when it ends
    within tolerance; its wage pool is ``rate x max(0, profit - counted loss)``.
    ``max_fall`` bounds how far that pool may fall; ``weight`` puts the fall in the
    objective (the wage-pool model of :mod:`npl_disposal.model.wage_pool`).
    """

    section: WagePool
    present: bool = True
    tolerance: Tolerance | None = None

    def rates(self, branches: Branches) -> np.ndarray:
        """Each branch's wage rate: its own ``wage_rate``, else ``rate`` (a share)."""
        given = branches.wage_rate
        return np.where(np.isnan(given), self.section.rate, given)

    def within(
        self, branches: Branches, derecognised: np.ndarray, slack: float = 0.0
    ) -> np.ndarray:
        """Which branches end within tolerance after derecognising ``derecognised`` (CNY)."""
        if self.tolerance is None:
            return np.zeros(len(branches.names), dtype=bool)
        npl, total = branches.inclusive_npl, branches.inclusive_loans
        return (npl - derecognised) <= self.tolerance.threshold * (total - derecognised) + slack

    def falls(
        self, plan: Measured, branches: Branches, fixed_costs: Mapping[str, float]
    ) -> np.ndarray:
        """How far each branch's wage pool falls because of the plan's NPL losses (CNY)."""
        loss = npl_loss(plan, fixed_costs)
        within = self.within(branches, np.asarray(plan.evaluate(DERECOGNISED)), slack=0.01)
        counted = np.where(within, self.section.consider_share * loss, loss)
        profit = branches.profit
        rate = self.rates(branches)
        return rate * (np.maximum(profit, 0.0) - np.maximum(profit - counted, 0.0))

    def checked(self) -> bool:
        """Whether a plan is checked against ``max_fall``."""
        return self.present and math.isfinite(self.section.max_fall)

    def broken(self, branch: str) -> str:
        """The words for a branch whose wage pool falls too far."""
        return (
            f"branch {branch}: the plan's NPL losses cut its wage pool by CNY "
            "{amount:,.2f}; the limit is CNY {limit:,.2f}"
        )

    def describe(self) -> list[str]:
        """Its lines in :meth:`Policy.summary` (the defaults when the section is absent)."""
        wp = self.section
        default = "" if self.present else " (defaults)"
        lines = [
            f"  wage pool: NPL loss counted at {pct(wp.consider_share)} within tolerance; "
            f"rate {pct(wp.rate)} of profit{default}"
        ]
        if wp.weight > 0:
            lines.append(f"  wage pool in the objective: weight {wp.weight:g} per CNY")
        if math.isfinite(wp.max_fall):
            lines.append(f"  wage pool may fall by at most {money(wp.max_fall)} per branch")
        return lines


#: The words for a branch whose modelled wage-pool fall is beyond ``max_fall``.
WAGE_POOL_SHORT = "branch {branch}'s wage pool would fall {x} more than wage_pool.max_fall allows"


# --------------------------------------------------------------------------- all rules

#: What :meth:`Policy.summary` says of each standard section that is absent.
ABSENT = {
    "long_age": "long-age rule",
    "write_off": "write-off quota",
    "bulk_transfer": "bulk-transfer capacity",
    "securitisation": "securitisation pool",
    "restructure": "restructuring limit",
    "profit": "profit floor",
    "tolerance": "NPL tolerance",
}


@dataclass(frozen=True)
class Rules:
    """Every rule in force under a policy, in the order the model adds their rows.

    Loan rules, then the channel budgets (standard sections, then ``[channels.NAME]``),
    the profit floor, the tolerance and the wage pool.
    """

    loan_rules: tuple[LoanRule, ...]
    budgets: tuple[ChannelBudget, ...]
    profit: ProfitFloor | None
    tolerance: ToleranceRule | None
    wage_pool: WagePoolRule

    @property
    def fixed_costs(self) -> dict[str, float]:
        """Fixed cost (CNY yuan) of each on/off channel that has one, paid when it is used."""
        return {b.channel: b.fixed_cost for b in self.budgets if b.on_off and b.fixed_cost}

    def budget(self, channel: str) -> ChannelBudget | None:
        """The budgets of ``channel``, if a section sets any."""
        return next((b for b in self.budgets if b.channel == channel), None)

    @property
    def priority(self) -> WriteOffPriorityRule | None:
        """The write-off priority rule (``[write_off] priority``)."""
        return next((r for r in self.loan_rules if isinstance(r, WriteOffPriorityRule)), None)

    def required_write_off(self, offers: Offers, loans: pd.DataFrame) -> float | None:
        """Small/micro balance (CNY yuan) the plan must write off (``quota_first``), or None."""
        rule = self.priority
        return rule.required(offers, loans) if rule is not None else None

    def limits(self, branches: Branches | None, required: float | None = None) -> list[Limit]:
        """Every limit on a measure of the plan, in the model's row order.

        ``branches`` (the branch table's figures) gives the tolerance its limits;
        ``required`` (:meth:`required_write_off`) the write-off priority its limit.
        """
        out = [limit for budget in self.budgets for limit in budget.limits()]
        if self.priority is not None:
            out += self.priority.limits(required)
        if self.profit is not None:
            out += self.profit.limits()
        if self.tolerance is not None:
            out += self.tolerance.limits(branches)
        return out

    def describe(self, sections: Mapping[str, Any]) -> list[str]:
        """The lines of :meth:`Policy.summary` below its first, in the order of the sections.

        ``sections`` maps each standard section to its value (None when absent).
        """
        lines: list[str] = []
        for rule in self.loan_rules:
            lines += getattr(rule, "describe", lambda: [])()
        for budget in self.budgets:
            if not budget.section.startswith("channels."):
                lines.append(budget.summary)
        for part in (self.profit, self.tolerance, self.wage_pool):
            if part is not None:
                lines += part.describe()
        lines += [b.summary for b in self.budgets if b.section.startswith("channels.")]
        absent = [label for name, label in ABSENT.items() if sections.get(name) is None]
        if absent:
            lines.append(f"  not constrained: {', '.join(absent)}")
        return lines


def rules_of(policy: Policy) -> Rules:
    """The rules in force under ``policy``.

    A missing section: that rule is absent; the write-off priority holds in its
    default reading (``leave_book``) without a ``[write_off]`` section.
    """
    sections = {name: getattr(policy, name) for name in ABSENT}
    budgets = channel_budgets(sections, policy.channels)
    loan_rules: list[LoanRule] = []
    if policy.long_age is not None:
        loan_rules.append(LongAgeRule(policy.long_age))
    write_off = policy.write_off
    reading = write_off.reading if write_off is not None else "leave_book"
    quota = write_off.quota if write_off is not None else math.inf
    loan_rules.append(WriteOffPriorityRule(reading, quota))
    costs = tuple((b.channel, b.fixed_cost) for b in budgets if b.on_off and b.fixed_cost)
    return Rules(
        loan_rules=tuple(loan_rules),
        budgets=budgets,
        profit=ProfitFloor(policy.profit, costs) if policy.profit is not None else None,
        tolerance=ToleranceRule(policy.tolerance) if policy.tolerance is not None else None,
        wage_pool=WagePoolRule(
            policy.wage_pool_or_default, policy.wage_pool is not None, policy.tolerance
        ),
    )

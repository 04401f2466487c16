"""Budgets of a channel, one definition for every section that sets them.

``[write_off] quota``, ``[bulk_transfer] capacity / min_loans``, ``[securitisation]
max_pool / min_pool / fixed_cost``, ``[restructure] max_loans`` and every
``[channels.NAME]`` table are instances of :class:`ChannelBudget`: a capacity (CNY yuan
of balance), a minimum balance, a most and a least number of loans, and a fixed cost,
each under the policy key its section uses, with the words a risk officer reads when
the budget cannot be met or a plan breaks it. A minimum or a fixed cost (and, by the
notice's reading, a bulk-transfer package or a securitisation pool) makes the channel
an on/off block: either it takes nothing, or at least its minimums.

Each budget gives :class:`Limit` s: a :class:`~npl_disposal.policy.measures.Measure`
of the plan against a number. The model builder makes a row of each, the verifier
checks each, the diagnosis words each: all from this one definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from npl_disposal.policy._values import millions, money
from npl_disposal.policy.measures import Measure, channel_balance, channel_loans
from npl_disposal.policy.sections import (
    BulkTransfer,
    ChannelLimits,
    Restructure,
    Securitisation,
    WriteOff,
)

__all__ = ["BudgetKey", "ChannelBudget", "Limit", "channel_budgets"]

Sense = Literal["<=", ">="]

#: How a verification message shows money against its limit.
_AGAINST = "CNY {amount:,.2f} against a limit of CNY {limit:,.2f}"


@dataclass(frozen=True)
class Limit:
    """One bound a rule puts on one measure of the plan: a row of the model, a check.

    ``measure sense amount``, where ``amount`` is in the measure's unit. With a
    ``switch`` (an on/off channel) the amount is scaled by the channel's level: a
    switched-off channel takes nothing, and its minimums do not apply. ``costs`` are
    the fixed costs (CNY yuan) of on/off channels counted in the measure when on
    (the profit rule). ``short`` words a miss (``{x}`` the amount missed, ``{branch}``,
    ``{channel}``); ``broken`` words a plan that breaks it (``{amount}`` the plan's
    measure, ``{limit}`` the bound). ``restate``, when given, turns the measure into
    the ``(amount, limit)`` a plan is checked and worded against, always as
    ``amount <= limit`` (the tolerance states ``N - D <= tau (L - D)``). ``negate``
    says the policy states the limit on the negated measure (a profit floor of
    ``-max_loss`` is a fall of at most ``max_loss``): tables show it that way.
    """

    name: str
    rule: str
    measure: Measure
    sense: Sense
    amount: float
    switch: str | None = None
    costs: tuple[tuple[str, float], ...] = ()
    branch: str | None = None
    short: str = ""
    broken: str = ""
    restate: Callable[[float], tuple[float, float]] | None = None
    negate: bool = False

    @property
    def unit(self) -> str:
        """``"CNY"`` or ``"loans"``, the measure's unit."""
        return self.measure.unit

    def bound(self, levels: Mapping[str, float]) -> float:
        """The amount in force at the on/off ``levels`` (a switched-off channel: 0)."""
        if self.switch is None:
            return self.amount
        level = float(levels.get(self.switch, 0.0))
        return self.amount * level if level > 0 else 0.0

    def fixed(self, levels: Mapping[str, float]) -> float:
        """The fixed costs (CNY yuan) counted at the on/off ``levels``."""
        return sum(cost * float(levels.get(name, 0.0)) for name, cost in self.costs)

    def miss(self, amount: float) -> str:
        """The words for missing this limit by ``amount`` (CNY yuan or loans)."""
        shown = millions(amount) if self.unit == "CNY" else f"{amount:,.1f} loans"
        channel = self.measure.channel or ""
        return self.short.format(x=shown, branch=self.branch, channel=channel)


@dataclass(frozen=True)
class BudgetKey:
    """One budget of a channel under its policy key, with its words.

    ``field`` is ``capacity`` (CNY yuan, at most), ``min_balance`` (CNY yuan, at least
    when used), ``max_loans`` or ``min_loans`` (loans); ``key`` is the name the
    section gives it (``[write_off] quota`` is a capacity). ``short`` and ``broken``
    are the words of :class:`Limit`; ``label`` names the budget where the diagnosis
    counts the room channels have.
    """

    field: str
    key: str
    short: str
    broken: str
    label: str = ""


#: What each budget field measures, and which way it bounds it.
_FIELDS: dict[str, tuple[Callable[[str], Measure], Sense]] = {
    "capacity": (channel_balance, "<="),
    "min_balance": (channel_balance, ">="),
    "max_loans": (channel_loans, "<="),
    "min_loans": (channel_loans, ">="),
}


@dataclass(frozen=True)
class ChannelBudget:
    """The budgets of one channel (CNY yuan and loans), whichever section sets them.

    ``section`` is where they come from (``write_off``, ``channels.amc_b``) and
    ``keys`` the budgets it sets, in order. ``always_on_off`` makes the channel an
    on/off block even without a minimum or a fixed cost (bulk transfer, securitisation).
    """

    channel: str
    section: str
    keys: tuple[BudgetKey, ...]
    capacity: float = math.inf
    min_balance: float = 0.0
    max_loans: float = math.inf
    min_loans: float = 0.0
    fixed_cost: float = 0.0
    always_on_off: bool = False
    summary: str = ""

    @property
    def on_off(self) -> bool:
        """Whether the channel is an on/off block (it has minimums or a fixed cost)."""
        return (
            self.always_on_off or self.min_balance > 0 or self.min_loans > 0 or self.fixed_cost > 0
        )

    def limits(self) -> list[Limit]:
        """The budget's limits, in the order of its keys.

        A capacity is a limit when finite or when the channel is on/off (switched off,
        it takes nothing; the model then bounds it by all it is offered); a loan limit
        when finite; a minimum when positive. On an on/off channel the capacity and the
        minimums scale with its level; the most loans does not (the capacity already
        closes a channel switched off).
        """
        out = []
        for k in self.keys:
            amount = float(getattr(self, k.field))
            wanted = {
                "capacity": math.isfinite(amount) or self.on_off,
                "max_loans": math.isfinite(amount),
            }.get(k.field, amount > 0)
            if not wanted:
                continue
            measure, sense = _FIELDS[k.field]
            out.append(
                Limit(
                    name=f"{self.channel}_{k.key}",
                    rule=f"{self.section}.{k.key}",
                    measure=measure(self.channel),
                    sense=sense,
                    amount=amount,
                    switch=self.channel if self.on_off and k.field != "max_loans" else None,
                    short=k.short,
                    broken=k.broken,
                )
            )
        return out

    def room(self) -> tuple[float, str, float, str]:
        """For the diagnosis: the most balance (CNY) and loans it takes, with their labels."""
        labels = {k.field: k.label for k in self.keys}
        return (
            self.capacity,
            labels.get("capacity", ""),
            self.max_loans,
            labels.get("max_loans", ""),
        )


def _write_off(section: WriteOff) -> ChannelBudget:
    quota = BudgetKey(
        "capacity",
        "quota",
        "the write-off quota is {x} short",
        "write-off quota exceeded: " + _AGAINST,
        "write-off quota",
    )
    return ChannelBudget(
        "write_off",
        "write_off",
        (quota,),
        capacity=section.quota,
        summary=f"  write-off quota: {money(section.quota)}",
    )


def _bulk_transfer(section: BulkTransfer) -> ChannelBudget:
    keys = (
        BudgetKey(
            "capacity",
            "capacity",
            "AMCs would have to buy {x} more than the bulk transfer capacity",
            "bulk transfer above AMC capacity: " + _AGAINST,
            "bulk transfer capacity",
        ),
        BudgetKey(
            "min_loans",
            "min_loans",
            "the bulk transfer package is {x} short of its minimum size",
            "bulk transfer package of {amount:g} loans, minimum {limit:g}",
        ),
    )
    text = f"  bulk transfer: at most {money(section.capacity)} to AMCs"
    if section.min_loans:
        text += f"; packages of at least {section.min_loans} loans"
    return ChannelBudget(
        "bulk_transfer",
        "bulk_transfer",
        keys,
        capacity=section.capacity,
        min_loans=section.min_loans,
        always_on_off=True,
        summary=text,
    )


def _securitisation(section: Securitisation) -> ChannelBudget:
    keys = (
        BudgetKey(
            "capacity",
            "max_pool",
            "the securitisation pool would exceed its maximum by {x}",
            "securitisation pool too large: " + _AGAINST,
            "securitisation max pool",
        ),
        BudgetKey(
            "min_balance",
            "min_pool",
            "the securitisation pool is {x} short of its minimum",
            "securitisation pool too small: " + _AGAINST,
        ),
    )
    if section.min_pool > 0:
        text = f"  securitisation: pool of {money(section.min_pool)} to {money(section.max_pool)}"
    else:
        text = f"  securitisation: pool of at most {money(section.max_pool)}"
    if section.fixed_cost > 0:
        text += f"; fixed issuance cost {money(section.fixed_cost)}"
    return ChannelBudget(
        "securitisation",
        "securitisation",
        keys,
        capacity=section.max_pool,
        min_balance=section.min_pool,
        fixed_cost=section.fixed_cost,
        always_on_off=True,
        summary=text,
    )


def _restructure(section: Restructure) -> ChannelBudget:
    most = BudgetKey(
        "max_loans",
        "max_loans",
        "{x} more restructurings than restructure.max_loans allows",
        "{amount:g} loans restructured, at most {limit:g} allowed",
        "restructuring",
    )
    return ChannelBudget(
        "restructure",
        "restructure",
        (most,),
        max_loans=section.max_loans,
        summary=f"  restructuring: at most {section.max_loans} loans",
    )


def _user_channel(name: str, limits: ChannelLimits) -> ChannelBudget:
    keys = (
        BudgetKey(
            "capacity",
            "capacity",
            "{channel} would have to take {x} more than its capacity",
            f"{name} takes more than its capacity: " + _AGAINST,
            f"{name} capacity",
        ),
        BudgetKey(
            "min_balance",
            "min_balance",
            "{channel} is {x} short of its minimum",
            f"{name} takes less than its minimum: " + _AGAINST,
        ),
        BudgetKey(
            "max_loans",
            "max_loans",
            "{x} more loans to {channel} than its max_loans allows",
            f"{name} takes {{amount:g}} loans, at most {{limit:g}} allowed",
            name,
        ),
        BudgetKey(
            "min_loans",
            "min_loans",
            "{channel} is {x} short of its minimum number of loans",
            f"{name} takes {{amount:g}} loans, at least {{limit:g}} when used",
        ),
    )
    parts = []
    if math.isfinite(limits.capacity):
        parts.append(f"at most {money(limits.capacity)}")
    if math.isfinite(limits.max_loans):
        parts.append(f"at most {limits.max_loans:g} loans")
    if limits.min_balance > 0 or limits.min_loans > 0:
        parts.append(f"if used at least {money(limits.min_balance)} and {limits.min_loans} loans")
    if limits.fixed_cost > 0:
        parts.append(f"fixed cost {money(limits.fixed_cost)}")
    return ChannelBudget(
        name,
        f"channels.{name}",
        keys,
        capacity=limits.capacity,
        min_balance=limits.min_balance,
        max_loans=limits.max_loans,
        min_loans=limits.min_loans,
        fixed_cost=limits.fixed_cost,
        summary=f"  channel {name}: " + ("; ".join(parts) or "no limits"),
    )


#: The standard sections that budget a channel, and how each reads as a budget.
STANDARD: dict[str, Callable[..., ChannelBudget]] = {
    "write_off": _write_off,
    "bulk_transfer": _bulk_transfer,
    "securitisation": _securitisation,
    "restructure": _restructure,
}


def channel_budgets(
    sections: Mapping[str, object], channels: Mapping[str, ChannelLimits]
) -> tuple[ChannelBudget, ...]:
    """The budgets of the standard ``sections`` present, then of each ``[channels.NAME]``."""
    out = [make(sections[name]) for name, make in STANDARD.items() if sections.get(name)]
    out += [_user_channel(name, limits) for name, limits in channels.items()]
    return tuple(out)

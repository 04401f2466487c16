"""A schedule's rules: the one-period rules stated over periods, windows and years.

Nothing here is a new rule. Each budget, the profit floor and the tolerance are the
one-period definitions of :mod:`npl_disposal.policy.rules`, restated over time:

* a budget is a total over the horizon, measured on the balance at disposal; a
  ``*_by_period`` list adds one limit per period;
* an on/off channel (a bulk-transfer package, a securitisation pool, a
  ``[channels.NAME]`` table with a minimum or a fixed cost) is one on/off block per
  window (``windows``, default every period; a user channel every period): each
  window's package meets the minimums and the capacity, and pays the fixed cost.
  Bulk transfer's and a user channel's capacity also bound the horizon's total;
  securitisation has no total (each window is its own pool);
* the profit floor holds for each year of the horizon (a period belongs to the year
  it starts in; retain counts in year 1; a block's fixed cost in its window's year);
* the tolerance holds at each year end (``[tolerance] at = "year_end"``) or each
  period (``"every_period"``), on the NPL path a kept loan follows.

The formulation is written out in ``docs/model.md``, section 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from npl_disposal.policy._values import millions
from npl_disposal.policy.budgets import ChannelBudget, Limit
from npl_disposal.policy.measures import Measure
from npl_disposal.policy.policy import PER_PERIOD, Policy
from npl_disposal.policy.rules import _restated, tolerance_requirement

__all__ = ["Horizon", "ScheduleRules", "Window", "block_name"]

#: Channels whose section may list ``windows``.
WINDOWED = ("bulk_transfer", "securitisation")
#: Channels whose capacity bounds the horizon's total as well as each window.
_NO_TOTAL = ("securitisation",)


def block_name(channel: str, period: int) -> str:
    """The on/off block of ``channel``'s window in ``period``, e.g. ``bulk_transfer@2``."""
    return f"{channel}@{period}"


@dataclass(frozen=True)
class Horizon:
    """Periods 1..T of ``period_months`` months; period T + 1 is "kept through the horizon"."""

    periods: int
    period_months: int = 3

    def year(self, period: int) -> int:
        """The year (1, 2, ...) a period starts in; T + 1 (retain) counts in year 1."""
        if period > self.periods:
            return 1
        return (period - 1) * self.period_months // 12 + 1

    @property
    def years(self) -> tuple[int, ...]:
        """The years of the horizon."""
        return tuple(range(1, self.year(self.periods) + 1))

    def in_year(self, year: int) -> tuple[int, ...]:
        """The periods of ``year`` (year 1 also holds T + 1, the retain option)."""
        out = [t for t in range(1, self.periods + 1) if self.year(t) == year]
        return (*out, self.periods + 1) if year == 1 else tuple(out)

    def checked(self, at: str | None) -> tuple[int, ...]:
        """The periods the tolerance is checked at: each year's last, or every period."""
        if at == "every_period":
            return tuple(range(1, self.periods + 1))
        return tuple(max(t for t in self.in_year(y) if t <= self.periods) for y in self.years)


@dataclass(frozen=True)
class Window:
    """One on/off block: ``channel`` in ``period``, with the fixed cost it pays (CNY yuan)."""

    channel: str
    period: int
    fixed_cost: float

    @property
    def name(self) -> str:
        """The block's name, ``channel@period``."""
        return block_name(self.channel, self.period)


@dataclass(frozen=True)
class ScheduleRules:
    """The rules of ``policy`` over its ``[schedule]`` horizon."""

    policy: Policy
    horizon: Horizon

    @classmethod
    def of(cls, policy: Policy) -> ScheduleRules:
        """The rules of a policy with a ``[schedule]`` section."""
        if policy.schedule is None:
            raise ValueError("the policy has no [schedule] section; add [schedule] periods = T")
        return cls(policy, Horizon(policy.schedule.periods, policy.schedule.period_months))

    def windows(self, channel: str) -> tuple[int, ...]:
        """The periods in which ``channel`` may take loans (default: every period)."""
        section = getattr(self.policy, channel, None) if channel in WINDOWED else None
        given = getattr(section, "windows", None)
        return tuple(given) if given else tuple(range(1, self.horizon.periods + 1))

    def on_off(self) -> list[ChannelBudget]:
        """The budgets of on/off channels, one block per window each."""
        return [b for b in self.policy.rules.budgets if b.on_off]

    def blocks(self, offered: set[tuple[str, int]]) -> list[Window]:
        """Every window of an on/off channel in which the options offer it."""
        return [
            Window(b.channel, t, float(b.fixed_cost))
            for b in self.on_off()
            for t in self.windows(b.channel)
            if (b.channel, t) in offered
        ]

    def limits(
        self,
        windows: list[Window],
        kept_npl: np.ndarray | None = None,
        inclusive_loans: np.ndarray | None = None,
        branches: tuple[str, ...] = (),
    ) -> list[Limit]:
        """Every limit of the schedule, in the model's row order.

        ``kept_npl`` and ``inclusive_loans`` are (branches, checked periods) arrays of
        CNY yuan: each branch's inclusive NPL if nothing is disposed (the kept path
        plus the new NPL so far) and its inclusive loans, at each checked period.
        """
        out: list[Limit] = []
        for budget in self.policy.rules.budgets:
            out += self._budget(budget, windows)
        out += self._profit(windows)
        if kept_npl is not None and inclusive_loans is not None:
            out += self._tolerance(kept_npl, inclusive_loans, branches)
        return out

    def _budget(self, budget: ChannelBudget, windows: list[Window]) -> list[Limit]:
        own = [w for w in windows if w.channel == budget.channel]
        out: list[Limit] = []
        for limit in budget.limits():
            if limit.switch is None:
                out.append(limit)  # a total over the horizon
                continue
            if limit.measure.weight == "balance" and limit.sense == "<=" and (
                budget.channel not in _NO_TOTAL and math.isfinite(limit.amount)
            ):
                out.append(replace(limit, switch=None))  # the horizon's total
            out += [
                replace(limit, name=f"{limit.name}@{w.period}", switch=w.name,
                        measure=replace(limit.measure, periods=(w.period,)))
                for w in own
            ]  # fmt: skip
        return out + self._by_period(budget)

    def _by_period(self, budget: ChannelBudget) -> list[Limit]:
        """The limits of a ``*_by_period`` list: one per period, on that period's disposals.

        An on/off channel's windows already have rows ``<name>@t`` (its capacity in the
        window), so its per-period rows are ``<name>_by_period@t``.
        """
        key = PER_PERIOD.get(budget.section)
        section = getattr(self.policy, budget.section, None)
        amounts = getattr(section, key, None) if key is not None else None
        if amounts is None:
            return []
        total = next(lim for lim in budget.limits() if lim.sense == "<=")
        stem = f"{total.name}_by_period" if budget.on_off else total.name
        return [
            replace(total, name=f"{stem}@{t}", rule=f"{budget.section}.{key}",
                    switch=None, amount=float(amount),
                    measure=replace(total.measure, periods=(t,)))
            for t, amount in enumerate(amounts, start=1)
        ]  # fmt: skip

    def _profit(self, windows: list[Window]) -> list[Limit]:
        floor = self.policy.rules.profit
        if floor is None:
            return []
        (limit,) = floor.limits()
        out = []
        for year in self.horizon.years:
            costs = tuple((w.name, w.fixed_cost) for w in windows
                          if w.fixed_cost and self.horizon.year(w.period) == year)  # fmt: skip
            out.append(replace(limit, name=f"{limit.name}@year{year}", costs=costs,
                               measure=replace(limit.measure,
                                               periods=self.horizon.in_year(year))))  # fmt: skip
        return out

    def _tolerance(
        self, kept_npl: np.ndarray, inclusive_loans: np.ndarray, branches: tuple[str, ...]
    ) -> list[Limit]:
        rule = self.policy.rules.tolerance
        if rule is None or not rule.section.enforce:
            return []
        tau = rule.threshold
        out = []
        for j, t in enumerate(self.horizon.checked(self.policy.tolerance_at)):
            need = tolerance_requirement(kept_npl[:, j], inclusive_loans[:, j], tau)
            for b in np.flatnonzero(need > 0):
                name, npl, total = branches[b], float(kept_npl[b, j]), float(inclusive_loans[b, j])
                measure = Measure("path", inclusive=True, by_branch=True,
                                  periods=tuple(range(1, t + 1)), at=t)  # fmt: skip
                out.append(Limit(
                    name=f"tolerance[{name}]@{t}", rule="tolerance", measure=measure, sense=">=",
                    amount=float(need[b]), branch=name,
                    short=f"branch {{branch}} needs {{x}} more derecognised inclusive NPL by "
                    f"period {t} to be within tolerance",
                    broken=f"branch {name}, period {t}: inclusive NPL after disposal "
                    f"CNY {{amount:,.2f}} is above {tau:.2%} of its inclusive loans "
                    "(CNY {limit:,.2f})",
                    restate=_restated(npl, total, tau),
                ))  # fmt: skip
        return out

    def describe(self) -> list[str]:
        """The schedule's lines in :meth:`Policy.summary`."""
        h = self.horizon
        lines = [f"  schedule: {h.periods} periods of {h.period_months} months "
                 f"({len(h.years)} year(s)); tolerance checked at periods "
                 f"{', '.join(map(str, h.checked(self.policy.tolerance_at)))}"]  # fmt: skip
        for channel in WINDOWED:
            if getattr(getattr(self.policy, channel, None), "windows", None):
                lines.append(f"  {channel} windows: periods "
                             f"{', '.join(map(str, self.windows(channel)))}")  # fmt: skip
        for section, key in PER_PERIOD.items():
            amounts = getattr(getattr(self.policy, section, None), key, None)
            if amounts:
                shown = ", ".join(millions(a) if section != "restructure" else f"{a:g}"
                                  for a in amounts)  # fmt: skip
                lines.append(f"  {section}.{key}: {shown}")
        return lines

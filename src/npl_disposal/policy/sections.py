"""The sections of ``policy.toml``: one frozen dataclass each, validated as a whole.

Each field's metadata gives its kind (how it is checked, :mod:`._values`) and what it
means. :func:`parse_section` checks a mapping of keys against a section and collects
every problem; :func:`parse_channels` does it for the ``[channels.NAME]`` tables.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from npl_disposal.exceptions import PolicyError
from npl_disposal.io.schema import (
    CHANNEL_ALIASES,
    OWN_CHANNEL_ALLOWED,
    STANDARD_CHANNELS,
    is_channel_name,
)
from npl_disposal.policy._values import (
    CheckedAt,
    Mode,
    Priority,
    Problem,
    check_value,
    show,
    suggest,
)
from npl_disposal.policy._values import (
    key as meta,
)

__all__ = [
    "ALL_SECTIONS",
    "CONSTRAINT_SECTIONS",
    "EXTRA_SECTIONS",
    "SECTIONS",
    "SECTION_CLASSES",
    "BulkTransfer",
    "ChannelLimits",
    "LongAge",
    "ModeSection",
    "Profit",
    "Restructure",
    "Risk",
    "Schedule",
    "Securitisation",
    "Tolerance",
    "WagePool",
    "WriteOff",
    "check_channel",
    "parse_channels",
    "parse_section",
]

#: Sections stored as-is in :attr:`Policy.extra`, validated by the modules that use them.
EXTRA_SECTIONS: tuple[str, ...] = ("valuation", "solver")

# --------------------------------------------------------------------------- sections


class Section:
    """Shared behaviour of the section dataclasses: validation and normalisation."""

    #: The policy.toml section name; set by each subclass.
    section: str = ""

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        normalised, problems = parse_section(self.section, values)
        if problems:
            raise PolicyError(problems, source=type(self).__name__)
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the section's keys and values, as written in ``policy.toml``.

        Optional keys left unset (``None``: a schedule's lists, a reading left to its
        default) are not written.
        """
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        values = {f.name: getattr(self, f.name) for f in fields}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class ModeSection(Section):
    """``[mode]``: whole-loan (MILP, default) or fractional (LP relaxation) allocation."""

    section = "mode"
    mode: Mode = field(default="whole_loan", metadata=meta("mode", "allocation mode"))


@dataclass(frozen=True)
class Schedule(Section):
    """``[schedule]``: plan over ``periods`` periods of ``period_months`` months each."""

    section = "schedule"
    periods: int = field(metadata=meta("period", "the number of periods of the schedule"))
    period_months: int = field(
        default=3, metadata=meta("period", "the months in each period (3: quarters)")
    )


@dataclass(frozen=True)
class LongAge(Section):
    """``[long_age]``: NPLs with ``npl_age_months >= months`` may not be retained."""

    section = "long_age"
    months: float = field(
        metadata=meta("months", "NPL age (months) from which retaining is barred")
    )


@dataclass(frozen=True)
class WriteOff(Section):
    """``[write_off]``: the write-off quota (CNY yuan of book balance) and the priority.

    ``priority`` is the reading of 优先安排核销: ``"leave_book"`` (default: a small/micro
    loan eligible for write-off may not be retained or restructured),
    ``"quota_first"`` (the quota goes to small/micro loans eligible for write-off
    first) or ``"none"``.
    """

    section = "write_off"
    quota: float = field(metadata=meta("money", "the write-off quota in CNY yuan"))
    priority: Priority | None = field(
        default=None,
        metadata=meta("priority", "how small/micro loans come first for write-off "
                      "(default leave_book)"),
    )
    quota_by_period: tuple[float, ...] | None = field(
        default=None,
        metadata=meta("money_list", "a schedule's write-off quota in each period, CNY yuan"),
    )

    @property
    def reading(self) -> str:
        """The write-off priority in force: ``priority``, else ``"leave_book"``."""
        return self.priority or "leave_book"


@dataclass(frozen=True)
class BulkTransfer(Section):
    """``[bulk_transfer]``: AMC capacity (CNY yuan) and minimum package size (loans)."""

    section = "bulk_transfer"
    capacity: float = field(metadata=meta("money", "the balance AMCs will buy, in CNY yuan"))
    min_loans: int = field(default=0, metadata=meta("count", "the minimum loans in a package"))
    capacity_by_period: tuple[float, ...] | None = field(
        default=None,
        metadata=meta("money_list", "a schedule's AMC capacity in each period, CNY yuan"),
    )
    windows: tuple[int, ...] | None = field(
        default=None,
        metadata=meta("period_list", "the periods of a schedule in which a package is sold"),
    )


@dataclass(frozen=True)
class Securitisation(Section):
    """``[securitisation]``: pool size bounds and fixed issuance cost, all in CNY yuan."""

    section = "securitisation"
    max_pool: float = field(metadata=meta("money", "the largest pool in CNY yuan"))
    min_pool: float = field(default=0.0, metadata=meta("money", "the smallest pool in CNY yuan"))
    fixed_cost: float = field(
        default=0.0, metadata=meta("money", "the fixed issuance cost in CNY yuan")
    )
    windows: tuple[int, ...] | None = field(
        default=None,
        metadata=meta("period_list", "the periods of a schedule in which a pool is issued"),
    )


@dataclass(frozen=True)
class Restructure(Section):
    """``[restructure]``: at most ``max_loans`` loans may be restructured."""

    section = "restructure"
    max_loans: int = field(metadata=meta("count", "the most loans that may be restructured"))
    max_loans_by_period: tuple[int, ...] | None = field(
        default=None,
        metadata=meta("count_list", "a schedule's most restructurings in each period"),
    )


@dataclass(frozen=True)
class Profit(Section):
    """``[profit]``: this year's profit may fall by at most ``max_loss`` CNY yuan."""

    section = "profit"
    max_loss: float = field(metadata=meta("money", "the most profit that may be lost, CNY yuan"))


@dataclass(frozen=True)
class Tolerance(Section):
    """``[tolerance]``: branch inclusive NPL ratio tolerated up to ``bank_npl_ratio + margin``.

    Both are shares (0.03 = 3 percentage points). With ``enforce`` the optimiser
    imposes the tolerance per branch; without it the tolerance is only checked.
    """

    section = "tolerance"
    bank_npl_ratio: float = field(metadata=meta("share", "the bank's overall NPL ratio"))
    margin: float = field(
        default=0.03, metadata=meta("share", "the tolerance margin above the bank's NPL ratio")
    )
    enforce: bool = field(
        default=True, metadata=meta("bool", "whether the optimiser imposes the tolerance")
    )
    at: CheckedAt | None = field(
        default=None,
        metadata=meta("at", "a schedule's checked periods: year_end (default) or every_period"),
    )

    @property
    def threshold(self) -> float:
        """The tolerated inclusive NPL ratio τ = ``bank_npl_ratio + margin`` (a share)."""
        return self.bank_npl_ratio + self.margin


@dataclass(frozen=True)
class WagePool(Section):
    """``[wage_pool]``: share of NPL loss counted within tolerance, and wage rate (shares)."""

    section = "wage_pool"
    consider_share: float = field(
        default=1.0, metadata=meta("share", "the share of NPL loss counted within tolerance")
    )
    rate: float = field(default=0.0, metadata=meta("share", "the wage pool as a share of profit"))
    weight: float = field(
        default=0.0,
        metadata=meta("weight", "CNY of objective per CNY of the branches' total wage pool"),
    )
    max_fall: float = field(
        default=math.inf,
        metadata=meta("limit", "the most a branch's wage pool may fall, CNY yuan (inf: none)"),
    )

    @property
    def optimised(self) -> bool:
        """Whether the optimiser models the wage pool (a weight or a limit is set)."""
        return self.weight > 0 or math.isfinite(self.max_fall)


@dataclass(frozen=True)
class Risk(Section):
    """``[risk]``: how the plan weighs its value in bad scenarios (with a scenarios table).

    The tail mean at ``alpha`` is the mean value of the plan over the worst
    ``1 - alpha`` of the scenarios' probability; the objective adds ``aversion``
    times it to the expected value, and ``min_tail_value`` (CNY yuan) is a floor on
    it. Scenarios group loans by the portfolio column ``segment_by``.
    """

    section = "risk"
    alpha: float = field(
        default=0.95, metadata=meta("alpha", "the tail's level: its mean covers 1 - alpha")
    )
    aversion: float = field(
        default=0.0,
        metadata=meta("weight", "CNY of objective per CNY of the plan's tail mean (lambda)"),
    )
    min_tail_value: float | None = field(
        default=None, metadata=meta("money", "the least tail mean of the plan's value, CNY yuan")
    )
    segment_by: str = field(
        default="classification",
        metadata=meta("column", "the portfolio column whose values name the segments"),
    )

    @property
    def modelled(self) -> bool:
        """Whether the optimiser models the tail (an aversion or a floor is set)."""
        return self.aversion > 0 or self.min_tail_value is not None


@dataclass(frozen=True)
class ChannelLimits(Section):
    """``[channels.NAME]``: the budgets of a user-defined channel (CNY yuan and loans).

    Standard channels keep their own sections (``[bulk_transfer]``, ...); these
    tables give a second AMC, a second securitisation or any other channel of the
    options table its capacity, its minimum size and its fixed cost.
    """

    section = "channels"
    capacity: float = field(
        default=math.inf,
        metadata=meta("limit", "the most balance the channel takes, CNY yuan (inf: none)"),
    )
    min_balance: float = field(
        default=0.0, metadata=meta("money", "the least balance when the channel is used")
    )
    max_loans: float = field(
        default=math.inf, metadata=meta("count_limit", "the most loans (inf: no limit)")
    )
    min_loans: int = field(
        default=0, metadata=meta("count", "the least loans when the channel is used")
    )
    fixed_cost: float = field(
        default=0.0, metadata=meta("money", "the cost paid when the channel is used, CNY yuan")
    )

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        normalised, problems = parse_section("channels", values, cls=ChannelLimits)
        if problems:
            raise PolicyError(problems, source="ChannelLimits")
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @property
    def switched(self) -> bool:
        """Whether the channel is an on/off block (a minimum size or a fixed cost)."""
        return self.min_balance > 0 or self.min_loans > 0 or self.fixed_cost > 0


SECTION_CLASSES: dict[str, type[Section]] = {
    cls.section: cls
    for cls in (
        ModeSection,
        LongAge,
        WriteOff,
        BulkTransfer,
        Securitisation,
        Restructure,
        Profit,
        Tolerance,
        WagePool,
        Schedule,
        Risk,
    )
}

#: The standard sections of ``policy.toml``, in the order they are written.
SECTIONS: tuple[str, ...] = tuple(SECTION_CLASSES)

CONSTRAINT_SECTIONS: tuple[str, ...] = SECTIONS[1:]  # every section but [mode]
ALL_SECTIONS: tuple[str, ...] = (*SECTIONS, "channels", *EXTRA_SECTIONS)


def parse_section(
    name: str, body: Mapping[Any, Any], cls: type[Section] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate one section (``cls``: its class, default the standard section ``name``)."""
    cls = SECTION_CLASSES[name] if cls is None else cls
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    allowed = tuple(fields)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key in body:
        if key not in fields:
            problems.append(
                (
                    f"[{name}] {key}",
                    f"unknown key{suggest(key, allowed)}; allowed keys: {', '.join(allowed)}",
                )
            )
    for key, f in fields.items():
        if key not in body:
            if f.default is dataclasses.MISSING:
                problems.append(
                    (
                        f"[{name}] {key}",
                        f"missing; required when [{name}] is present: {f.metadata['doc']}",
                    )
                )
            else:
                values[key] = f.default
            continue
        if body[key] is None and f.default is None:  # an optional key left unset
            values[key] = None
            continue
        value, message = check_value(f.metadata["kind"], body[key])
        if message is None:
            values[key] = value
        else:
            problems.append((f"[{name}] {key}", message))
    problems += cross_check(name, values)
    return values, problems


def cross_check(name: str, values: Mapping[str, Any]) -> list[Problem]:
    """Check keys of one section against each other (only keys valid on their own)."""
    if (
        name == "securitisation"
        and {"min_pool", "max_pool"} <= values.keys()
        and values["min_pool"] > values["max_pool"]
    ):
        return [
            (
                "[securitisation] min_pool",
                f"must not exceed max_pool ({values['max_pool']!r}); got {values['min_pool']!r}",
            )
        ]
    if (
        name.startswith("channels")
        and {"min_balance", "capacity"} <= values.keys()
        and values["min_balance"] > values["capacity"]
    ):
        return [
            (
                f"[{name}] min_balance",
                f"must not exceed capacity ({values['capacity']!r}); got {values['min_balance']!r}",
            )
        ]
    if name == "tolerance" and {"bank_npl_ratio", "margin"} <= values.keys():
        threshold = values["bank_npl_ratio"] + values["margin"]
        if threshold >= 1.0:
            return [
                (
                    "[tolerance] bank_npl_ratio + margin",
                    f"must be below 1 (the tolerated NPL ratio); got {threshold!r}, "
                    "which makes the tolerance meaningless",
                )
            ]
    return []


def parse_channels(body: object) -> tuple[dict[str, ChannelLimits], list[Problem]]:
    """``[channels.NAME]`` tables: each validated, named in every problem."""
    if not isinstance(body, Mapping):
        return {}, [("[channels]", "must hold one table per channel, e.g. [channels.amc_b]; "
                                   f"got {show(body)}")]  # fmt: skip
    out: dict[str, ChannelLimits] = {}
    problems: list[Problem] = []
    for channel, keys in body.items():
        where = f"channels.{channel}"
        if not isinstance(keys, Mapping):
            problems.append((f"[{where}]", f"must be a table of keys; got {show(keys)}"))
            continue
        values, found = parse_section(where, keys, cls=ChannelLimits)
        found += check_channel(channel, None)
        problems += found
        if not found:
            out[str(channel)] = ChannelLimits(**values)
    return out, problems


def check_channel(name: object, limits: object) -> list[Problem]:
    """A ``[channels.NAME]`` entry names a user channel and holds ChannelLimits."""
    if not isinstance(name, str) or not name:
        return [("[channels]", f"channel names must be non-empty text; got {show(name)}")]
    if name in STANDARD_CHANNELS:
        own = "none" if name == "retain" else f"[{name}]"
        text = f"{name} is a standard channel; its budgets are set in {own}, "
        return [(f"[channels.{name}]", text + "[channels.NAME] is for other channels")]
    if name in CHANNEL_ALIASES:
        text = f"{name} is the Chinese name of the standard channel {CHANNEL_ALIASES[name]}"
        return [(f"[channels.{name}]", text + "; [channels.NAME] is for other channels")]
    if not is_channel_name(name):
        return [(f"[channels.{name}]", f"not a usable channel name; allowed: "
                                        f"{OWN_CHANNEL_ALLOWED}")]  # fmt: skip
    if limits is not None and not isinstance(limits, ChannelLimits):
        return [(f"[channels.{name}]", f"must be a ChannelLimits; got {show(limits)}")]
    return []

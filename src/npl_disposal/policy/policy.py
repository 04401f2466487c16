"""The disposal policy: the budgets and regulatory rules of ``policy.toml``.

A policy is read from a TOML file (:meth:`Policy.from_toml`), a mapping
(:meth:`Policy.from_dict`) or built directly, and is validated as a whole: every
problem is collected and reported in one :class:`~npl_disposal.exceptions.PolicyError`
(a ``ValueError``) whose lines name the section and key, e.g.
``[securitisation] min_pool``.

Sections (the canonical model of DESIGN section 4 names the rule each one feeds):

``[mode]``
    ``mode = "whole_loan"`` (default; each loan goes to exactly one channel, a MILP)
    or ``"fractional"`` (loans may be split; the LP relaxation, with shadow prices).
``[long_age]``
    ``months`` (months of NPL age): NPLs with ``npl_age_months >= months`` may not be
    retained when another channel can take them.
``[write_off]``
    ``quota`` (CNY yuan): the most book balance that may be written off.
``[bulk_transfer]``
    ``capacity`` (CNY yuan): the most balance the AMCs will buy; ``min_loans``
    (loans, default 0): the minimum number of loans in a package.
``[securitisation]``
    ``max_pool`` (CNY yuan): the largest pool; ``min_pool`` (CNY yuan, default 0):
    the smallest pool worth issuing; ``fixed_cost`` (CNY yuan, default 0): the
    issuance cost, paid only when a pool is issued.
``[restructure]``
    ``max_loans`` (loans): how many restructurings staff can handle.
``[profit]``
    ``max_loss`` (CNY yuan): this year's profit may fall by at most this.
``[tolerance]``
    ``bank_npl_ratio`` (share, required): the bank's overall NPL ratio;
    ``margin`` (share, default 0.03, i.e. 3 percentage points); ``enforce``
    (default true): impose the per-branch tolerance in the optimiser. A branch's
    inclusive small/micro NPL ratio is tolerated up to ``bank_npl_ratio + margin``.
``[wage_pool]``
    ``consider_share`` (share, default 1): the part of the NPL loss still counted
    against the wage pool of a branch within tolerance (0 = disregarded);
    ``rate`` (share, default 0): wage pool as a share of profit;
    ``weight`` (default 0): CNY of objective per CNY of the branches' total wage
    pool, so the optimiser also values keeping wage pools up (0 = value only);
    ``max_fall`` (CNY yuan, default inf): the most any branch's wage pool may
    fall because of the plan's NPL losses.

``[channels.NAME]`` (one table per user-defined channel, e.g. ``[channels.amc_b]``)
    ``capacity`` (CNY yuan, default inf): the most balance the channel takes;
    ``min_balance`` (CNY yuan, default 0) and ``min_loans`` (loans, default 0): the
    least it takes when used; ``max_loans`` (loans, default inf); ``fixed_cost``
    (CNY yuan, default 0): paid when the channel is used. A minimum or a fixed cost
    makes the channel an on/off block like securitisation.

**A missing section means that constraint is absent** (no write-off quota, no
profit floor, ...); the corresponding attribute of :class:`Policy` is ``None``.
Without ``[wage_pool]`` the defaults above apply (:attr:`Policy.wage_pool_or_default`).

Units: money in CNY yuan, ages in months, counts in loans, ratios and rates as
shares in [0, 1] (0.03 means 3%). ``[valuation]`` and ``[solver]`` are accepted
and stored as-is in :attr:`Policy.extra`, and checked by the modules that use them
(:func:`~npl_disposal.valuation.value_options`,
:func:`~npl_disposal.solvers.solve.solver_settings`);
any other section is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Union

from npl_disposal.exceptions import PolicyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "EXTRA_SECTIONS",
    "MODES",
    "SECTIONS",
    "BulkTransfer",
    "LongAge",
    "Mode",
    "ModeSection",
    "Policy",
    "PolicyError",
    "PolicyLike",
    "Profit",
    "Restructure",
    "Securitisation",
    "Tolerance",
    "WagePool",
    "WriteOff",
    "load_policy",
]

Mode = Literal["whole_loan", "fractional"]
#: The allowed values of ``[mode] mode``.
MODES: tuple[str, ...] = ("whole_loan", "fractional")

#: Sections stored as-is in :attr:`Policy.extra`, validated by the modules that use them.
EXTRA_SECTIONS: tuple[str, ...] = ("valuation", "solver")

Problem = tuple[str, str]
Kind = Literal[
    "money", "limit", "weight", "months", "count", "count_limit", "share", "bool", "mode"
]


def _key(kind: Kind, doc: str) -> dict[str, str]:
    """Field metadata: how a key is validated and what it means (for messages)."""
    return {"kind": kind, "doc": doc}


# --------------------------------------------------------------------------- sections


class _Section:
    """Shared behaviour of the section dataclasses: validation and normalisation."""

    #: The policy.toml section name; set by each subclass.
    section: str = ""

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        normalised, problems = _parse_section(self.section, values)
        if problems:
            raise PolicyError(problems, source=type(self).__name__)
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the section's keys and values, as written in ``policy.toml``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModeSection(_Section):
    """``[mode]``: whole-loan (MILP, default) or fractional (LP relaxation) allocation."""

    section = "mode"
    mode: Mode = field(default="whole_loan", metadata=_key("mode", "allocation mode"))


@dataclass(frozen=True)
class LongAge(_Section):
    """``[long_age]``: NPLs with ``npl_age_months >= months`` may not be retained."""

    section = "long_age"
    months: float = field(
        metadata=_key("months", "NPL age (months) from which retaining is barred")
    )


@dataclass(frozen=True)
class WriteOff(_Section):
    """``[write_off]``: at most ``quota`` CNY yuan of book balance may be written off."""

    section = "write_off"
    quota: float = field(metadata=_key("money", "the write-off quota in CNY yuan"))


@dataclass(frozen=True)
class BulkTransfer(_Section):
    """``[bulk_transfer]``: AMC capacity (CNY yuan) and minimum package size (loans)."""

    section = "bulk_transfer"
    capacity: float = field(metadata=_key("money", "the balance AMCs will buy, in CNY yuan"))
    min_loans: int = field(default=0, metadata=_key("count", "the minimum loans in a package"))


@dataclass(frozen=True)
class Securitisation(_Section):
    """``[securitisation]``: pool size bounds and fixed issuance cost, all in CNY yuan."""

    section = "securitisation"
    max_pool: float = field(metadata=_key("money", "the largest pool in CNY yuan"))
    min_pool: float = field(default=0.0, metadata=_key("money", "the smallest pool in CNY yuan"))
    fixed_cost: float = field(
        default=0.0, metadata=_key("money", "the fixed issuance cost in CNY yuan")
    )


@dataclass(frozen=True)
class Restructure(_Section):
    """``[restructure]``: at most ``max_loans`` loans may be restructured."""

    section = "restructure"
    max_loans: int = field(metadata=_key("count", "the most loans that may be restructured"))


@dataclass(frozen=True)
class Profit(_Section):
    """``[profit]``: this year's profit may fall by at most ``max_loss`` CNY yuan."""

    section = "profit"
    max_loss: float = field(metadata=_key("money", "the most profit that may be lost, CNY yuan"))


@dataclass(frozen=True)
class Tolerance(_Section):
    """``[tolerance]``: branch inclusive NPL ratio tolerated up to ``bank_npl_ratio + margin``.

    Both are shares (0.03 = 3 percentage points). With ``enforce`` the optimiser
    imposes the tolerance per branch; without it the tolerance is only checked.
    """

    section = "tolerance"
    bank_npl_ratio: float = field(metadata=_key("share", "the bank's overall NPL ratio"))
    margin: float = field(
        default=0.03, metadata=_key("share", "the tolerance margin above the bank's NPL ratio")
    )
    enforce: bool = field(
        default=True, metadata=_key("bool", "whether the optimiser imposes the tolerance")
    )

    @property
    def threshold(self) -> float:
        """The tolerated inclusive NPL ratio τ = ``bank_npl_ratio + margin`` (a share)."""
        return self.bank_npl_ratio + self.margin


@dataclass(frozen=True)
class WagePool(_Section):
    """``[wage_pool]``: share of NPL loss counted within tolerance, and wage rate (shares)."""

    section = "wage_pool"
    consider_share: float = field(
        default=1.0, metadata=_key("share", "the share of NPL loss counted within tolerance")
    )
    rate: float = field(default=0.0, metadata=_key("share", "the wage pool as a share of profit"))
    weight: float = field(
        default=0.0,
        metadata=_key("weight", "CNY of objective per CNY of the branches' total wage pool"),
    )
    max_fall: float = field(
        default=math.inf,
        metadata=_key("limit", "the most a branch's wage pool may fall, CNY yuan (inf: none)"),
    )

    @property
    def optimised(self) -> bool:
        """Whether the optimiser models the wage pool (a weight or a limit is set)."""
        return self.weight > 0 or math.isfinite(self.max_fall)


@dataclass(frozen=True)
class ChannelLimits(_Section):
    """``[channels.NAME]``: the budgets of a user-defined channel (CNY yuan and loans).

    Standard channels keep their own sections (``[bulk_transfer]``, ...); these
    tables give a second AMC, a second securitisation or any other channel of the
    options table its capacity, its minimum size and its fixed cost.
    """

    section = "channels"
    capacity: float = field(
        default=math.inf,
        metadata=_key("limit", "the most balance the channel takes, CNY yuan (inf: none)"),
    )
    min_balance: float = field(
        default=0.0, metadata=_key("money", "the least balance when the channel is used")
    )
    max_loans: float = field(
        default=math.inf, metadata=_key("count_limit", "the most loans (inf: no limit)")
    )
    min_loans: int = field(
        default=0, metadata=_key("count", "the least loans when the channel is used")
    )
    fixed_cost: float = field(
        default=0.0, metadata=_key("money", "the cost paid when the channel is used, CNY yuan")
    )

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        normalised, problems = _parse_section("channels", values, cls=ChannelLimits)
        if problems:
            raise PolicyError(problems, source="ChannelLimits")
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @property
    def switched(self) -> bool:
        """Whether the channel is an on/off block (a minimum size or a fixed cost)."""
        return self.min_balance > 0 or self.min_loans > 0 or self.fixed_cost > 0


#: Channels whose budgets have their own sections; ``[channels.NAME]`` is for the others.
_STANDARD_CHANNELS = ("retain", "write_off", "bulk_transfer", "securitisation", "restructure")


_SECTION_CLASSES: dict[str, type[_Section]] = {
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
    )
}

#: The standard sections of ``policy.toml``, in the order they are written.
SECTIONS: tuple[str, ...] = tuple(_SECTION_CLASSES)

_CONSTRAINT_SECTIONS: tuple[str, ...] = SECTIONS[1:]  # every section but [mode]
_ALL_SECTIONS: tuple[str, ...] = (*SECTIONS, "channels", *EXTRA_SECTIONS)

_UNITS: dict[str, str] = {
    "money": "CNY yuan",
    "limit": "CNY yuan",
    "weight": "CNY per CNY",
    "count_limit": "loans",
    "months": "months",
    "count": "loans",
    "share": "share",
}


# --------------------------------------------------------------------------- validation


def _show(value: object) -> str:
    """Describe a value for an error message, naming its type when it misleads."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "nothing (None)"
    if isinstance(value, numbers.Real):
        return repr(value)
    return f"{value!r} (a {type(value).__name__})"


def _is_bool(value: object) -> bool:
    """Tell whether ``value`` is a Python or numpy boolean."""
    if isinstance(value, bool):
        return True
    return getattr(getattr(value, "dtype", None), "kind", None) == "b"


def _check_value(kind: str, value: object) -> tuple[Any, str | None]:
    """Validate and normalise one value; return ``(value, None)`` or ``(value, message)``."""
    if kind == "mode":
        if isinstance(value, str) and value in MODES:
            return value, None
        allowed = " or ".join(repr(m) for m in MODES)
        return value, f"must be {allowed}; got {_show(value)}"
    if kind == "bool":
        if _is_bool(value):
            return bool(value), None
        return value, f"must be true or false; got {_show(value)}"

    unit = _UNITS[kind]
    if kind == "share":
        wanted = "a share in [0, 1] (0.03 means 3%)"
    elif kind in ("count", "count_limit"):
        wanted = "a whole number of loans >= 0"
    else:
        wanted = f"a number of {unit} >= 0"
    if _is_bool(value) or not isinstance(value, numbers.Real):
        hint = " (write numbers without quotes)" if isinstance(value, str) else ""
        return value, f"must be {wanted}; got {_show(value)}{hint}"
    number = float(value)
    if not math.isfinite(number) and not (kind in ("limit", "count_limit") and number > 0):
        return value, f"must be {wanted} (finite); got {_show(value)}"
    if kind == "count_limit" and number == math.inf:
        return number, None
    if kind in ("count", "count_limit"):
        if not number.is_integer():
            return value, f"must be {wanted}; got {_show(value)}, not a whole number"
        if number < 0:
            return value, f"must be {wanted}; got {_show(value)}"
        if kind == "count_limit":
            return number, None
        return int(value) if isinstance(value, numbers.Integral) else int(number), None
    if kind == "share":
        if not 0.0 <= number <= 1.0:
            hint = f" (did you mean {number / 100:g}?)" if 1.0 < number <= 100.0 else ""
            return value, f"must be {wanted}; got {_show(value)}{hint}"
        return number, None
    if number < 0:
        return value, f"must be {wanted}; got {_show(value)}"
    return number, None


def _suggest(name: object, candidates: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``candidates``."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_section(
    name: str, body: Mapping[Any, Any], cls: type[_Section] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate one section (``cls``: its class, default the standard section ``name``)."""
    cls = _SECTION_CLASSES[name] if cls is None else cls
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    allowed = tuple(fields)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key in body:
        if key not in fields:
            problems.append(
                (
                    f"[{name}] {key}",
                    f"unknown key{_suggest(key, allowed)}; allowed keys: {', '.join(allowed)}",
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
        value, message = _check_value(f.metadata["kind"], body[key])
        if message is None:
            values[key] = value
        else:
            problems.append((f"[{name}] {key}", message))
    problems += _cross_check(name, values)
    return values, problems


def _cross_check(name: str, values: Mapping[str, Any]) -> list[Problem]:
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


def _freeze(value: object) -> object:
    """Make a nested value read-only: mappings become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: object) -> object:
    """Undo :func:`_freeze`: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def _empty_channels() -> Mapping[str, ChannelLimits]:
    return MappingProxyType({})


def _empty_extra() -> Mapping[str, Mapping[str, object]]:
    return MappingProxyType({})


# --------------------------------------------------------------------------- TOML output

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}  # fmt: skip


def _toml_key(key: object) -> str:
    text = str(key)
    return text if _BARE_KEY.match(text) else _toml_string(text)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_keys(cls: type[_Section], name: str, body: Mapping[str, Any]) -> list[str]:
    """One ``key = value  # unit`` line per key of a section."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    lines = []
    for key, value in body.items():
        kind = fields[key].metadata["kind"]
        if kind in ("money", "limit", "weight", "months", "share", "count_limit"):
            if kind == "count_limit" and math.isfinite(value):
                text = str(int(value))
            else:
                text = _toml_float(value, group=kind in ("money", "limit"))
        else:
            text = _toml_value(value, f"[{name}] {key}")
        unit = _UNITS.get(kind)
        lines.append(f"{key} = {text}" + (f"  # {unit}" if unit else ""))
    return lines


def _parse_channels(body: object) -> tuple[dict[str, ChannelLimits], list[Problem]]:
    """``[channels.NAME]`` tables: each validated, named in every problem."""
    if not isinstance(body, Mapping):
        return {}, [("[channels]", "must hold one table per channel, e.g. [channels.amc_b]; "
                                   f"got {_show(body)}")]  # fmt: skip
    out: dict[str, ChannelLimits] = {}
    problems: list[Problem] = []
    for channel, keys in body.items():
        where = f"channels.{channel}"
        if not isinstance(keys, Mapping):
            problems.append((f"[{where}]", f"must be a table of keys; got {_show(keys)}"))
            continue
        values, found = _parse_section(where, keys, cls=ChannelLimits)
        found += _check_channel(channel, None)
        problems += found
        if not found:
            out[str(channel)] = ChannelLimits(**values)
    return out, problems


def _check_channel(name: object, limits: object) -> list[Problem]:
    """A ``[channels.NAME]`` entry names a user channel and holds ChannelLimits."""
    if not isinstance(name, str) or not name:
        return [("[channels]", f"channel names must be non-empty text; got {_show(name)}")]
    if name in _STANDARD_CHANNELS:
        own = "none" if name == "retain" else f"[{name}]"
        text = f"{name} is a standard channel; its budgets are set in {own}, "
        return [(f"[channels.{name}]", text + "[channels.NAME] is for other channels")]
    if limits is not None and not isinstance(limits, ChannelLimits):
        return [(f"[channels.{name}]", f"must be a ChannelLimits; got {_show(limits)}")]
    return []


def _toml_float(number: float, group: bool = False) -> str:
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = repr(number)
    if group and "e" not in text and abs(number) >= 1e4:
        sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
        whole, frac = digits.split(".")
        text = f"{sign}{int(whole):_}.{frac}"
    return text


def _toml_value(value: object, where: str) -> str:
    """Render one value as TOML (nested mappings as inline tables)."""
    import datetime as _dt

    if _is_bool(value):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _toml_float(float(value))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = [f"{_toml_key(k)} = {_toml_value(v, f'{where}.{k}')}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    raise PolicyError(
        [(where, f"cannot be written to TOML: {_show(value)}")], source="Policy.to_toml"
    )


# --------------------------------------------------------------------------- summary


def _money(amount: float) -> str:
    """Format CNY yuan for people: ``CNY 12.30m``, ``CNY 1.50bn``, ``CNY 8,000``."""
    if abs(amount) >= 1e9:
        return f"CNY {amount / 1e9:,.2f}bn"
    if abs(amount) >= 1e6:
        return f"CNY {amount / 1e6:,.2f}m"
    if float(amount).is_integer():
        return f"CNY {amount:,.0f}"
    return f"CNY {amount:,.2f}"


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%"


# --------------------------------------------------------------------------- Policy


@dataclass(frozen=True)
class Policy:
    """The whole disposal policy: mode, the constraint sections, and reserved extras.

    Each section attribute is ``None`` when its section is absent, which means the
    constraint is absent. ``extra`` holds the ``[valuation]`` and ``[solver]``
    sections as read-only mappings, for the modules that validate them. Direct
    construction, :meth:`replace` and :meth:`with_section` validate like
    :meth:`from_dict` and raise :class:`~npl_disposal.exceptions.PolicyError`.
    """

    mode: str = "whole_loan"
    long_age: LongAge | None = None
    write_off: WriteOff | None = None
    bulk_transfer: BulkTransfer | None = None
    securitisation: Securitisation | None = None
    restructure: Restructure | None = None
    profit: Profit | None = None
    tolerance: Tolerance | None = None
    wage_pool: WagePool | None = None
    extra: Mapping[str, Mapping[str, object]] = field(default_factory=_empty_extra, hash=False)
    channels: Mapping[str, ChannelLimits] = field(default_factory=_empty_channels, hash=False)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        _, message = _check_value("mode", self.mode)
        if message is not None:
            problems.append(("[mode] mode", message))
        for name in _CONSTRAINT_SECTIONS:
            value = getattr(self, name)
            cls = _SECTION_CLASSES[name]
            if value is not None and not isinstance(value, cls):
                problems.append(
                    (
                        f"[{name}]",
                        f"must be a {cls.__name__} or None; got {_show(value)} "
                        "(use Policy.from_dict to build a policy from plain mappings)",
                    )
                )
        extra = self.extra
        if not isinstance(extra, Mapping):
            problems.append(("extra", f"must be a mapping of sections; got {_show(extra)}"))
            extra = {}
        for name, body in extra.items():
            if name not in EXTRA_SECTIONS:
                if name in SECTIONS:
                    msg = f"is a standard section; pass it as Policy({name}=...)"
                else:
                    msg = (
                        f"unknown section{_suggest(name, _ALL_SECTIONS)}; extra sections "
                        f"allowed: {', '.join(EXTRA_SECTIONS)}"
                    )
                problems.append((f"[{name}]", msg))
            elif not isinstance(body, Mapping):
                problems.append((f"[{name}]", f"must be a table of keys; got {_show(body)}"))
        channels = self.channels if isinstance(self.channels, Mapping) else {}
        if not isinstance(self.channels, Mapping):
            problems.append(("[channels]", f"must be a mapping of channel names to ChannelLimits; "
                                           f"got {_show(self.channels)}"))  # fmt: skip
        for name, limits in channels.items():
            problems += _check_channel(name, limits)
        if problems:
            raise PolicyError(problems, source="Policy")
        frozen = MappingProxyType({name: _freeze(extra[name]) for name in extra})
        object.__setattr__(self, "extra", frozen)
        object.__setattr__(self, "channels", MappingProxyType(dict(channels)))

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Mapping proxies cannot be pickled; rebuild from the plain dictionary.
        return (_policy_from_dict, (self.to_dict(),))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "policy") -> Policy:
        """Build a policy from a mapping of sections, e.g. ``{"write_off": {"quota": 5e6}}``.

        Keys are section names (as in ``policy.toml``); a section mapped to ``None``
        is treated as absent, and ``{"mode": "fractional"}`` is accepted for
        ``{"mode": {"mode": "fractional"}}``. Every problem is collected before one
        :class:`~npl_disposal.exceptions.PolicyError` naming ``source`` is raised.
        """
        if not isinstance(data, Mapping):
            raise PolicyError(
                [("policy", f"must be a mapping of sections; got {_show(data)}")], source
            )
        problems: list[Problem] = []
        sections: dict[str, Any] = {}
        extra: dict[str, Mapping[str, object]] = {}
        channels: dict[str, ChannelLimits] = {}
        for name, body in data.items():
            if body is None:
                continue
            if name == "mode" and isinstance(body, str):
                body = {"mode": body}
            if name == "channels":
                parsed, found = _parse_channels(body)
                problems += found
                channels.update(parsed)
                continue
            if name in _SECTION_CLASSES or name in EXTRA_SECTIONS:
                if not isinstance(body, Mapping):
                    problems.append((f"[{name}]", f"must be a table of keys; got {_show(body)}"))
                    continue
                if name in EXTRA_SECTIONS:
                    extra[name] = body
                    continue
                values, found = _parse_section(name, body)
                problems += found
                if not found:
                    sections[name] = values
            else:
                problems.append(
                    (
                        f"[{name}]",
                        f"unknown section{_suggest(name, _ALL_SECTIONS)}; allowed sections: "
                        f"{', '.join(_ALL_SECTIONS)}",
                    )
                )
        if problems:
            raise PolicyError(problems, source)
        mode = sections.pop("mode", {"mode": "whole_loan"})["mode"]
        built: dict[str, Any] = {
            name: _SECTION_CLASSES[name](**values) for name, values in sections.items()
        }
        return cls(mode=mode, extra=extra, channels=channels, **built)

    @classmethod
    def from_toml_text(cls, text: str, source: str = "policy.toml") -> Policy:
        """Build a policy from TOML text; syntax errors name ``source`` and the line."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"line (\d+)", message)
            where = f"{source}, line {match.group(1)}" if match else source
            raise PolicyError([(where, f"TOML syntax error: {message}")], source) from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Policy:
        """Read and validate a ``policy.toml`` file; errors name the file (and line)."""
        path = Path(path)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(
                [(str(path), f"is not UTF-8 text ({exc.reason} at byte {exc.start})")], str(path)
            ) from exc
        return cls.from_toml_text(text, source=str(path))

    # ------------------------------------------------------------------ output

    def to_dict(self) -> dict[str, Any]:
        """Return the policy as plain dicts (present sections only); round-trips via from_dict."""
        out: dict[str, Any] = {"mode": {"mode": self.mode}}
        for name in _CONSTRAINT_SECTIONS:
            section = getattr(self, name)
            if section is not None:
                out[name] = section.to_dict()
        if self.channels:
            out["channels"] = {name: lim.to_dict() for name, lim in self.channels.items()}
        for name, body in self.extra.items():
            out[name] = _thaw(body)
        return out

    def to_toml(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the policy as ``policy.toml`` text; also write it to ``path`` if given."""
        lines = [
            "# npl_disposal policy: money in CNY yuan, ages in months, counts in loans,",
            "# ratios as shares (0.03 = 3%). A missing section means no such constraint.",
        ]
        for name, body in self.to_dict().items():
            if name == "channels":
                for channel, keys in body.items():
                    lines += ["", f"[channels.{_toml_key(channel)}]"]
                    lines += _toml_keys(ChannelLimits, f"channels.{channel}", keys)
                continue
            lines += ["", f"[{name}]"]
            if name in _SECTION_CLASSES:
                lines += _toml_keys(_SECTION_CLASSES[name], name, body)
            else:
                for key, value in body.items():
                    lines.append(f"{_toml_key(key)} = {_toml_value(value, f'[{name}] {key}')}")
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ what-if helpers

    def replace(self, **changes: Any) -> Policy:
        """Return a copy with attributes replaced (validated), e.g. ``mode="fractional"``."""
        return dataclasses.replace(self, **changes)

    def with_section(self, name: str, **keys: Any) -> Policy:
        """Return a copy with section ``name`` set or updated, for what-if sweeps.

        Keys given are merged into the section if present, e.g.
        ``policy.with_section("write_off", quota=5e6)`` or
        ``policy.with_section("mode", mode="fractional")``.
        """
        data = self.to_dict()
        current = data.get(name)
        merged = dict(current) if isinstance(current, Mapping) else {}
        merged.update(keys)
        data[name] = merged
        return Policy.from_dict(data, source=f"Policy.with_section({name!r})")

    def without_section(self, name: str) -> Policy:
        """Return a copy without section ``name`` (that constraint becomes absent)."""
        if name not in _ALL_SECTIONS:
            raise PolicyError(
                [(f"[{name}]", f"unknown section; allowed sections: {', '.join(_ALL_SECTIONS)}")],
                source=f"Policy.without_section({name!r})",
            )
        data = self.to_dict()
        data.pop(name, None)
        return Policy.from_dict(data, source=f"Policy.without_section({name!r})")

    # ------------------------------------------------------------------ accessors

    @property
    def wage_pool_or_default(self) -> WagePool:
        """The ``[wage_pool]`` section, or its defaults (consider_share 1, rate 0)."""
        return self.wage_pool if self.wage_pool is not None else WagePool()

    @property
    def fixed_costs(self) -> dict[str, float]:
        """Fixed cost (CNY yuan) of each channel that has one, paid when it is used.

        Securitisation's issuance cost and each ``[channels.NAME]`` fixed cost;
        branch figures share each among branches by their balance in the channel.
        """
        costs = {name: lim.fixed_cost for name, lim in self.channels.items() if lim.fixed_cost}
        if self.securitisation is not None:
            costs["securitisation"] = self.securitisation.fixed_cost
        return costs

    @property
    def fractional(self) -> bool:
        """True in fractional (LP) mode, False in whole-loan (MILP) mode."""
        return self.mode == "fractional"

    @property
    def valuation(self) -> Mapping[str, object]:
        """The ``[valuation]`` section as stored (empty when absent)."""
        return self.extra.get("valuation", MappingProxyType({}))

    @property
    def solver(self) -> Mapping[str, object]:
        """The ``[solver]`` section as stored (empty when absent)."""
        return self.extra.get("solver", MappingProxyType({}))

    def summary(self) -> str:
        """Return a short human-readable description of the rules in force."""
        if self.fractional:
            lines = ["Disposal policy: fractional mode (loans may be split across channels)"]
        else:
            lines = ["Disposal policy: whole-loan mode (each loan goes to exactly one channel)"]
        absent: list[str] = []
        if self.long_age is not None:
            lines.append(
                f"  long-aged NPLs: may not be retained from {self.long_age.months:g} months "
                "of NPL age"
            )
        else:
            absent.append("long-age rule")
        if self.write_off is not None:
            lines.append(f"  write-off quota: {_money(self.write_off.quota)}")
        else:
            absent.append("write-off quota")
        if self.bulk_transfer is not None:
            bt = self.bulk_transfer
            text = f"  bulk transfer: at most {_money(bt.capacity)} to AMCs"
            if bt.min_loans:
                text += f"; packages of at least {bt.min_loans} loans"
            lines.append(text)
        else:
            absent.append("bulk-transfer capacity")
        if self.securitisation is not None:
            sec = self.securitisation
            if sec.min_pool > 0:
                text = f"  securitisation: pool of {_money(sec.min_pool)} to {_money(sec.max_pool)}"
            else:
                text = f"  securitisation: pool of at most {_money(sec.max_pool)}"
            if sec.fixed_cost > 0:
                text += f"; fixed issuance cost {_money(sec.fixed_cost)}"
            lines.append(text)
        else:
            absent.append("securitisation pool")
        if self.restructure is not None:
            lines.append(f"  restructuring: at most {self.restructure.max_loans} loans")
        else:
            absent.append("restructuring limit")
        if self.profit is not None:
            lines.append(f"  profit: may fall by at most {_money(self.profit.max_loss)}")
        else:
            absent.append("profit floor")
        if self.tolerance is not None:
            tol = self.tolerance
            how = "enforced in the optimiser" if tol.enforce else "checked, not enforced"
            lines.append(
                f"  tolerance: branch inclusive NPL ratio <= {_pct(tol.bank_npl_ratio)} + "
                f"{_pct(tol.margin)} = {_pct(tol.threshold)} ({how})"
            )
        else:
            absent.append("NPL tolerance")
        wp = self.wage_pool_or_default
        default = "" if self.wage_pool is not None else " (defaults)"
        lines.append(
            f"  wage pool: NPL loss counted at {_pct(wp.consider_share)} within tolerance; "
            f"rate {_pct(wp.rate)} of profit{default}"
        )
        if wp.weight > 0:
            lines.append(f"  wage pool in the objective: weight {wp.weight:g} per CNY")
        if math.isfinite(wp.max_fall):
            lines.append(f"  wage pool may fall by at most {_money(wp.max_fall)} per branch")
        for name, lim in self.channels.items():
            parts = []
            if math.isfinite(lim.capacity):
                parts.append(f"at most {_money(lim.capacity)}")
            if math.isfinite(lim.max_loans):
                parts.append(f"at most {lim.max_loans:g} loans")
            if lim.min_balance > 0 or lim.min_loans > 0:
                parts.append(
                    f"if used at least {_money(lim.min_balance)} and {lim.min_loans} loans"
                )
            if lim.fixed_cost > 0:
                parts.append(f"fixed cost {_money(lim.fixed_cost)}")
            lines.append(f"  channel {name}: " + ("; ".join(parts) or "no limits"))
        if absent:
            lines.append(f"  not constrained: {', '.join(absent)}")
        if self.extra:
            lines.append(f"  also configured: {', '.join(f'[{n}]' for n in self.extra)}")
        return "\n".join(lines)


def _policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """Unpickling helper."""
    return Policy.from_dict(data)


#: What :func:`load_policy` accepts.
PolicyLike = Union[Policy, Mapping[str, Any], str, "os.PathLike[str]", None]


def load_policy(policy: PolicyLike) -> Policy:
    """Return a :class:`Policy` from a Policy, a mapping of sections, or a TOML path.

    ``None`` gives the empty policy (whole-loan mode, no constraints).
    """
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        return Policy.from_dict(policy)
    if isinstance(policy, (str, os.PathLike)):
        return Policy.from_toml(policy)
    raise TypeError(
        f"policy must be a Policy, a mapping of sections or a path to policy.toml; "
        f"got {type(policy).__name__}"
    )

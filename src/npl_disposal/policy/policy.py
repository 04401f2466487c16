"""The :class:`Policy`: every section of ``policy.toml`` in one frozen, validated object."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

from npl_disposal.exceptions import PolicyError
from npl_disposal.policy._toml import toml_key, toml_keys, toml_value
from npl_disposal.policy._values import (
    Problem,
    check_value,
    freeze,
    show,
    suggest,
    thaw,
)
from npl_disposal.policy.rules import Rules, rules_of
from npl_disposal.policy.sections import (
    ALL_SECTIONS,
    CONSTRAINT_SECTIONS,
    EXTRA_SECTIONS,
    SECTION_CLASSES,
    SECTIONS,
    BulkTransfer,
    ChannelLimits,
    LongAge,
    Profit,
    Restructure,
    Risk,
    Schedule,
    Securitisation,
    Tolerance,
    WagePool,
    WriteOff,
    check_channel,
    parse_channels,
    parse_section,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Policy", "PolicyLike", "load_policy"]


def _empty_channels() -> Mapping[str, ChannelLimits]:
    return MappingProxyType({})


def _empty_extra() -> Mapping[str, Mapping[str, object]]:
    return MappingProxyType({})


#: The keys that hold one value per period of a schedule, by section.
PER_PERIOD = {
    "write_off": "quota_by_period",
    "bulk_transfer": "capacity_by_period",
    "restructure": "max_loans_by_period",
}


def _schedule_problems(policy: Policy) -> list[Problem]:
    """Keys of a schedule checked against ``[schedule] periods`` (and refused without it)."""
    problems: list[Problem] = []
    periods = policy.schedule.periods if policy.schedule is not None else None
    keyed = [(name, key) for name, key in PER_PERIOD.items()]
    keyed += [("bulk_transfer", "windows"), ("securitisation", "windows"), ("tolerance", "at")]
    for name, key in keyed:
        section = getattr(policy, name)
        value = getattr(section, key, None) if section is not None else None
        if value is None:
            continue
        where = f"[{name}] {key}"
        if periods is None:
            problems.append((where, "is a key of a schedule; add [schedule] periods = T"))
        elif key.endswith("_by_period") and len(value) != periods:
            problems.append((where, f"must list one value per period ({periods}); got "
                                    f"{len(value)}"))  # fmt: skip
        elif key == "windows" and (not value or max(value) > periods):
            problems.append((where, f"must list periods among 1..{periods}; got {list(value)}"))
    if periods is not None:
        problems += _not_scheduled(policy)
    return problems


def _not_scheduled(policy: Policy) -> list[Problem]:
    """Rules a schedule does not model yet: refused by name rather than ignored."""
    problems: list[Problem] = []
    if policy.write_off is not None and policy.write_off.reading == "quota_first":
        problems.append(("[write_off] priority", "quota_first is not available in a schedule "
                                                 "yet; use leave_book or none"))  # fmt: skip
    if policy.risk is not None:
        problems.append(("[risk]", "scenarios are not modelled in a schedule yet; plan the "
                                   "schedule without [risk], or one period with scenarios"))
    wage = policy.wage_pool
    if wage is not None and wage.optimised:
        problems.append(("[wage_pool] weight / max_fall", "the wage-pool terms are not "
                         "optimised in a schedule yet; the branch figures still report the "
                         "wage pool per year. Leave weight and max_fall out"))  # fmt: skip
    return problems


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
    schedule: Schedule | None = None
    risk: Risk | None = None
    extra: Mapping[str, Mapping[str, object]] = field(default_factory=_empty_extra, hash=False)
    channels: Mapping[str, ChannelLimits] = field(default_factory=_empty_channels, hash=False)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        _, message = check_value("mode", self.mode)
        if message is not None:
            problems.append(("[mode] mode", message))
        for name in CONSTRAINT_SECTIONS:
            value = getattr(self, name)
            cls = SECTION_CLASSES[name]
            if value is not None and not isinstance(value, cls):
                problems.append(
                    (
                        f"[{name}]",
                        f"must be a {cls.__name__} or None; got {show(value)} "
                        "(use Policy.from_dict to build a policy from plain mappings)",
                    )
                )
        extra = self.extra
        if not isinstance(extra, Mapping):
            problems.append(("extra", f"must be a mapping of sections; got {show(extra)}"))
            extra = {}
        for name, body in extra.items():
            if name not in EXTRA_SECTIONS:
                if name in SECTIONS:
                    msg = f"is a standard section; pass it as Policy({name}=...)"
                else:
                    msg = (
                        f"unknown section{suggest(name, ALL_SECTIONS)}; extra sections "
                        f"allowed: {', '.join(EXTRA_SECTIONS)}"
                    )
                problems.append((f"[{name}]", msg))
            elif not isinstance(body, Mapping):
                problems.append((f"[{name}]", f"must be a table of keys; got {show(body)}"))
        channels = self.channels if isinstance(self.channels, Mapping) else {}
        if not isinstance(self.channels, Mapping):
            problems.append(("[channels]", f"must be a mapping of channel names to ChannelLimits; "
                                           f"got {show(self.channels)}"))  # fmt: skip
        for name, limits in channels.items():
            problems += check_channel(name, limits)
        if not problems:
            problems += _schedule_problems(self)
        if problems:
            raise PolicyError(problems, source="Policy")
        frozen = MappingProxyType({name: freeze(extra[name]) for name in extra})
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
                [("policy", f"must be a mapping of sections; got {show(data)}")], source
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
                parsed, found = parse_channels(body)
                problems += found
                channels.update(parsed)
                continue
            if name in SECTION_CLASSES or name in EXTRA_SECTIONS:
                if not isinstance(body, Mapping):
                    problems.append((f"[{name}]", f"must be a table of keys; got {show(body)}"))
                    continue
                if name in EXTRA_SECTIONS:
                    extra[name] = body
                    continue
                values, found = parse_section(name, body)
                problems += found
                if not found:
                    sections[name] = values
            else:
                problems.append(
                    (
                        f"[{name}]",
                        f"unknown section{suggest(name, ALL_SECTIONS)}; allowed sections: "
                        f"{', '.join(ALL_SECTIONS)}",
                    )
                )
        if problems:
            raise PolicyError(problems, source)
        mode = sections.pop("mode", {"mode": "whole_loan"})["mode"]
        built: dict[str, Any] = {
            name: SECTION_CLASSES[name](**values) for name, values in sections.items()
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
        """Read and validate a ``policy.toml`` file; errors name the file (and line).

        The file is UTF-8, as TOML requires (a byte-order mark is skipped).
        """
        path = Path(path)
        raw = path.read_bytes()
        try:  # UTF-8 (TOML's only encoding), with or without a Windows editor's mark
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PolicyError(
                [(str(path), f"is not UTF-8 text ({exc.reason} at byte {exc.start}); TOML "
                             "files are UTF-8: save it as UTF-8")], str(path),
            ) from exc  # fmt: skip
        return cls.from_toml_text(text, source=str(path))

    # ------------------------------------------------------------------ output

    def to_dict(self) -> dict[str, Any]:
        """Return the policy as plain dicts (present sections only); round-trips via from_dict."""
        out: dict[str, Any] = {"mode": {"mode": self.mode}}
        for name in CONSTRAINT_SECTIONS:
            section = getattr(self, name)
            if section is not None:
                out[name] = section.to_dict()
        if self.channels:
            out["channels"] = {name: lim.to_dict() for name, lim in self.channels.items()}
        for name, body in self.extra.items():
            out[name] = thaw(body)
        return out

    def to_toml(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the policy as ``policy.toml`` text; also write it to ``path`` if given."""
        lines = [
            "# npl_disposal policy: money in CNY yuan, ages in months, counts in loans,",
            "# ratios as shares (0.03 = 3%). A missing section means no such constraint",
            "# (the write-off priority holds as leave_book without [write_off]).",
        ]
        for name, body in self.to_dict().items():
            if name == "channels":
                for channel, keys in body.items():
                    lines += ["", f"[channels.{toml_key(channel)}]"]
                    lines += toml_keys(ChannelLimits, f"channels.{channel}", keys)
                continue
            lines += ["", f"[{name}]"]
            if name in SECTION_CLASSES:
                lines += toml_keys(SECTION_CLASSES[name], name, body)
            else:
                for key, value in body.items():
                    lines.append(f"{toml_key(key)} = {toml_value(value, f'[{name}] {key}')}")
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
        if name not in ALL_SECTIONS:
            raise PolicyError(
                [(f"[{name}]", f"unknown section; allowed sections: {', '.join(ALL_SECTIONS)}")],
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
        return self.rules.fixed_costs

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

    @property
    def rules(self) -> Rules:
        """The rules in force, each defined once (see :mod:`npl_disposal.policy.rules`)."""
        return rules_of(self)

    @property
    def tolerance_at(self) -> str:
        """A schedule's checked periods: ``[tolerance] at``, default ``"year_end"``."""
        at = self.tolerance.at if self.tolerance is not None else None
        return at or "year_end"

    def summary(self) -> str:
        """Return a short human-readable description of the rules in force."""
        if self.fractional:
            lines = ["Disposal policy: fractional mode (loans may be split across channels)"]
        else:
            lines = ["Disposal policy: whole-loan mode (each loan goes to exactly one channel)"]
        lines += self.rules.describe({name: getattr(self, name) for name in CONSTRAINT_SECTIONS})
        if self.schedule is not None:
            from npl_disposal.policy.schedule import ScheduleRules  # it reads this class

            lines += ScheduleRules.of(self).describe()
        if self.risk is not None:
            from npl_disposal.policy.risk import TailRule  # it reads this class

            lines += TailRule(self.risk).describe()
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

"""Values of policy keys: how each kind of key is checked, and how values are shown.

Every key of ``policy.toml`` has a kind (money, a share, a count of loans...). One
function checks and normalises a value of each kind and says, in a
:class:`~npl_disposal.PolicyError` line, what was wrong and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

Mode = Literal["whole_loan", "fractional"]
Priority = Literal["leave_book", "quota_first", "none"]
CheckedAt = Literal["year_end", "every_period"]
#: The allowed values of ``[mode] mode``.
MODES: tuple[str, ...] = ("whole_loan", "fractional")
#: The allowed values of ``[write_off] priority``: the readings of 优先安排核销.
PRIORITIES: tuple[str, ...] = ("leave_book", "quota_first", "none")
#: The allowed values of ``[tolerance] at`` (a schedule's checked periods).
CHECKED_AT: tuple[str, ...] = ("year_end", "every_period")
#: The keys whose value is one of a few words, and those words.
CHOICES: dict[str, tuple[str, ...]] = {"mode": MODES, "priority": PRIORITIES, "at": CHECKED_AT}
#: The kinds of list keys (one value per period of a schedule), and the kind of each item.
LISTS: dict[str, str] = {"money_list": "money", "count_list": "count", "period_list": "period"}

#: One problem of a policy: where (``[section] key``) and what is wrong.
Problem = tuple[str, str]
Kind = Literal[
    "money",
    "limit",
    "weight",
    "months",
    "count",
    "count_limit",
    "share",
    "bool",
    "mode",
    "priority",
    "at",
    "period",
    "money_list",
    "count_list",
    "period_list",
    "column",
    "alpha",
]

#: The unit written beside each kind of number.
UNITS: dict[str, str] = {
    "money": "CNY yuan",
    "limit": "CNY yuan",
    "weight": "CNY per CNY",
    "count_limit": "loans",
    "months": "months",
    "count": "loans",
    "share": "share",
    "money_list": "CNY yuan per period",
    "count_list": "loans per period",
    "period_list": "periods",
}


def key(kind: Kind, doc: str) -> dict[str, str]:
    """Field metadata: how a key is validated and what it means (for messages)."""
    return {"kind": kind, "doc": doc}


def show(value: object) -> str:
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


def is_bool(value: object) -> bool:
    """Tell whether ``value`` is a Python or numpy boolean."""
    if isinstance(value, bool):
        return True
    return getattr(getattr(value, "dtype", None), "kind", None) == "b"


def check_value(kind: str, value: object) -> tuple[Any, str | None]:
    """Validate and normalise one value; return ``(value, None)`` or ``(value, message)``."""
    if kind in CHOICES:
        words = CHOICES[kind]
        if isinstance(value, str) and value in words:
            return value, None
        allowed = ", ".join(repr(w) for w in words[:-1]) + f" or {words[-1]!r}"
        return value, f"must be {allowed}; got {show(value)}{suggest(value, words)}"
    if kind == "bool":
        if is_bool(value):
            return bool(value), None
        return value, f"must be true or false; got {show(value)}"
    if kind in LISTS:
        return _check_list(LISTS[kind], value)
    if kind == "column":
        if isinstance(value, str) and value.strip():
            return value.strip(), None
        wanted = "must be the name of a portfolio column, e.g. 'classification'"
        return value, f"{wanted}; got {show(value)}"
    if kind == "alpha":
        if is_bool(value) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
            return value, f"must be a probability level in [0, 1), e.g. 0.95; got {show(value)}"
        return float(value), None
    if kind == "period":
        if is_bool(value) or not isinstance(value, numbers.Integral) or int(value) < 1:
            return value, f"must be a period number 1, 2, ...; got {show(value)}"
        return int(value), None

    unit = UNITS[kind]
    if kind == "share":
        wanted = "a share in [0, 1] (0.03 means 3%)"
    elif kind in ("count", "count_limit"):
        wanted = "a whole number of loans >= 0"
    else:
        wanted = f"a number of {unit} >= 0"
    if is_bool(value) or not isinstance(value, numbers.Real):
        hint = " (write numbers without quotes)" if isinstance(value, str) else ""
        return value, f"must be {wanted}; got {show(value)}{hint}"
    number = float(value)
    if not math.isfinite(number) and not (kind in ("limit", "count_limit") and number > 0):
        return value, f"must be {wanted} (finite); got {show(value)}"
    if kind == "count_limit" and number == math.inf:
        return number, None
    if kind in ("count", "count_limit"):
        if not number.is_integer():
            return value, f"must be {wanted}; got {show(value)}, not a whole number"
        if number < 0:
            return value, f"must be {wanted}; got {show(value)}"
        if kind == "count_limit":
            return number, None
        return int(value) if isinstance(value, numbers.Integral) else int(number), None
    if kind == "share":
        if not 0.0 <= number <= 1.0:
            hint = f" (did you mean {number / 100:g}?)" if 1.0 < number <= 100.0 else ""
            return value, f"must be {wanted}; got {show(value)}{hint}"
        return number, None
    if number < 0:
        return value, f"must be {wanted}; got {show(value)}"
    return number, None


def _check_list(item: str, value: object) -> tuple[Any, str | None]:
    """A list of one value per period (or of periods): each item checked as ``item``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return value, f"must be a list such as [1, 2]; got {show(value)}"
    out = []
    for i, v in enumerate(value):
        checked, message = check_value(item, v)
        if message is not None:
            return value, f"item {i + 1} {message}"
        out.append(checked)
    if item == "period" and len(set(out)) != len(out):
        return value, f"lists a period twice; got {show(list(value))}"
    return (tuple(sorted(out)) if item == "period" else tuple(out)), None


def suggest(name: object, candidates: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``candidates``."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def freeze(value: object) -> object:
    """Make a nested value read-only: mappings become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: object) -> object:
    """Undo :func:`freeze`: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def money(amount: float) -> str:
    """Format CNY yuan for people: ``CNY 12.30m``, ``CNY 1.50bn``, ``CNY 8,000``."""
    if math.isinf(amount):
        return "no limit" if amount > 0 else "CNY -inf"
    if abs(amount) >= 1e9:
        return f"CNY {amount / 1e9:,.2f}bn"
    if abs(amount) >= 1e6:
        return f"CNY {amount / 1e6:,.2f}m"
    if float(amount).is_integer():
        return f"CNY {amount:,.0f}"
    return f"CNY {amount:,.2f}"


def pct(share: float) -> str:
    """Format a share as a percentage with two decimals: ``4.59%``."""
    return f"{share * 100:.2f}%"


def millions(amount: float) -> str:
    """CNY in millions (``CNY 12.30m``), or in yuan where millions would show 0.00m."""
    return f"CNY {amount:,.2f}" if 0 < abs(amount) < 5e3 else f"CNY {amount / 1e6:,.2f}m"

"""Writing a policy back as ``policy.toml`` text, each key with its unit as a comment."""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from npl_disposal.exceptions import PolicyError
from npl_disposal.policy._values import UNITS, is_bool, show
from npl_disposal.policy.sections import Section

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}  # fmt: skip


def toml_key(key: object) -> str:
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


def toml_keys(cls: type[Section], name: str, body: Mapping[str, Any]) -> list[str]:
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
            text = toml_value(value, f"[{name}] {key}")
        unit = UNITS.get(kind)
        lines.append(f"{key} = {text}" + (f"  # {unit}" if unit else ""))
    return lines


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


def toml_value(value: object, where: str) -> str:
    """Render one value as TOML (nested mappings as inline tables)."""
    import datetime as _dt

    if is_bool(value):
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
        items = [f"{toml_key(k)} = {toml_value(v, f'{where}.{k}')}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v, where) for v in value) + "]"
    raise PolicyError(
        [(where, f"cannot be written to TOML: {show(value)}")], source="Policy.to_toml"
    )

"""Checking the values of a ``[valuation]`` section, every problem named by its key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from npl_disposal.io.schema import NPL_CLASSES
from npl_disposal.valuation._defaults import (
    HAZARD_DESTINATIONS,
    RESTRUCTURABLE,
    TYPES,
    bulk_curves_default,
    bulk_share_default,
    curves_default,
    haircuts_default,
    hazards_default,
    redefault_default,
    slopes_default,
)
from npl_disposal.valuation.recovery import (
    RecoveryCurve,
)

__all__ = ["parse"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
Problem = tuple[str, str]


# --------------------------------------------------------------------------- parsing


def _number(where: str, value: object) -> tuple[float | None, list[Problem]]:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        hint = " (write numbers without quotes)" if isinstance(value, str) else ""
        return None, [(where, f"must be a number; got {value!r}{hint}")]
    number = float(value)
    if math.isnan(number):
        return None, [(where, "must be a number; got nan")]
    return number, []


def _share(
    where: str, value: object, what: str = "a share in [0, 1]"
) -> tuple[float, list[Problem]]:
    number, found = _number(where, value)
    if number is None:
        return 0.0, found
    if not 0.0 <= number <= 1.0:
        hint = f" (did you mean {number / 100:g}?)" if 1.0 < number <= 100.0 else ""
        return number, [(where, f"must be {what}; got {value!r}{hint}")]
    return number, []


def _nonneg(where: str, value: object, unit: str) -> tuple[float, list[Problem]]:
    number, found = _number(where, value)
    if number is None:
        return 0.0, found
    if number < 0 or math.isinf(number):
        return number, [(where, f"must be a finite number of {unit} >= 0; got {value!r}")]
    return number, []


def _table(where: str, value: object) -> tuple[Mapping[str, Any], list[Problem]]:
    if not isinstance(value, Mapping):
        return {}, [(where, f"must be a table of keys; got {value!r}")]
    return value, []


def _unknown(where: str, keys: object, allowed: Sequence[str]) -> list[Problem]:
    out: list[Problem] = []
    for key in keys:  # type: ignore[attr-defined]
        if key not in allowed:
            out.append((f"{where}.{key}", f"unknown key; allowed: {', '.join(allowed)}"))
    return out


def parse(name: str, kind: str, value: Any) -> tuple[Any, list[Problem]]:
    """Validate and normalise one field; returns ``(value, problems)``."""
    where = f"[valuation] {name}"
    if kind == "rate":
        return _share(where, value, "a rate per year in [0, 1] (0.08 means 8 %)")
    if kind in ("months", "days", "money"):
        return _nonneg(
            where, value, {"months": "months", "days": "days", "money": "CNY yuan"}[kind]
        )
    if kind == "share":
        return _share(where, value)
    if kind == "observation":
        number, found = _nonneg(where, value, "months")
        if not found and number < 12:
            found = [
                (where, f"must be at least 12 months (regulatory minimum of 1 year); got {value!r}")
            ]
        return number, found
    if kind == "count":
        number, found = _nonneg(where, value, "months")
        if found:
            return value, found
        if not float(number).is_integer() or number < 1:
            return value, [(where, f"must be a whole number of months >= 1; got {value!r}")]
        return int(number), []
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value), []
        return value, [(where, f"must be true or false; got {value!r}")]
    if kind == "columns":
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            return value, [(where, f"must be a list of column names; got {value!r}")]
        return tuple(value), []
    if kind == "hazards":
        return _parse_hazards(where, value)
    if kind == "curves":
        return _parse_curves(where, name, value)
    if kind in ("types", "classes", "npl_classes"):
        keys = {"types": TYPES, "classes": RESTRUCTURABLE, "npl_classes": NPL_CLASSES}[kind]
        default = {
            "collateral_haircuts": haircuts_default,
            "collateral_age_slope": slopes_default,
            "restructure_redefault": redefault_default,
            "bulk_price_share": bulk_share_default,
        }[name]()
        body, found = _table(where, value)
        found += _unknown(where, body, keys)
        merged = {**default, **{k: v for k, v in body.items() if k in keys}}
        out: dict[str, float] = {}
        for key in keys:
            out[key], bad = _share(f"{where}.{key}", merged[key])
            found += bad
        return MappingProxyType(out), found
    raise AssertionError(f"unknown kind {kind!r}")  # pragma: no cover


def _parse_hazards(where: str, value: Any) -> tuple[Any, list[Problem]]:
    body, found = _table(where, value)
    found += _unknown(where, body, NPL_CLASSES)
    default = hazards_default()
    rows: dict[str, Mapping[str, float]] = {}
    for cls in NPL_CLASSES:
        given = body.get(cls, {})
        loc = f"{where}.{cls}"
        row_body, bad = _table(loc, given)
        found += bad
        found += _unknown(loc, row_body, HAZARD_DESTINATIONS)
        if row_body.get(cls, 0.0) not in (0, 0.0):
            found.append((f"{loc}.{cls}", "leave it out: staying is 1 minus the other hazards"))
        merged = {**default[cls], **{k: v for k, v in row_body.items() if k in HAZARD_DESTINATIONS}}
        merged[cls] = 0.0
        row: dict[str, float] = {}
        for dest in HAZARD_DESTINATIONS:
            row[dest], bad = _share(
                f"{loc}.{dest}", merged[dest], "a monthly probability in [0, 1]"
            )
            found += bad
        total = sum(row.values())
        if total > 1.0 + 1e-12:
            found.append((loc, f"monthly hazards sum to {total:g}; they must sum to at most 1"))
        rows[cls] = MappingProxyType(row)
    return MappingProxyType(rows), found


def _parse_curves(where: str, name: str, value: Any) -> tuple[Any, list[Problem]]:
    body, found = _table(where, value)
    found += _unknown(where, body, NPL_CLASSES)
    default = curves_default() if name == "recovery_curves" else bulk_curves_default()
    curves: dict[str, RecoveryCurve] = {}
    for cls in NPL_CLASSES:
        given = body.get(cls)
        loc = f"{where}.{cls}"
        if given is None:
            curves[cls] = default[cls]
        elif isinstance(given, RecoveryCurve):
            curves[cls] = given
        elif isinstance(given, Mapping):
            try:
                curves[cls] = RecoveryCurve.from_dict(given, base=default[cls])
            except ValueError as exc:
                found.append((loc, str(exc)))
        else:
            found.append(
                (
                    loc,
                    f"must be a table (initial, floor, half_life_months or "
                    f"ages, rates); got {given!r}",
                )
            )
    return MappingProxyType(curves), found



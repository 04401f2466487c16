"""How much a non-performing loan brings back, by NPL age and security.

Vectorised building blocks of the valuation layer (:mod:`npl_disposal.valuation`):

* :class:`RecoveryCurve` -- the share of an unsecured claim recovered when a workout
  ends at a given NPL age (months): an exponential decay to a floor, or a table
  interpolated linearly (flat beyond its ends). Never increasing in age.
* :class:`CollateralHaircut` and :func:`realisable_collateral` -- what collateral
  fetches in a forced sale: market value (CNY yuan) times ``1 - haircut - age_slope *
  age``, floored at zero, by collateral type (``none``, ``real_estate``, ``equipment``,
  ``receivables``; anything else is ``unknown`` and gets a conservative default).
* :func:`guarantee_payout` -- a government financing guarantee pays ``guarantee_cover``
  (a share) of the loss, the loss being the exposure less the collateral recovery.
* :func:`expected_recovery` -- the three combined: collateral first, then the guarantee
  on the rest, then unsecured collection on what is still uncovered. The result is never
  above the exposure, never falls with more collateral or more guarantee cover, and never
  rises with age when its inputs do not.

Money is CNY yuan (float64), ages are months, rates and shares are in [0, 1]. Every
function works elementwise on numpy arrays (one element per loan) and broadcasts scalars.
The default parameter values and their sources are in ``docs/valuation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COLLATERAL_ALIASES",
    "COLLATERAL_TYPES",
    "UNKNOWN_COLLATERAL",
    "CollateralHaircut",
    "RecoveryCurve",
    "collateral_codes",
    "collateral_share",
    "expected_recovery",
    "guarantee_payout",
    "realisable_collateral",
]

FloatArray = NDArray[np.float64]
Problem = tuple[str, str]

#: Collateral types with their own haircut; any other label is :data:`UNKNOWN_COLLATERAL`.
COLLATERAL_TYPES: tuple[str, ...] = ("none", "real_estate", "equipment", "receivables")
#: The type given to labels not in :data:`COLLATERAL_TYPES` (or their aliases).
UNKNOWN_COLLATERAL = "unknown"

#: Accepted spellings of the collateral types (lower case), Chinese included.
COLLATERAL_ALIASES: dict[str, str] = {
    "none": "none",
    "unsecured": "none",
    "credit": "none",
    "guarantee": "none",
    "信用": "none",
    "无": "none",
    "无抵押": "none",
    "保证": "none",
    "real_estate": "real_estate",
    "real estate": "real_estate",
    "property": "real_estate",
    "房产": "real_estate",
    "房地产": "real_estate",
    "不动产": "real_estate",
    "土地": "real_estate",
    "equipment": "equipment",
    "machinery": "equipment",
    "设备": "equipment",
    "机器设备": "equipment",
    "动产": "equipment",
    "receivables": "receivables",
    "receivable": "receivables",
    "应收账款": "receivables",
}


def _as_float(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class RecoveryCurve:
    """Share of a claim recovered when a workout ends at NPL age ``age`` (months).

    Two forms:

    * exponential (default): ``floor + (initial - floor) * 0.5 ** (age / half_life_months)``;
    * table: give ``ages`` (months, strictly increasing, >= 0) and ``rates`` (shares,
      non-increasing); rates are interpolated linearly and flat beyond both ends.

    Either form is non-increasing in age and stays in [0, 1]. Invalid parameters raise
    ``ValueError`` naming every problem (see :meth:`problems`).
    """

    initial: float = 0.0
    floor: float = 0.0
    half_life_months: float = 24.0
    ages: tuple[float, ...] = ()
    rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ages", tuple(float(a) for a in self.ages))
        object.__setattr__(self, "rates", tuple(float(r) for r in self.rates))
        problems = self.problems()
        if problems:
            raise ValueError(
                "invalid recovery curve: " + "; ".join(f"{k}: {m}" for k, m in problems)
            )

    @classmethod
    def exponential(
        cls, initial: float, floor: float = 0.0, half_life_months: float = 24.0
    ) -> RecoveryCurve:
        """Exponential decay from ``initial`` at age 0 to ``floor`` (shares)."""
        return cls(initial=initial, floor=floor, half_life_months=half_life_months)

    @classmethod
    def table(cls, ages: Sequence[float], rates: Sequence[float]) -> RecoveryCurve:
        """Linear interpolation of ``rates`` (shares) at ``ages`` (months), flat beyond."""
        return cls(ages=tuple(ages), rates=tuple(rates))

    @property
    def is_table(self) -> bool:
        """True for the table form."""
        return bool(self.ages) or bool(self.rates)

    def problems(self) -> list[Problem]:
        """Every problem of the parameters, as ``(key, message)`` pairs (empty when valid)."""
        out: list[Problem] = []
        if self.is_table:
            ages, rates = np.asarray(self.ages), np.asarray(self.rates)
            if ages.size == 0 or ages.size != rates.size:
                out.append(("ages", "ages and rates must be non-empty and of equal length"))
                return out
            if not np.all(np.isfinite(ages)) or ages.min() < 0:
                out.append(("ages", "must be finite months >= 0"))
            elif ages.size > 1 and np.any(np.diff(ages) <= 0):
                out.append(("ages", "must be strictly increasing"))
            if not np.all((rates >= 0) & (rates <= 1)):
                out.append(("rates", "must be shares in [0, 1]"))
            elif rates.size > 1 and np.any(np.diff(rates) > 0):
                out.append(("rates", "must not increase with age"))
            return out
        for key in ("initial", "floor"):
            value = getattr(self, key)
            if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
                out.append((key, f"must be a share in [0, 1]; got {value!r}"))
        if not out and self.floor > self.initial:
            out.append(("floor", f"must not exceed initial ({self.initial!r}); got {self.floor!r}"))
        hl = self.half_life_months
        if not _is_number(hl) or math.isnan(float(hl)) or float(hl) <= 0:
            out.append(("half_life_months", f"must be months > 0; got {hl!r}"))
        return out

    def rate(self, age_months: ArrayLike) -> FloatArray:
        """Recovery share (in [0, 1]) at each NPL age in months; negative ages count as 0."""
        age = np.maximum(_as_float(age_months), 0.0)
        if self.is_table:
            return np.interp(age, self.ages, self.rates)
        if math.isinf(self.half_life_months):
            return np.full(age.shape, float(self.initial))
        decay = np.exp2(-age / self.half_life_months)
        return self.floor + (self.initial - self.floor) * decay

    def to_dict(self) -> dict[str, Any]:
        """The curve as written in ``[valuation]`` (exponential keys or ages/rates)."""
        if self.is_table:
            return {"ages": list(self.ages), "rates": list(self.rates)}
        return {
            "initial": float(self.initial),
            "floor": float(self.floor),
            "half_life_months": float(self.half_life_months),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RecoveryCurve | None = None) -> RecoveryCurve:
        """Build a curve from a mapping; exponential keys missing are taken from ``base``.

        ``{"ages": [...], "rates": [...]}`` gives the table form; ``initial``, ``floor``,
        ``half_life_months`` the exponential form. Raises ``ValueError`` when invalid.
        """
        keys = set(data)
        allowed = {"initial", "floor", "half_life_months", "ages", "rates"}
        if keys - allowed:
            raise ValueError(f"unknown key(s) {sorted(keys - allowed)}; allowed: {sorted(allowed)}")
        if keys & {"ages", "rates"}:
            if keys & {"initial", "floor", "half_life_months"}:
                raise ValueError("give either ages/rates (table) or initial/floor/half_life_months")
            return cls.table(
                _number_list(data.get("ages", ())), _number_list(data.get("rates", ()))
            )
        start = base if base is not None and not base.is_table else cls()
        values = {
            "initial": data.get("initial", start.initial),
            "floor": data.get("floor", start.floor),
            "half_life_months": data.get("half_life_months", start.half_life_months),
        }
        for key, value in values.items():
            if not _is_number(value):
                raise ValueError(f"{key} must be a number; got {value!r}")
        return cls.exponential(
            float(values["initial"]), float(values["floor"]), float(values["half_life_months"])
        )


def _number_list(values: object) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"must be a list of numbers; got {values!r}")
    if not all(_is_number(v) for v in values):
        raise ValueError(f"must be a list of numbers; got {list(values)!r}")
    return [float(v) for v in values]


# --------------------------------------------------------------------------- collateral


@dataclass(frozen=True)
class CollateralHaircut:
    """Forced-sale haircut of one collateral type.

    ``haircut`` is the share of market value lost at NPL age 0 (auction discount,
    fees, taxes); ``age_slope`` the further share lost per month of NPL age. The
    share realised, ``1 - haircut - age_slope * age``, is floored at 0.
    """

    haircut: float
    age_slope: float = 0.0

    def __post_init__(self) -> None:
        if not _is_number(self.haircut) or not 0.0 <= self.haircut <= 1.0:
            raise ValueError(f"haircut must be a share in [0, 1]; got {self.haircut!r}")
        if not _is_number(self.age_slope) or not 0.0 <= self.age_slope <= 1.0:
            raise ValueError(
                f"age_slope must be a share per month in [0, 1]; got {self.age_slope!r}"
            )

    def share(self, age_months: ArrayLike) -> FloatArray:
        """Share of market value realised at each NPL age (months), in [0, 1]."""
        age = np.maximum(_as_float(age_months), 0.0)
        return np.clip(1.0 - self.haircut - self.age_slope * age, 0.0, 1.0)


def collateral_codes(
    types: ArrayLike | pd.Series, known: Sequence[str] = COLLATERAL_TYPES
) -> NDArray[np.intp]:
    """Index into ``(*known, "unknown")`` of each collateral type label.

    Labels are matched case-insensitively after stripping, through
    :data:`COLLATERAL_ALIASES`; missing or unrecognised labels get the index of
    ``"unknown"`` (``len(known)``). Vectorised: each distinct label is looked up once.
    """
    names = [*known, UNKNOWN_COLLATERAL]
    lookup = {name: i for i, name in enumerate(names)}
    series = types if isinstance(types, pd.Series) else pd.Series(np.asarray(types, dtype=object))
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniques = list(series.cat.categories)
    else:
        codes, uniques_index = pd.factorize(series, use_na_sentinel=True)
        uniques = list(uniques_index)
    mapped = np.array(
        [lookup.get(_canonical_type(u), len(known)) for u in uniques] + [len(known)],
        dtype=np.intp,
    )
    return mapped[np.where(codes < 0, len(uniques), codes)]


def _canonical_type(label: object) -> str:
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return UNKNOWN_COLLATERAL
    text = str(label).strip().lower()
    return COLLATERAL_ALIASES.get(text, COLLATERAL_ALIASES.get(text.replace(" ", "_"), text))


def collateral_share(
    codes: ArrayLike,
    age_months: ArrayLike,
    haircuts: Sequence[CollateralHaircut],
) -> FloatArray:
    """Share of market value realised, per loan: ``haircuts[codes[i]].share(age[i])``."""
    code = np.asarray(codes, dtype=np.intp)
    cut = np.array([h.haircut for h in haircuts])[code]
    slope = np.array([h.age_slope for h in haircuts])[code]
    age = np.maximum(_as_float(age_months), 0.0)
    return np.clip(1.0 - cut - slope * age, 0.0, 1.0)


def realisable_collateral(
    collateral_value: ArrayLike,
    codes: ArrayLike,
    age_months: ArrayLike,
    haircuts: Sequence[CollateralHaircut],
) -> FloatArray:
    """What the collateral fetches (CNY yuan): market value times the realised share.

    Never negative; non-increasing in age; non-decreasing in the market value.
    """
    value = np.maximum(_as_float(collateral_value), 0.0)
    return value * collateral_share(codes, age_months, haircuts)


# --------------------------------------------------------------------------- combining


def guarantee_payout(
    exposure: ArrayLike,
    collateral_recovery: ArrayLike,
    guarantee_cover: ArrayLike,
    pay_rate: ArrayLike = 1.0,
) -> FloatArray:
    """Guarantee fund payment (CNY yuan): ``cover * pay_rate * (exposure - collateral)``.

    The loss covered is the exposure less what the collateral fetches (capped at the
    exposure); ``guarantee_cover`` is the share of that loss the government financing
    guarantee bears and ``pay_rate`` the share of claims it honours.
    """
    exp = _as_float(exposure)
    covered = np.clip(_as_float(collateral_recovery), 0.0, exp)
    share = np.clip(_as_float(guarantee_cover), 0.0, 1.0) * np.clip(_as_float(pay_rate), 0.0, 1.0)
    return share * (exp - covered)


def expected_recovery(
    exposure: ArrayLike,
    unsecured_rate: ArrayLike,
    collateral_recovery: ArrayLike = 0.0,
    guarantee_cover: ArrayLike = 0.0,
    guarantee_pay_rate: ArrayLike = 1.0,
) -> FloatArray:
    """Expected gross recovery (CNY yuan) of a claim of ``exposure`` yuan.

    Collateral first (``collateral_recovery`` yuan, capped at the exposure), then the
    guarantee on the remaining loss (:func:`guarantee_payout`), then unsecured
    collection of ``unsecured_rate`` (a share, e.g. :meth:`RecoveryCurve.rate`) of what
    is still uncovered. The result lies in [0, exposure]; it is non-decreasing in the
    collateral recovery, the guarantee cover and the unsecured rate, hence non-increasing
    in age when those are.
    """
    exp = np.maximum(_as_float(exposure), 0.0)
    coll = np.clip(_as_float(collateral_recovery), 0.0, exp)
    guarantee = guarantee_payout(exp, coll, guarantee_cover, guarantee_pay_rate)
    rest = np.maximum(exp - coll - guarantee, 0.0)
    rate = np.clip(_as_float(unsecured_rate), 0.0, 1.0)
    return np.minimum(coll + guarantee + rate * rest, exp)

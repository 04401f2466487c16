"""The valuation's default parameters, and the states and types its tables are keyed by."""

from __future__ import annotations

from npl_disposal.io.schema import NPL_CLASSES
from npl_disposal.valuation.recovery import (
    COLLATERAL_TYPES,
    UNKNOWN_COLLATERAL,
    RecoveryCurve,
)

__all__ = ["CURE_STATES", "HAZARD_DESTINATIONS", "RESTRUCTURABLE", "TYPES"]

#: Where a loan of an NPL class can go in one month of workout (besides staying).
HAZARD_DESTINATIONS: tuple[str, ...] = (*NPL_CLASSES, "recovered", "repaid", "written_off")
#: Migration-matrix states that count as a cure (the claim comes back in full).
CURE_STATES: tuple[str, ...] = ("repaid", "normal", "special_mention")
TYPES: tuple[str, ...] = (*COLLATERAL_TYPES, UNKNOWN_COLLATERAL)
RESTRUCTURABLE: tuple[str, ...] = NPL_CLASSES[:2]


def hazards_default() -> dict[str, dict[str, float]]:
    return {
        "substandard": {
            "substandard": 0.0, "doubtful": 0.025, "loss": 0.005,
            "recovered": 0.035, "repaid": 0.010, "written_off": 0.0,
        },
        "doubtful": {
            "substandard": 0.002, "doubtful": 0.0, "loss": 0.020,
            "recovered": 0.030, "repaid": 0.003, "written_off": 0.0,
        },
        "loss": {
            "substandard": 0.0, "doubtful": 0.0, "loss": 0.0,
            "recovered": 0.025, "repaid": 0.0, "written_off": 0.005,
        },
    }  # fmt: skip


def curves_default() -> dict[str, RecoveryCurve]:
    return {
        "substandard": RecoveryCurve.exponential(0.45, 0.03, 25.0),
        "doubtful": RecoveryCurve.exponential(0.25, 0.02, 25.0),
        "loss": RecoveryCurve.exponential(0.08, 0.0, 25.0),
    }


def bulk_curves_default() -> dict[str, RecoveryCurve]:
    return {
        "substandard": RecoveryCurve.exponential(0.080, 0.020, 36.0),
        "doubtful": RecoveryCurve.exponential(0.060, 0.018, 36.0),
        "loss": RecoveryCurve.exponential(0.045, 0.015, 36.0),
    }


def haircuts_default() -> dict[str, float]:
    return {"none": 1.0, "real_estate": 0.40, "equipment": 0.65, "receivables": 0.70,
            "unknown": 0.70}  # fmt: skip


def slopes_default() -> dict[str, float]:
    return {"none": 0.0, "real_estate": 0.003, "equipment": 0.008, "receivables": 0.012,
            "unknown": 0.012}  # fmt: skip


def bulk_share_default() -> dict[str, float]:
    return {"substandard": 0.75, "doubtful": 0.70, "loss": 0.55}


def redefault_default() -> dict[str, float]:
    return {"substandard": 0.30, "doubtful": 0.45}


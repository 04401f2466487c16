"""Ageing, recovery and the value of every disposal channel for every loan."""

from npl_disposal.valuation.valuation import (
    HAZARD_DESTINATIONS,
    PARAMETERS,
    SOURCES,
    MigrationLike,
    ValuationAssumptions,
    value_options,
)

__all__ = [
    "HAZARD_DESTINATIONS",
    "PARAMETERS",
    "SOURCES",
    "MigrationLike",
    "ValuationAssumptions",
    "value_options",
]

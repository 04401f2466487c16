"""Ageing, recovery and the value of every disposal channel for every loan.

* :mod:`.states`, :mod:`.migration`, :mod:`.history`, :mod:`.estimation`: loan states,
  migration matrices, a loan-month history read and checked, and the estimate of a
  monthly matrix from it;
* :mod:`.recovery`: recovery curves by NPL age, collateral haircuts, guarantees;
* :mod:`.assumptions`: every parameter of the valuation with its public source;
* :mod:`.options`: :func:`value_options`, the options table (value, profit impact and
  derecognised share of every eligible channel of every loan);
* :mod:`.schedule`: :func:`value_schedule`, the same options over time: keep a loan until
  the start of a period, then dispose of it (:class:`ScheduleOptions`);
* :mod:`.stress`: :func:`stress_scenarios`, recovery scenarios from stressed valuations.
"""

from npl_disposal.valuation._workout import MigrationLike
from npl_disposal.valuation.assumptions import (
    HAZARD_DESTINATIONS,
    PARAMETERS,
    SOURCES,
    ValuationAssumptions,
)
from npl_disposal.valuation.estimation import MigrationEstimator, estimate_migration
from npl_disposal.valuation.migration import (
    EXAMPLE_MATRIX,
    MigrationMatrix,
    project,
    read_matrix,
    write_matrix,
)
from npl_disposal.valuation.options import value_options
from npl_disposal.valuation.recovery import CollateralHaircut, RecoveryCurve
from npl_disposal.valuation.schedule import ScheduleOptions, value_schedule
from npl_disposal.valuation.states import (
    ABSORBING_STATES,
    DEFAULT_STATES,
    NPL_STATES,
    STATE_ALIASES,
    STATES,
    canonical_state,
)
from npl_disposal.valuation.stress import (
    STANDARD_STRESSES,
    Stress,
    stress_scenarios,
    stressed_assumptions,
)

__all__ = [
    "ABSORBING_STATES",
    "DEFAULT_STATES",
    "EXAMPLE_MATRIX",
    "HAZARD_DESTINATIONS",
    "NPL_STATES",
    "PARAMETERS",
    "SOURCES",
    "STANDARD_STRESSES",
    "STATES",
    "STATE_ALIASES",
    "CollateralHaircut",
    "MigrationEstimator",
    "MigrationLike",
    "MigrationMatrix",
    "RecoveryCurve",
    "ScheduleOptions",
    "Stress",
    "ValuationAssumptions",
    "canonical_state",
    "estimate_migration",
    "project",
    "read_matrix",
    "stress_scenarios",
    "stressed_assumptions",
    "value_options",
    "value_schedule",
    "write_matrix",
]

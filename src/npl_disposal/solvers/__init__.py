"""Solving the allocation problem: HiGHS from arrays, or any solver PuLP drives.

:func:`solve` is the front door; :mod:`.backends` names the backends
(:func:`available_solvers`); :mod:`.result` holds the verified plan
(:class:`AllocationResult`). The methods themselves (:mod:`._pricing`,
:mod:`._whole_loan`, :mod:`._formulation`, :mod:`._highs`) are internal.
"""

from npl_disposal.solvers.backends import available_solvers, get_backend
from npl_disposal.solvers.result import AllocationResult, SolverReport, Status
from npl_disposal.solvers.solve import explain_infeasibility, solve, solver_settings

__all__ = [
    "AllocationResult",
    "SolverReport",
    "Status",
    "available_solvers",
    "explain_infeasibility",
    "get_backend",
    "solve",
    "solver_settings",
]

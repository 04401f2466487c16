"""Solving the allocation problem: HiGHS from arrays, or any solver PuLP drives."""

from npl_disposal.solvers.solve import AllocationResult, SolverReport, Status, solve

__all__ = ["AllocationResult", "SolverReport", "Status", "solve"]

"""Shared hypothesis strategies and problem factories for the allocation tests.

Two sources of small allocation problems (docs/model.md):

* :func:`synthetic_cases` -- :func:`npl_disposal.datasets.make_portfolio` with its own
  options and a randomly perturbed ``policy_dict()`` (sections dropped, budgets scaled,
  the tolerance made to bite, securitisation minimums and fixed costs, small bulk packages);
* :func:`tiny_cases` -- hand-built tables of at most 7 loans in the canonical columns of
  the input files, with a custom channel ``amc_b`` and budgets that sometimes sit exactly
  on a sum of balances (ties), small enough to enumerate every whole-loan plan.

:func:`brute_force` enumerates those plans and checks every rule of docs/model.md in
plain numpy from the tables and the policy mapping, independent of the library's matrix.
"""

from strategies.brute import BruteForce, brute_force, eligible_channels
from strategies.cases import (
    CAPACITIES,
    CONSTRAINT_SECTIONS,
    SOLVE_GUARD,
    TINY_CHANNELS,
    TINY_DERECOGNISED,
    Case,
    PolicyDict,
    as_a_cap,
    assert_sound,
    copy_policy,
    loan,
    make_case,
    rel_tol,
    relaxed,
    solve_feasible,
    tightened,
    tolerance_threshold,
    try_solve,
    without,
    without_limits,
)
from strategies.synthetic import synthetic_cases, tolerance_sections
from strategies.tiny import cases, tiny_cases, tiny_policies, tiny_tables

__all__ = [
    "CAPACITIES",
    "CONSTRAINT_SECTIONS",
    "SOLVE_GUARD",
    "TINY_CHANNELS",
    "TINY_DERECOGNISED",
    "BruteForce",
    "Case",
    "PolicyDict",
    "as_a_cap",
    "assert_sound",
    "brute_force",
    "cases",
    "copy_policy",
    "eligible_channels",
    "loan",
    "make_case",
    "rel_tol",
    "relaxed",
    "solve_feasible",
    "synthetic_cases",
    "tightened",
    "tiny_cases",
    "tiny_policies",
    "tiny_tables",
    "tolerance_sections",
    "tolerance_threshold",
    "try_solve",
    "without",
    "without_limits",
]

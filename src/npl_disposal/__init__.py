"""npl_disposal: plan the disposal of small/micro non-performing loans.

Validate an NPL portfolio, value every disposal channel for every loan, allocate
loans to channels under budgets and the 2022 notice's rules, and check the
inclusive small/micro NPL tolerance per branch. Money is CNY yuan throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from npl_disposal._lazy import lazy_names
from npl_disposal._version import __version__

#: Where each public name lives. Importing the package imports none of them (nor pandas,
#: numpy or scipy): a name's module is imported when the name is first used, so
#: ``npl-disposal --help`` and a program that needs one reader start fast.
_HOMES = {
    "keep_freed_memory": "npl_disposal._memory",
    "release_memory": "npl_disposal._memory",
    "ExcelUnavailableError": "npl_disposal.exceptions",
    "InfeasiblePolicyError": "npl_disposal.exceptions",
    "NplDisposalError": "npl_disposal.exceptions",
    "OutputError": "npl_disposal.exceptions",
    "PolicyError": "npl_disposal.exceptions",
    "PortfolioValidationError": "npl_disposal.exceptions",
    "SolverError": "npl_disposal.exceptions",
    "SolverUnavailableError": "npl_disposal.exceptions",
    "read_options": "npl_disposal.io.options",
    "Portfolio": "npl_disposal.io.portfolio",
    "read_branches": "npl_disposal.io.portfolio",
    "read_loans": "npl_disposal.io.portfolio",
    "read_portfolio": "npl_disposal.io.portfolio",
    "AllocationProblem": "npl_disposal.model.problem",
    "build_problem": "npl_disposal.model.problem",
    "Scenarios": "npl_disposal.io.scenarios",
    "read_scenarios": "npl_disposal.io.scenarios",
    "RiskFigures": "npl_disposal.model.risk_verify",
    "RiskFrontier": "npl_disposal.solvers.frontier",
    "risk_frontier": "npl_disposal.solvers.frontier",
    "Stress": "npl_disposal.valuation.stress",
    "stress_scenarios": "npl_disposal.valuation.stress",
    "Verification": "npl_disposal.model.verify",
    "verify_plan": "npl_disposal.model.verify",
    "Policy": "npl_disposal.policy",
    "load_policy": "npl_disposal.policy",
    "AllocationResult": "npl_disposal.solvers.result",
    "SolverReport": "npl_disposal.solvers.result",
    "Status": "npl_disposal.solvers.result",
    "solve": "npl_disposal.solvers.solve",
    "MigrationEstimator": "npl_disposal.valuation",
    "MigrationMatrix": "npl_disposal.valuation",
    "ValuationAssumptions": "npl_disposal.valuation",
    "estimate_migration": "npl_disposal.valuation",
    "value_options": "npl_disposal.valuation",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from npl_disposal._memory import keep_freed_memory, release_memory
    from npl_disposal.exceptions import (
        ExcelUnavailableError,
        InfeasiblePolicyError,
        NplDisposalError,
        OutputError,
        PolicyError,
        PortfolioValidationError,
        SolverError,
        SolverUnavailableError,
    )
    from npl_disposal.io.options import read_options
    from npl_disposal.io.portfolio import Portfolio, read_branches, read_loans, read_portfolio
    from npl_disposal.io.scenarios import Scenarios, read_scenarios
    from npl_disposal.model.problem import AllocationProblem, build_problem
    from npl_disposal.model.risk_verify import RiskFigures
    from npl_disposal.model.verify import Verification, verify_plan
    from npl_disposal.policy import Policy, load_policy
    from npl_disposal.solvers.frontier import RiskFrontier, risk_frontier
    from npl_disposal.solvers.result import AllocationResult, SolverReport, Status
    from npl_disposal.solvers.solve import solve
    from npl_disposal.valuation import (
        MigrationEstimator,
        MigrationMatrix,
        Stress,
        ValuationAssumptions,
        estimate_migration,
        stress_scenarios,
        value_options,
    )

__all__ = [
    "AllocationProblem",
    "AllocationResult",
    "ExcelUnavailableError",
    "InfeasiblePolicyError",
    "MigrationEstimator",
    "MigrationMatrix",
    "NplDisposalError",
    "OutputError",
    "Policy",
    "PolicyError",
    "Portfolio",
    "PortfolioValidationError",
    "RiskFigures",
    "RiskFrontier",
    "Scenarios",
    "SolverError",
    "SolverReport",
    "SolverUnavailableError",
    "Status",
    "Stress",
    "ValuationAssumptions",
    "Verification",
    "__version__",
    "build_problem",
    "estimate_migration",
    "keep_freed_memory",
    "load_policy",
    "read_branches",
    "read_loans",
    "read_options",
    "read_portfolio",
    "read_scenarios",
    "release_memory",
    "risk_frontier",
    "solve",
    "stress_scenarios",
    "value_options",
    "verify_plan",
]


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())

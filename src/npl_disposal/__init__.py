"""npl_disposal: plan the disposal of small/micro non-performing loans.

Validate an NPL portfolio, value every disposal channel for every loan, allocate
loans to channels under budgets and the 2022 notice's rules, and check the
inclusive small/micro NPL tolerance per branch. Money is CNY yuan throughout.
"""

from npl_disposal._memory import keep_freed_memory, release_memory
from npl_disposal._version import __version__
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

"""npl_disposal: plan the disposal of small/micro non-performing loans.

Validate an NPL portfolio, value every disposal channel for every loan, allocate
loans to channels under budgets and the 2022 notice's rules, and check the
inclusive small/micro NPL tolerance per branch. Money is CNY yuan throughout.
"""

from npl_disposal.exceptions import (
    InfeasiblePolicyError,
    NplDisposalError,
    PolicyError,
    PortfolioValidationError,
    SolverError,
    SolverUnavailableError,
)
from npl_disposal.portfolio import Portfolio, read_branches, read_loans, read_portfolio

__version__ = "0.1.0"

__all__ = [
    "InfeasiblePolicyError",
    "NplDisposalError",
    "PolicyError",
    "Portfolio",
    "PortfolioValidationError",
    "SolverError",
    "SolverUnavailableError",
    "__version__",
    "read_branches",
    "read_loans",
    "read_portfolio",
]

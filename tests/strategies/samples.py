"""The bundled sample with its branches renamed, planned: for reports that show names."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.datasets import sample_path
from npl_disposal.solvers.result import AllocationResult


def sample_plan_named(names: Mapping[str, str], mode: str = "fractional") -> AllocationResult:
    """The sample's plan (its options table and policy), branches renamed by ``names``.

    ``names`` maps a branch id (``B001``) to the name it takes; others keep their id.
    """
    loans = pd.read_csv(sample_path("portfolio.csv"), dtype={"loan_id": str})
    branches = pd.read_csv(sample_path("branches.csv"))
    loans["branch"] = loans["branch"].replace(dict(names))
    branches["branch"] = branches["branch"].replace(dict(names))
    problem = build_problem(read_portfolio(loans, branches), sample_path("policy.toml"),
                            sample_path("options.csv"))  # fmt: skip
    return solve(problem, mode=mode)

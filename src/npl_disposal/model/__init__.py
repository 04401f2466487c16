"""The allocation problem as data, its independent check, and why a policy cannot be met."""

from npl_disposal.model.problem import AllocationProblem, Block, ResourceRows, build_problem
from npl_disposal.model.verify import Verification, verify_plan

__all__ = ["AllocationProblem", "Block", "ResourceRows", "Verification", "build_problem",
           "verify_plan"]  # fmt: skip

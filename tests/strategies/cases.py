"""Allocation problems as tables (loans, branches, options, a policy mapping), and helpers."""


from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume

from npl_disposal import InfeasiblePolicyError, build_problem, solve
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers.result import AllocationResult, Status

#: Every section of policy.toml that adds a constraint (docs/model.md).
CONSTRAINT_SECTIONS = (
    "long_age",
    "write_off",
    "bulk_transfer",
    "securitisation",
    "restructure",
    "profit",
    "tolerance",
)
#: The capacities whose tightening may only lower the optimum: (section, key).
CAPACITIES = (
    ("write_off", "quota"),
    ("bulk_transfer", "capacity"),
    ("securitisation", "max_pool"),
    ("restructure", "max_loans"),
    ("profit", "max_loss"),
)
#: Channels a hand-built loan may be offered besides ``retain`` (``amc_b`` is custom).
TINY_CHANNELS = ("write_off", "bulk_transfer", "securitisation", "restructure", "amc_b")
#: Derecognised share of each channel in hand-built tables (custom: drawn).
TINY_DERECOGNISED = {
    "retain": 0.0,
    "write_off": 1.0,
    "bulk_transfer": 1.0,
    "securitisation": 0.95,
    "restructure": 0.0,
}

PolicyDict = dict[str, Any]
#: Seconds a solve may take in these tests (they take milliseconds): a guard, not a budget.
SOLVE_GUARD = 30.0


@dataclass(frozen=True, eq=False)
class Case:
    """One allocation problem as tables: loans, branches, options and a policy mapping."""

    loans: pd.DataFrame
    branches: pd.DataFrame
    options: pd.DataFrame
    policy: PolicyDict
    label: str = ""

    def __repr__(self) -> str:
        return (
            f"Case({self.label}, {len(self.loans)} loans, {len(self.branches)} branches, "
            f"policy={self.policy!r})\nloans=\n{self.loans.to_string()}\n"
            f"branches=\n{self.branches.to_string()}\noptions=\n{self.options.to_string()}"
        )

    @property
    def n_loans(self) -> int:
        """Number of loans."""
        return len(self.loans)

    def build(self, policy: PolicyDict | None = None) -> AllocationProblem:
        """The library's problem for these tables (under ``policy`` if given)."""
        return build_problem(
            self.loans,
            self.policy if policy is None else policy,
            self.options,
            self.branches,
        )


# --------------------------------------------------------------------------- factories

OPTION_FIELDS = ("loan_id", "channel", "value", "pnl", "derecognised")


def loan(loan_id: str, balance: float, **fields: Any) -> dict[str, Any]:
    """One loan row with the canonical columns; defaults: branch B1, young, not small/micro."""
    row: dict[str, Any] = {
        "loan_id": loan_id,
        "branch": "B1",
        "balance": balance,
        "provision": 0.0,
        "classification": "loss",
        "npl_age_months": 0.0,
        "small_micro": False,
        "inclusive": False,
    }
    row.update(fields)
    return row


def make_case(
    loans: list[dict[str, Any]],
    options: list[tuple[str, str, float, float, float]],
    policy: PolicyDict | None = None,
    branches: list[dict[str, Any]] | None = None,
    label: str = "factory",
) -> Case:
    """A case from plain rows; branches default to one roomy row per branch named."""
    frame = pd.DataFrame(loans)
    if branches is None:
        names = list(dict.fromkeys(frame["branch"]))
        branches = [{"branch": b, "inclusive_loans": 1e9, "profit": 1e7} for b in names]
    return Case(
        frame,
        pd.DataFrame(branches),
        pd.DataFrame(options, columns=list(OPTION_FIELDS)),
        {} if policy is None else policy,
        label,
    )


# --------------------------------------------------------------------------- policy edits


def copy_policy(policy: Mapping[str, Any]) -> PolicyDict:
    """A deep copy of a policy mapping (two levels)."""
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in policy.items()}


def without(policy: Mapping[str, Any], *sections: str) -> PolicyDict:
    """The policy without ``sections`` (those constraints become absent)."""
    out = copy_policy(policy)
    for name in sections:
        out.pop(name, None)
    return out


def as_a_cap(policy: Mapping[str, Any]) -> PolicyDict:
    """The policy with its write-off quota a cap only.

    Under ``quota_first`` the quota is also what the priority must fill: a larger quota
    asks more write-offs of small/micro loans, so tightening, relaxing or adding it is
    no pure change of a limit. The priority is then read as ``none``.
    """
    out = copy_policy(policy)
    body = out.get("write_off")
    if body is not None and body.get("priority") == "quota_first":
        body["priority"] = "none"
    return out


def without_limits(policy: Mapping[str, Any], section: str, loans: pd.DataFrame) -> PolicyDict:
    """The policy without ``[section]``'s limits: a policy no tighter than ``policy``.

    Dropping ``[write_off]`` would bring back the default priority (``leave_book``); its
    table stays instead, with its priority and a quota of every loan's balance.
    """
    body = policy.get("write_off") if section == "write_off" else None
    if body is None or body.get("priority", "leave_book") == "leave_book":
        return without(policy, section)
    out = copy_policy(policy)
    out["write_off"]["quota"] = float(loans["balance"].sum())
    return out


def tightened(policy: Mapping[str, Any], section: str, key: str, factor: float) -> PolicyDict:
    """The policy with one capacity multiplied by ``factor`` in [0, 1] (a tightening).

    Counts are floored. The securitisation pool is kept at or above twice ``min_pool``
    (never above its old size): the policy refuses ``min_pool > max_pool``, lowering
    ``min_pool`` would relax it, and a pool window of a few cents is a subset-sum
    problem that a whole-loan MILP may take hours to prove infeasible.
    """
    out = copy_policy(policy)
    body = out[section]
    old = body[key]
    if key == "max_loans":
        new: float = math.floor(old * factor)
    else:
        new = float(old) * factor
    if section == "securitisation":
        new = min(float(old), max(new, 2.0 * float(body.get("min_pool", 0.0))))
    body[key] = new
    return out


def relaxed(policy: Mapping[str, Any], section: str, key: str, delta: float) -> PolicyDict:
    """The policy with one capacity raised by ``delta``."""
    out = copy_policy(policy)
    out[section][key] = out[section][key] + delta
    return out


def tolerance_threshold(policy: Mapping[str, Any]) -> float | None:
    """τ = bank_npl_ratio + margin when the tolerance is enforced, else None."""
    tol = policy.get("tolerance")
    if tol is None or not tol.get("enforce", True):
        return None
    return float(tol["bank_npl_ratio"]) + float(tol.get("margin", 0.03))


# --------------------------------------------------------------------------- solving helpers


def try_solve(problem: AllocationProblem, **kwargs: Any) -> AllocationResult | None:
    """``solve`` or None when the policy cannot be met.

    A time limit of :data:`SOLVE_GUARD` seconds applies unless one is given; a run that
    finds no plan within it says nothing, so the example is discarded (``assume``).
    """
    kwargs.setdefault("time_limit", SOLVE_GUARD)
    try:
        result = solve(problem, **kwargs)
    except InfeasiblePolicyError:
        return None
    assume(result.status is not Status.NO_SOLUTION)
    return result


def solve_feasible(problem: AllocationProblem, **kwargs: Any) -> AllocationResult:
    """``solve``, discarding the example (hypothesis ``assume``) when it is infeasible."""
    result = try_solve(problem, **kwargs)
    assume(result is not None)
    assert result is not None
    return result


def rel_tol(*values: float, rel: float = 1e-6, floor: float = 1e-2) -> float:
    """``rel`` times the largest magnitude among ``values`` plus an absolute ``floor``."""
    return rel * max([1.0, *(abs(v) for v in values if math.isfinite(v))]) + floor


# --------------------------------------------------------------------------- synthetic source


def assert_sound(case: Case, result: AllocationResult) -> None:
    """Every loan allocated exactly once, and the balance conserved to the cent (plan table)."""
    per_loan = result.plan.groupby("loan_id")["share"].sum()
    per_loan = per_loan.reindex(case.loans["loan_id"], fill_value=0.0)
    assert per_loan.to_numpy() == pytest.approx(np.ones(case.n_loans), abs=1e-7)
    balance = case.loans.set_index("loan_id")["balance"]
    sent = (result.plan["loan_id"].map(balance) * result.plan["share"]).sum()
    assert abs(sent - balance.sum()) <= 0.01
    assert abs(result.channel_mix()["balance"].sum() - balance.sum()) <= 0.01

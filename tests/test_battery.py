"""One battery of properties, run against every backend installed here.

As PuLP's ``solver_common`` runs one set of tests against each solver, this file runs
the properties every plan must have against each backend ``available_solvers()`` finds
(the native HiGHS backend in both of its methods, and every PuLP solver installed):

* the plan verifies, every loan is allocated exactly once and the balance is conserved;
* the proven bound is not below the plan, and the LP relaxation bounds the whole-loan plan;
* tightening a capacity never raises the fractional optimum, nor does either reading
  of the write-off priority;
* on cases small enough to enumerate, the whole-loan optimum is the enumerated one;
* the backend agrees with native HiGHS.

A backend that is not installed is not listed, so its tests do not run (``pytest -rs``
does not show them as skipped: they simply are not collected).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal import verify_plan
from npl_disposal.policy import MODES
from npl_disposal.solvers import available_solvers
from npl_disposal.solvers.result import AllocationResult, Status
from strategies import (
    Case,
    assert_sound,
    brute_force,
    cases,
    rel_tol,
    tightened,
    tiny_cases,
    try_solve,
)

#: (solver, method) for every backend here: native HiGHS in both methods, then PuLP's.
BACKENDS = [("highs", "direct"), ("highs", "decomposition")] + [
    (name, None) for name in available_solvers() if name != "highs"
]
IDS = [f"{s}-{m}" if m else s for s, m in BACKENDS]
SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.parametrize("backend", BACKENDS, ids=IDS)


def _solve(case: Case, backend: tuple[str, str | None], mode: str, **policy: Any) -> Any:
    solver, method = backend
    problem = case.build(policy.get("policy"))
    return problem, try_solve(problem, mode=mode, solver=solver, method=method)


def _proven(result: AllocationResult) -> bool:
    return result.status is Status.OPTIMAL


@settings(max_examples=8, **SETTINGS)
@given(case=cases(max_synthetic=40))
def test_every_loan_once_balance_conserved_plan_verified(
    case: Case, backend: tuple[str, str | None]
) -> None:
    for mode in ("fractional", "whole_loan"):
        problem, result = _solve(case, backend, mode)
        if result is None:
            continue
        check = verify_plan(problem.portfolio, problem.policy, problem.options, result.plan,
                            on=result.blocks, whole_loan=mode == "whole_loan")  # fmt: skip
        assert check.ok, check.summary()
        assert check.objective == pytest.approx(result.verification.objective, rel=1e-9, abs=1e-6)
        assert_sound(case, result)
        assert result.bound >= result.objective - rel_tol(result.objective, rel=1e-9)


@settings(max_examples=8, **SETTINGS)
@given(case=cases(max_synthetic=40))
def test_the_relaxation_bounds_the_whole_loan_plan(
    case: Case, backend: tuple[str, str | None]
) -> None:
    _, frac = _solve(case, backend, "fractional")
    _, whole = _solve(case, backend, "whole_loan")
    if frac is None or whole is None:
        assert whole is None or frac is not None, "a whole-loan plan where the LP has none"
        return
    tol = rel_tol(frac.objective, whole.objective, rel=1e-7)
    assert frac.objective >= whole.objective - tol
    assert frac.bound >= whole.objective - tol


@settings(max_examples=6, **SETTINGS)
@given(case=cases(max_synthetic=40, require=("write_off",)))
def test_tightening_a_capacity_never_raises_the_optimum(
    case: Case, backend: tuple[str, str | None]
) -> None:
    # Under quota_first the quota is also what the priority must fill: a smaller quota
    # asks less of it, so only the quota as a cap is tightened here.
    policy = copy.deepcopy(case.policy)
    if policy["write_off"].get("priority") == "quota_first":
        policy["write_off"]["priority"] = "none"
    _, loose = _solve(case, backend, "fractional", policy=policy)
    tight_policy = tightened(policy, "write_off", "quota", 0.5)
    _, tight = _solve(case, backend, "fractional", policy=tight_policy)
    if tight is None:
        return
    assert loose is not None, "a looser policy has no plan where a tighter one has"
    assert tight.objective <= loose.objective + rel_tol(loose.objective, rel=1e-7)


@settings(max_examples=6, **SETTINGS)
@given(case=cases(max_synthetic=40, require=("write_off",)), mode=st.sampled_from(MODES))
def test_a_write_off_priority_never_raises_the_optimum(
    case: Case, backend: tuple[str, str | None], mode: str
) -> None:
    """Either reading of the priority adds a rule to ``none``: the optimum cannot rise."""
    free = copy.deepcopy(case.policy)
    free["write_off"]["priority"] = "none"
    _, loose = _solve(case, backend, mode, policy=free)
    for reading in ("leave_book", "quota_first"):
        ruled = copy.deepcopy(case.policy)
        ruled["write_off"]["priority"] = reading
        _, tight = _solve(case, backend, mode, policy=ruled)
        if tight is None:
            continue
        assert loose is not None, f"{reading} has a plan where no priority has none"
        if mode == "fractional" or (_proven(tight) and _proven(loose)):
            assert tight.objective <= loose.objective + rel_tol(loose.objective, rel=1e-7)


@settings(max_examples=10, **SETTINGS)
@given(case=tiny_cases(max_loans=4))
def test_whole_loan_optimum_is_the_enumerated_one(
    case: Case, backend: tuple[str, str | None]
) -> None:
    best = brute_force(case)
    _, whole = _solve(case, backend, "whole_loan")
    if best.objective is None:
        assert whole is None, "a plan returned where none meets every rule"
        return
    assert whole is not None, f"no plan returned, but {best.best} meets every rule"
    tol = rel_tol(best.objective)
    assert whole.objective <= best.objective + tol, "better than every plan there is"
    assert whole.bound >= best.objective - tol, "the proven bound is below a plan"
    if _proven(whole):
        assert whole.objective == pytest.approx(best.objective, rel=1e-6, abs=1e-2)


@settings(max_examples=6, **SETTINGS)
@given(case=cases(max_synthetic=40))
def test_the_backend_agrees_with_native_highs(
    case: Case, backend: tuple[str, str | None]
) -> None:
    problem = case.build()
    reference = try_solve(problem, mode="fractional", solver="highs", method="direct")
    _, result = _solve(case, backend, "fractional")
    assert (reference is None) == (result is None)
    if result is not None and reference is not None:
        assert result.objective == pytest.approx(reference.objective, rel=1e-7, abs=1e-2)

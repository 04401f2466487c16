"""PuLP backends: the time limit is enforced, and the bound is the one the solver proves.

Seen before: ``--solver PULP_CBC_CMD --time-limit 1`` on 100,000 loans ran 54 s (CBC
does not look at the clock during its first LP, and building PuLP's model was not
counted), and whole-loan CBC plans came back ``feasible`` against the LP bound although
CBC had proved them optimal.
"""

from __future__ import annotations

import subprocess
import sys
import time
import types

import pulp
import pytest

from npl_disposal import Status, build_problem, solve
from npl_disposal.datasets import make_portfolio
from npl_disposal.solvers import available_solvers
from npl_disposal.solvers._pulp_run import _watched, cbc_bound, run_within

CBC = "PULP_CBC_CMD" if "PULP_CBC_CMD" in available_solvers() else None
needs_cbc = pytest.mark.skipif(CBC is None, reason="CBC is not installed here")

STOPPED_LOG = """
Continuous objective value is -51400.0 - 17.18 seconds
Cuts at root node changed objective from -51400.0 to -51380.2
Result - Stopped on time limit

Objective value:                -51200.5
Lower bound:                    -51345.211
Gap:                            0.003
"""
OPTIMAL_LOG = """
Continuous objective value is -17.6451 - 0.00 seconds
Cbc0001I Search completed - best objective -17.53088697999999, took 206 iterations
Cuts at root node changed objective from -17.6451 to -17.531489
Result - Optimal solution found

Objective value:                -17.53088698
"""


def test_cbc_s_lower_bound_is_read_from_its_log() -> None:
    assert cbc_bound(STOPPED_LOG) == -51345.211


def test_cbc_s_claim_of_the_optimum_is_not_a_bound_its_root_node_is() -> None:
    assert cbc_bound(OPTIMAL_LOG) == -17.531489
    relaxation_only = "Continuous objective value is -17.6451 - 0.00 seconds\n"
    assert cbc_bound(relaxation_only) == -17.6451


def test_a_log_that_proves_nothing_gives_no_bound() -> None:
    assert cbc_bound("Result - Optimal solution found\n\nObjective value: -1.5\n") is None
    assert cbc_bound("") is None
    assert cbc_bound("Lower bound:  nan\n") is None


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_process_still_running_at_the_deadline_is_stopped() -> None:
    fake = types.ModuleType("fake_solver_api")
    fake.subprocess = subprocess  # type: ignore[attr-defined]
    with _watched(fake, time.perf_counter() + 0.2) as watch:
        process = fake.subprocess.Popen(_sleeper())  # type: ignore[attr-defined]
        code = process.wait()
    assert watch.stopped
    assert code != 0
    assert fake.subprocess is subprocess  # type: ignore[attr-defined]


def test_a_process_started_after_the_deadline_is_stopped_too() -> None:
    fake = types.ModuleType("fake_solver_api")
    fake.subprocess = subprocess  # type: ignore[attr-defined]
    with _watched(fake, time.perf_counter() - 1.0) as watch:
        code = fake.subprocess.call(_sleeper())  # type: ignore[attr-defined]
    assert watch.stopped and code != 0


class _SleepingSolver(pulp.LpSolver_CMD):  # type: ignore[misc]
    """A command-line 'solver' that never finishes, as CBC in its first LP."""

    name = "SLEEPING_CMD"

    def available(self) -> bool:
        return True

    def actualSolve(self, lp: pulp.LpProblem) -> int:
        if subprocess.Popen(_sleeper()).wait() != 0:
            raise pulp.PulpSolverError("the solver process failed")
        return 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP 3.3 on PuLP 4's variables
def test_run_within_stops_a_command_line_solver_and_says_so() -> None:
    prob = pulp.LpProblem("tiny", pulp.LpMaximize)
    x = pulp.LpVariable("x", 0, 1)
    prob += x
    run = run_within(prob, _SleepingSolver(path="sleep"), time.perf_counter() + 0.3)
    assert run.stopped
    assert subprocess.__name__ == "subprocess"  # the module is given back


@needs_cbc
def test_the_build_counts_against_the_time_limit() -> None:
    sample = make_portfolio(300, 3, seed=4)
    problem = build_problem(sample.loans, sample.policy_dict(), sample.options, sample.branches)
    result = solve(problem, solver=CBC, time_limit=1e-6)
    assert result.status is Status.NO_SOLUTION
    assert "building the PuLP model" in result.solver.message
    assert len(result.plan) == 0


@needs_cbc
def test_a_cbc_plan_carries_the_bound_cbc_proves() -> None:
    sample = make_portfolio(400, 4, seed=2)
    problem = build_problem(sample.loans, sample.policy_dict(), sample.options, sample.branches)
    cbc = solve(problem, solver=CBC, mode="whole_loan")
    highs = solve(problem, solver="highs", mode="whole_loan")
    relaxed = solve(problem, solver="highs", mode="fractional")
    assert cbc.bound >= highs.objective - 0.01, "CBC's bound is below a plan HiGHS found"
    assert cbc.bound < relaxed.objective - 1.0, "no tighter than the LP relaxation"
    assert cbc.gap == pytest.approx((cbc.bound - cbc.objective) / cbc.bound)

"""Plans with recovery scenarios: building and solving with the tail model, both modes.

The synthetic portfolio of each size with every rule of the policy, a ``risk_grade``
column of ``RISK_SEGMENTS`` segments and ``RISK_SCENARIOS`` scenarios whose factors
vary on every channel and segment (kept channels most, sales least), aversion 1 at
alpha 0.95. Build and solve are timed apart; every solve records ``mode, n_loans,
scenarios, status, objective, bound, gap, expected_value, tail_mean`` in
``benchmark.extra_info``. The smoke pass (``--benchmark-disable``) runs a small case:
scenarios are capped at one per 100 loans.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import ONE_ROUND, RISK_SCENARIOS, RISK_SEGMENTS, SEED, synthetic
from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.model.problem import AllocationProblem

MODES = ("fractional", "whole_loan")
#: Spread (log-normal sigma) of each channel's factors: sales fix prices, keeping does not.
SPREAD = {"retain": 0.30, "write_off": 0.05, "bulk_transfer": 0.10, "securitisation": 0.20,
          "restructure": 0.25}  # fmt: skip


def risk_scenarios(count: int, segments: int, seed: int = SEED) -> pd.DataFrame:
    """``count`` equally likely scenarios over the five channels and ``segments`` grades."""
    rng = np.random.default_rng(seed)
    channels = list(SPREAD)
    k, c, g = np.meshgrid(np.arange(count), np.arange(len(channels)), np.arange(segments),
                          indexing="ij")  # fmt: skip
    sigma = np.array([SPREAD[ch] for ch in channels])[c.ravel()]
    return pd.DataFrame({
        "scenario": np.char.add("s", k.ravel().astype(str)),
        "probability": 1.0 / count,
        "channel": np.array(channels)[c.ravel()],
        "segment": np.char.add("g", g.ravel().astype(str)),
        "factor": rng.lognormal(-0.02, sigma),
    })  # fmt: skip


@lru_cache(maxsize=1)
def risk_problem(n_loans: int) -> AllocationProblem:
    """The benchmark's problem at ``n_loans`` (cached; the portfolio is the registry's)."""
    data = synthetic(n_loans)
    grade = np.char.add("g", (np.arange(n_loans) * 37 % RISK_SEGMENTS).astype(str))
    loans = data.loans.assign(risk_grade=grade)
    policy = dict(data.policy_dict())
    policy["risk"] = {"aversion": 1.0, "alpha": 0.95, "segment_by": "risk_grade"}
    scenarios = risk_scenarios(min(RISK_SCENARIOS, max(n_loans // 100, 2)), RISK_SEGMENTS)
    return build_problem(read_portfolio(loans, data.branches), policy, data.options,
                         scenarios=scenarios)  # fmt: skip


def _timed(benchmark: Any, n_loans: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if n_loans > ONE_ROUND:
        return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1)
    return benchmark(fn, *args, **kwargs)


@pytest.mark.sizes("risk")
def test_build_risk_problem(benchmark: Any, n_loans: int) -> None:
    risk_problem.cache_clear()
    problem = _timed(benchmark, n_loans, risk_problem, n_loans)
    assert problem.risk is not None and problem.risk.modelled
    benchmark.extra_info.update(n_loans=n_loans, rows=len(problem.rows),
                                blocks=len(problem.blocks),
                                scenarios=problem.risk.scenarios.count)  # fmt: skip


@pytest.mark.sizes("risk")
@pytest.mark.parametrize("mode", MODES)
def test_solve_risk(benchmark: Any, n_loans: int, mode: str) -> None:
    problem = risk_problem(n_loans)
    result = _timed(benchmark, n_loans, solve, problem, mode)
    assert result.verification.ok and result.risk is not None
    assert math.isfinite(result.objective)
    assert result.objective <= result.bound + 1e-6 * abs(result.bound)
    benchmark.extra_info.update(
        mode=mode, n_loans=n_loans, scenarios=len(result.risk.values),
        status=result.status.value, objective=result.objective, bound=result.bound,
        gap=result.gap, expected_value=result.risk.expected_value,
        tail_mean=result.risk.tail_mean, open_loans=int(result.solver.open_loans),
    )  # fmt: skip

"""Reference models: the allocation problem written plainly, to check and to beat.

:func:`naive_pulp_model` is the model as a newcomer writes it (one PuLP variable per
loan and channel in a Python loop, money in yuan): the floor the benchmarks measure
against, and an independent check of the optimum on small cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pulp

from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers.pulp_backend import variable_factory

__all__ = ["naive_pulp_model"]


def naive_pulp_model(problem: AllocationProblem, mode: str | None = None) -> Any:
    """The model as a newcomer writes it: the floor for the benchmarks.

    One variable per (loan, channel) pair in a Python loop (ineligible ones
    bounded to 0), every row an ``lpSum`` over a Python list of terms, money in
    CNY yuan (no scaling), maximising the plan's value.
    """
    mode = mode or problem.mode
    # LpInteger with bounds, not LpBinary: PuLP resets a binary's bounds to [0, 1].
    cat = pulp.LpInteger if mode == "whole_loan" else pulp.LpContinuous
    prob = pulp.LpProblem("naive_npl", pulp.LpMaximize)
    new_var = variable_factory(prob)
    n, m = problem.n_loans, problem.n_channels
    value, eligible = problem.value.tolist(), problem.eligible.tolist()
    block_cost, block_coef = problem.block_cost.tolist(), problem.rows.blocks.tolist()
    x = []
    for i in range(n):
        row = []
        for j in range(m):
            row.append(new_var(f"x_{i}_{j}", 0, 1 if eligible[i][j] else 0, cat))
        x.append(row)
    y = [
        new_var(f"y_{b}", 0, 1, cat if block.integer else pulp.LpContinuous)
        for b, block in enumerate(problem.blocks)
    ]
    prob += pulp.lpSum(
        [value[i][j] * x[i][j] for i in range(n) for j in range(m)]
        + [block_cost[b] * y[b] for b in range(len(y))]
    )
    for i in range(n):
        prob += pulp.lpSum([x[i][j] for j in range(m)]) == 1, f"loan_{i}"
    rows = problem.rows
    matrix = rows.matrix.tocsr()
    for k in range(len(rows)):
        a, b = matrix.indptr[k], matrix.indptr[k + 1]
        expr = pulp.lpSum(
            [
                coef * x[c // m][c % m]
                for c, coef in zip(
                    matrix.indices[a:b].tolist(), matrix.data[a:b].tolist(), strict=True
                )
            ]
            + [block_coef[k][j] * y[j] for j in range(len(y))]
        )
        if np.isfinite(rows.lower[k]):
            prob += expr >= float(rows.lower[k]), f"row_{k}_lo"
        if np.isfinite(rows.upper[k]):
            prob += expr <= float(rows.upper[k]), f"row_{k}_hi"
    return prob

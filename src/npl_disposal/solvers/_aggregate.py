"""The tail model's LP over groups of loans, the groups split until none is mispriced.

With the tail model every loan's best channel depends on the prices of the (channel,
segment) aggregates, which move with the scenarios that tie at the tail's edge. A
random tenth of the loans prices them poorly (its aggregates sit near other kinks of
the tail mean than the portfolio's do): a third of the loans came out mispriced, and
the restricted LPs that sorted them out held 20,000 loans. Here every loan takes part
from the start, in groups of loans alike at the current prices: the same eligible
channels, segment, best and second-best channel and quantile of the gap between them
per yuan of balance. Every loan of a group takes the group's shares, so a group's
columns and values are its loans' sums and the grouped LP is the portfolio's LP with
more constraints: its plans are the portfolio's plans, its rows hold the whole
portfolio's usage. Its prices then price every loan; those mispriced are grouped
finer, then alone, and the grouped LP solved again (benchmarks/README.md, design
measurements).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from npl_disposal._grid import best_two, row_max
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers._outcome import Outcome, plan_value

__all__ = [
    "GAP_GROUPS",
    "ROUNDS",
    "group_problem",
    "loan_groups",
    "segment_keys",
    "solve_by_groups",
]

#: Quantiles of the best-to-second gap (per yuan of balance) that split a group.
GAP_GROUPS = 48
#: Most rounds of grouping, solving and splitting before the plain pricing loop takes over.
ROUNDS = 12
#: A share below this is no share (a loan "held" on an option).
SHARE_TOL = 1e-9


def solve_by_groups(
    problem: AllocationProblem,
    duals: np.ndarray,
    deadline: float,
    inner: Callable[[AllocationProblem, np.ndarray, float], Outcome],
    near: int,
    fix_blocks: np.ndarray | None = None,
) -> tuple[Outcome | None, np.ndarray]:
    """The LP optimum over groups of loans, the groups split until no member is mispriced.

    Each round groups the loans alike at ``duals`` (a loan mispriced once more finely,
    the ``near`` closest to a tie and a loan mispriced twice alone), solves that
    restricted LP with ``inner(groups, duals, seconds left)`` and prices every loan at
    its duals. When every loan's shares sit on its best options the plan is optimal for
    the portfolio's LP (complementary slackness), with the Lagrangian bound at those
    prices. Returns ``None`` (and the last prices) when the rounds run out or a grouped
    LP does not solve.
    """
    from npl_disposal.solvers._pricing import TIE_TOL, cheapest, lagrangian_bound, reduced_values

    start, n = time.perf_counter(), problem.n_loans
    single = np.zeros(n, dtype=bool)
    fine = np.zeros(n, dtype=bool)  # mispriced once: grouped finer; twice: single
    segment = segment_keys(problem)
    iterations = 0
    reduced = reduced_values(problem, duals)
    for _ in range(ROUNDS):
        left = deadline - time.perf_counter()
        if left <= 0.05:
            break
        best, top, runner = best_two(reduced)
        single[cheapest((top - runner) / np.maximum(problem.balance, 1.0), near)] = True
        key = _group_keys(problem, reduced, best, top - runner, segment, fine)
        group = _with_singles(key, single)
        del reduced
        outcome = inner(group_problem(problem, group), duals, left)
        if outcome.status != "optimal":
            break
        iterations += outcome.iterations
        duals, shares = outcome.duals, outcome.shares[group]
        reduced = reduced_values(problem, duals)
        wrong = _mispriced(reduced, shares, TIE_TOL / MONEY_SCALE)
        if not wrong.any():
            bound = lagrangian_bound(problem, duals, reduced, fix_blocks=fix_blocks)
            return replace(
                outcome, shares=shares, objective=plan_value(problem, shares, outcome.y),
                bound=bound, iterations=iterations, free_loans=int(single.sum()), free=single,
                seconds={"total": time.perf_counter() - start}, lp=None, sample=None,
            ), duals  # fmt: skip
        single |= wrong & fine
        fine |= wrong
    return None, duals


def _with_singles(key: np.ndarray, single: np.ndarray) -> np.ndarray:
    """Group numbers from ``key``, every loan of ``single`` in a group of its own."""
    key = key.copy()
    top = int(key.max(initial=0)) + 1
    key[single] = top + np.arange(int(single.sum()))
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def _mispriced(reduced: np.ndarray, shares: np.ndarray, tolerance: float) -> np.ndarray:
    """Loans with a share on an option worse than their best by more than ``tolerance``."""
    loss = row_max(reduced)[:, None] - reduced
    held = shares > SHARE_TOL
    return (held & (loss > tolerance)).any(axis=1)


def loan_groups(problem: AllocationProblem, duals: np.ndarray) -> np.ndarray:
    """Each loan's group (0, 1, ...) of loans alike at ``duals``."""
    from npl_disposal.solvers._pricing import reduced_values

    reduced = reduced_values(problem, duals)
    best, top, runner = best_two(reduced)
    key = _group_keys(problem, reduced, best, top - runner, segment_keys(problem))
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def group_problem(problem: AllocationProblem, group: np.ndarray) -> AllocationProblem:
    """The problem over groups of loans (``group``: each loan's, 0, 1, ... with none empty).

    A group's columns, values and balance are its loans' sums: a plan of the groups,
    each loan taking its group's shares, is a plan of the portfolio with the same rows
    and value.
    """
    n, m = problem.n_loans, problem.n_channels
    k = int(group.max()) + 1
    cells = (group[:, None] * m + np.arange(m)).ravel()
    member = sp.csc_matrix((np.ones(n * m), (np.arange(n * m), cells)), shape=(n * m, k * m))
    eligible = np.zeros((k, m), dtype=bool)
    eligible[group] = problem.eligible
    first = np.full(k, n)
    np.minimum.at(first, group, np.arange(n))
    arrays = {
        "loan_ids": problem.loan_ids[first],
        "balance": np.bincount(group, problem.balance, minlength=k),
        "branch_index": problem.branch_index[first],
        "inclusive": problem.inclusive[first],
        "value": _sums(group, problem.value, k),
        "pnl": _sums(group, problem.pnl, k),
        "derecognised": _sums(group, problem.derecognised, k),
        "offered": eligible,
        "eligible": eligible,
    }
    rows = replace(problem.rows, matrix=sp.csc_matrix(problem.rows.matrix @ member))
    return replace(problem, **arrays, rows=rows)


def _sums(group: np.ndarray, grid: np.ndarray, k: int) -> np.ndarray:
    """Per-group column sums of a loans x channels ``grid``."""
    return np.stack([np.bincount(group, grid[:, j], minlength=k) for j in range(grid.shape[1])],
                    axis=1)  # fmt: skip


def _group_keys(
    problem: AllocationProblem,
    reduced: np.ndarray,
    best: np.ndarray,
    gap: np.ndarray,
    segment: np.ndarray,
    fine: np.ndarray | None = None,
) -> np.ndarray:
    """Each loan's group: eligible channels, segment, best and second channel, gap quantile.

    Loans of mask ``fine`` are grouped finer: in four times as many quantiles of their
    own gaps. (Splitting them by branch as well made 1M loans' groups a third more and
    the LP twice as slow: benchmarks/README.md, design measurements.)
    """
    n, m = problem.n_loans, problem.n_channels
    second = np.where(problem.eligible, reduced, -np.inf)
    second[np.arange(n), best] = -np.inf
    runner = second.argmax(axis=1)
    per_yuan = np.where(np.isfinite(gap), gap / np.maximum(problem.balance, 1.0), np.inf)
    pattern = problem.eligible.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
    key = _combine(pattern, (segment + 1, len(problem.rows) + 1), (best, m),
                   (runner, m), (_quantile(per_yuan, GAP_GROUPS), GAP_GROUPS + 1))  # fmt: skip
    if fine is not None and fine.any():
        finer = 4 * GAP_GROUPS
        bucket = np.zeros(n, dtype=np.int64)
        bucket[fine] = _quantile(per_yuan[fine], finer) + 1
        key = _combine(key, (bucket, finer + 2))
    return key


def _quantile(values: np.ndarray, count: int) -> np.ndarray:
    """Each value's quantile group among the finite ``values`` (0 .. ``count``; inf last)."""
    finite = values[np.isfinite(values)]
    cuts = np.linspace(0, 1, count + 1)[1:-1]
    edges = np.quantile(finite, cuts) if finite.size else np.zeros(0)
    return np.searchsorted(edges, values).astype(np.int64)


def _combine(first: np.ndarray, *parts: tuple[np.ndarray, int]) -> np.ndarray:
    """One integer key from ``first`` and (part, number of values) pairs."""
    key = first.astype(np.int64)
    for part, size in parts:
        key = key * size + part
    return key


def segment_keys(problem: AllocationProblem) -> np.ndarray:
    """Each loan's segment as a number, or -1 without the tail model's aggregate rows.

    The aggregate row (one per channel and segment) of the loan's first option that has
    one: with the eligible channels alike, loans alike in it share their segment.
    """
    rows, m = problem.rows, problem.n_channels
    is_aggregate = np.array([r == "risk.aggregate" for r in rows.rule], dtype=bool)
    out = np.full(problem.n_loans, -1, dtype=np.int64)
    if not is_aggregate.any():
        return out
    matrix = rows.matrix
    for channel in range(m - 1, -1, -1):  # the first channel's row wins, written last
        cols = np.arange(problem.n_loans) * m + channel
        start, stop = matrix.indptr[cols], matrix.indptr[cols + 1]
        for step in range(int((stop - start).max(initial=0))):
            at = np.flatnonzero(start + step < stop)
            row = matrix.indices[start[at] + step]
            hit = is_aggregate[row]
            out[at[hit]] = row[hit]
    return out

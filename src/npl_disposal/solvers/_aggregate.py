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
portfolio's usage. Its prices then price every loan; those mispriced leave their
groups, grouped finer, then alone, and the grouped LP is solved again
(benchmarks/README.md, design measurements).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from npl_disposal._grid import best_two, row_max
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers._outcome import Outcome, plan_value

__all__ = [
    "GAP_GROUPS",
    "ROUNDS",
    "Grouping",
    "group_problem",
    "loan_groups",
    "segment_keys",
    "solve_by_groups",
    "split_groups",
]

#: Quantiles of the best-to-second gap (per yuan of balance) that split a group.
GAP_GROUPS = 48
#: Most rounds of grouping, solving and splitting before the plain pricing loop takes over.
ROUNDS = 12
#: A share below this is no share (a loan "held" on an option).
SHARE_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Grouping:
    """Each loan's group (``group``), the problem over the groups, the loans alone in one."""

    group: np.ndarray
    problem: AllocationProblem
    single: np.ndarray


def solve_by_groups(
    problem: AllocationProblem,
    duals: np.ndarray,
    deadline: float,
    inner: Callable[[AllocationProblem, np.ndarray, float], Outcome],
    fix_blocks: np.ndarray | None = None,
    groups: Grouping | None = None,
) -> tuple[Outcome | None, np.ndarray]:
    """The LP optimum over groups of loans, the groups split until no member is mispriced.

    The first round groups the loans alike at ``duals``. Each round solves that
    restricted LP with ``inner(groups, duals, seconds left)`` and prices every loan at
    its duals; the loans mispriced leave their groups for new ones of loans alike at
    those prices (more finely than at first; a loan mispriced twice alone), the others
    stay (:func:`split_groups`). No loan is alone for being near a tie: 3,000 such
    loans a round made the LPs larger and 1M loans 1.6 times slower; regrouping every
    loan each round, or starting a round's LP with its new groups in it, was slower
    too (benchmarks/README.md, design measurements). When every loan's shares sit on
    its best options the plan is optimal for the portfolio's LP (complementary
    slackness), with the Lagrangian bound at those prices (the outcome's ``groups``
    the last grouping). ``groups`` (of the same loans, e.g. solved before with other
    on/off levels) replaces the first round's grouping. Returns ``None`` (and the
    last prices) when the rounds run out or a grouped LP does not solve.
    """
    from npl_disposal.solvers._pricing import TIE_TOL, lagrangian_bound, reduced_values

    start, n = time.perf_counter(), problem.n_loans
    single = np.zeros(n, dtype=bool) if groups is None else groups.single.copy()
    fine = np.zeros(n, dtype=bool)  # mispriced once: grouped finer; twice: single
    moved = np.zeros(n, dtype=bool)  # loans that leave their group this round
    segment = segment_keys(problem)
    iterations = 0
    reduced = reduced_values(problem, duals)
    group, grouped = np.zeros(0, dtype=np.int64), problem
    if groups is not None:
        group, grouped = groups.group, groups.problem
    for _ in range(ROUNDS):
        left = deadline - time.perf_counter()
        if left <= 0.05:
            break
        if group.size == 0:
            best, top, runner = best_two(reduced)
            key = _group_keys(problem, reduced, best, top - runner, segment)
            group = _with_singles(key, single)
            grouped = group_problem(problem, group)
        elif moved.any():
            at = np.flatnonzero(moved)
            best, top, runner = best_two(reduced)
            key = _group_keys(problem, reduced, best, top - runner, segment, fine, at)
            group, grouped = split_groups(problem, group, grouped, at,
                                          _with_singles(key, single[at]))  # fmt: skip
        del reduced
        outcome = inner(grouped, duals, left)
        if outcome.status != "optimal":
            break
        iterations += outcome.iterations
        duals, shares = outcome.duals, outcome.shares[group]
        reduced = reduced_values(problem, duals)
        moved = _mispriced(reduced, shares, TIE_TOL / MONEY_SCALE)
        if not moved.any():
            bound = lagrangian_bound(problem, duals, reduced, fix_blocks=fix_blocks)
            return replace(
                outcome, shares=shares, objective=plan_value(problem, shares, outcome.y),
                bound=bound, iterations=iterations, free_loans=int(single.sum()), free=single,
                seconds={"total": time.perf_counter() - start}, lp=None, sample=None,
                groups=Grouping(group, grouped, single),
            ), duals  # fmt: skip
        single |= moved & fine
        fine |= moved
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
    arrays, matrix = _group_sums(problem, None, group)
    return replace(problem, **arrays, rows=replace(problem.rows, matrix=matrix))


def split_groups(
    problem: AllocationProblem,
    group: np.ndarray,
    grouped: AllocationProblem,
    loans: np.ndarray,
    local: np.ndarray,
) -> tuple[np.ndarray, AllocationProblem]:
    """Loans ``loans`` (ascending) moved out of their groups into new ones (``local``: 0, 1...).

    The new grouping and its problem (as :func:`group_problem` makes it). Only the
    groups the loans leave are summed again, with the new ones: between rounds a few
    loans move, out of groups that hold a fifth of the loans. Untouched groups come
    first, in their order; then those the loans left; then the new ones.
    """
    k, m = grouped.n_loans, problem.n_channels
    touched = np.zeros(k, dtype=bool)
    touched[group[loans]] = True
    before = group.copy()  # the moved loans in new groups numbered from k
    before[loans] = k + local
    total = k + int(local.max(initial=-1)) + 1
    redo = np.concatenate([touched, np.ones(total - k, dtype=bool)])
    redo &= np.bincount(before, minlength=total) > 0  # a group the loans all left is gone
    kept, summed = np.flatnonzero(~touched), np.flatnonzero(redo)
    renumber = np.full(total, -1, dtype=np.int64)
    renumber[kept] = np.arange(kept.size)
    renumber[summed] = kept.size + np.arange(summed.size)
    members = np.flatnonzero(redo[before])
    new = renumber[before]
    arrays, matrix = _group_sums(problem, members, new[members] - kept.size)
    merged: dict[str, Any] = {
        name: np.concatenate([getattr(grouped, name)[kept], part]) for name, part in arrays.items()
    }
    cells = (kept[:, None] * m + np.arange(m)).ravel()
    matrix = sp.hstack([grouped.rows.matrix[:, cells], matrix], format="csc")
    matrix.sort_indices()  # as group_problem's: each column's rows in order
    return new, replace(problem, **merged, rows=replace(problem.rows, matrix=matrix))


def _group_sums(
    problem: AllocationProblem, loans: np.ndarray | None, group: np.ndarray
) -> tuple[dict[str, Any], sp.csc_matrix]:
    """Per-group arrays and row columns of ``loans`` (all when None) in groups ``group``.

    A member matrix with one entry per option (each loan's option to its group's)
    sums the columns; built by rows, it costs no sort.
    """
    m = problem.n_channels
    k = int(group.max(initial=-1)) + 1
    size = group.size
    cells = (group[:, None] * m + np.arange(m)).ravel()
    member = sp.csr_matrix((np.ones(size * m), cells, np.arange(size * m + 1)),
                           shape=(size * m, k * m))  # fmt: skip
    at: slice | np.ndarray = slice(None) if loans is None else loans  # a view for all loans
    matrix = problem.rows.matrix
    if loans is not None:
        matrix = matrix[:, (loans[:, None] * m + np.arange(m)).ravel()]
    eligible = np.zeros((k, m), dtype=bool)
    eligible[group] = problem.eligible[at]
    first = np.full(k, size)
    np.minimum.at(first, group, np.arange(size))
    index = first if loans is None else loans[first]

    def sums(grid: np.ndarray) -> np.ndarray:
        return np.bincount(cells, grid[at].ravel(), minlength=k * m).reshape(k, m)

    arrays = {
        "loan_ids": problem.loan_ids[index],
        "balance": np.bincount(group, problem.balance[at], minlength=k),
        "branch_index": problem.branch_index[index],
        "inclusive": problem.inclusive[index],
        "value": sums(problem.value),
        "pnl": sums(problem.pnl),
        "derecognised": sums(problem.derecognised),
        "offered": eligible,
        "eligible": eligible,
    }
    return arrays, sp.csc_matrix(matrix @ member)


def _group_keys(
    problem: AllocationProblem,
    reduced: np.ndarray,
    best: np.ndarray,
    gap: np.ndarray,
    segment: np.ndarray,
    fine: np.ndarray | None = None,
    at: np.ndarray | None = None,
) -> np.ndarray:
    """Each loan's group: eligible channels, segment, best and second channel, gap quantile.

    Loans of mask ``fine`` are grouped finer: in four times as many quantiles of their
    own gaps. (Splitting them by branch as well made 1M loans' groups a third more and
    the LP twice as slow: benchmarks/README.md, design measurements.) ``at``: only
    these loans' keys, the quantiles among them.
    """
    m = problem.n_channels
    some: slice | np.ndarray = slice(None) if at is None else at  # a view for all loans
    eligible, best, gap = problem.eligible[some], best[some], gap[some]
    second = np.where(eligible, reduced[some], -np.inf)
    second[np.arange(best.size), best] = -np.inf
    runner = second.argmax(axis=1)
    balance = problem.balance[some]
    per_yuan = np.where(np.isfinite(gap), gap / np.maximum(balance, 1.0), np.inf)
    pattern = eligible.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
    key = _combine(pattern, (segment[some] + 1, len(problem.rows) + 1), (best, m),
                   (runner, m), (_quantile(per_yuan, GAP_GROUPS), GAP_GROUPS + 1))  # fmt: skip
    if fine is not None and (fine := fine[some]).any():
        finer = 4 * GAP_GROUPS
        bucket = np.zeros(best.size, dtype=np.int64)
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


_SEGMENTS: weakref.WeakKeyDictionary[AllocationProblem, np.ndarray] = weakref.WeakKeyDictionary()


def segment_keys(problem: AllocationProblem) -> np.ndarray:
    """Each loan's segment as a number, or -1 without the tail model's aggregate rows.

    The aggregate row (one per channel and segment) of the loan's first option that has
    one: with the eligible channels alike, loans alike in it share their segment.
    Found once per problem (a plan's LPs with other on/off levels group it again).
    """
    known = _SEGMENTS.get(problem)
    if known is None:
        known = _SEGMENTS[problem] = _segment_rows(problem)
        known.flags.writeable = False  # shared by every caller
    return known


def _segment_rows(problem: AllocationProblem) -> np.ndarray:
    """:func:`segment_keys`, computed."""
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

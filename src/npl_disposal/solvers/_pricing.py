"""Exact LP optima by pricing: most loans fixed at their best channel, a few in the LP.

Every loan couples to the others only through a few budget rows and one tolerance row
per branch. For dual prices ``pi`` on those rows each loan's best channel is one
vectorised pass (:func:`reduced_values`), and the Lagrangian ``L(pi)`` is a certified
upper bound on both the LP and the whole-loan optimum (:func:`lagrangian_bound`).

:func:`solve_fractional` estimates prices on a sample, fixes each loan whose best
channel wins by a clear margin, solves the LP exactly on the loans near a tie, then
prices every fixed loan with the LP's duals; any loan whose fixed channel is no longer
best is freed and the LP solved again. When none is left, the restricted optimum is
optimal for the whole LP (complementary slackness).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from npl_disposal._grid import best_two, row_argmax, row_max
from npl_disposal.model.problem import AllocationProblem, loan_arrays
from npl_disposal.solvers._aggregate import Grouping, solve_by_groups
from npl_disposal.solvers._formulation import MONEY_SCALE, SLACK_TOL, GrowingLP, row_scale
from npl_disposal.solvers._highs import ArraySolution
from npl_disposal.solvers._outcome import Outcome, failed, plan_value

__all__ = [
    "SLACK_TOL",
    "TIE_TOL",
    "argmax_shares",
    "best_and_gap",
    "cheapest",
    "free_for_rows",
    "free_more",
    "lagrangian_bound",
    "plan_value",
    "price_weights",
    "reduced_values",
    "sample_duals",
    "sample_problem",
    "solve_fractional",
]

TIE_TOL = 1e-9  # scaled (CNY m): a thousandth of a yuan
#: The random sample that prices the tail model (groups refine its prices) is a
#: ``SAMPLE_SHARE``-th of the loans: up to 10,000, solved by the pricing loop; one of more
#: than 20,000 (above 500k loans) is itself solved by groups, up to 40,000.
GROUPED_SAMPLE, SAMPLE_BY_GROUPS, LARGE_SAMPLE, SAMPLE_SHARE = 10_000, 20_000, 40_000, 25
#: The pricing loop's sample and free loans inside a grouped LP (it starts from given prices;
#: 200 free groups rather than 1,500: 100k loans with 1,000 scenarios 3.2 s to 1.9 s, 1M 21 s
#: to 17 s, 300k alike; benchmarks/README.md, design measurements).
GROUP_SAMPLE, GROUP_FREE = 1000, 200


def price_weights(problem: AllocationProblem, duals: np.ndarray) -> np.ndarray:
    """Row prices in CNY yuan per natural unit from the model's scaled min-form duals.

    A price may only push against a finite limit, so wrongly signed round-off is
    cleared; any such prices give a valid Lagrangian bound.
    """
    rows = problem.rows
    weights = row_scale(problem) * duals / MONEY_SCALE
    weights[(weights > 0) & ~np.isfinite(rows.lower)] = 0.0
    weights[(weights < 0) & ~np.isfinite(rows.upper)] = 0.0
    return weights


def reduced_values(
    problem: AllocationProblem, duals: np.ndarray, phase_one: bool = False
) -> np.ndarray:
    """Reduced value (CNY yuan) of every option at the rows' prices; -inf if not eligible.

    ``v_im - sum_r lambda_r a_r,im`` for every loan and channel, over the priced rows only
    (:meth:`~npl_disposal.model.rows.ResourceRows.weighed`).
    """
    weights = price_weights(problem, duals)
    priced = problem.rows.weighed(weights).reshape(problem.eligible.shape)
    if phase_one:
        priced[~problem.eligible] = -np.inf
        return priced
    return np.add(priced, problem.eligible_value, out=priced)


def lagrangian_bound(
    problem: AllocationProblem,
    duals: np.ndarray,
    reduced: np.ndarray,
    phase_one: bool = False,
    fix_blocks: np.ndarray | None = None,
    best: np.ndarray | None = None,
) -> float:
    """The Lagrangian ``L(pi)`` (CNY yuan): an upper bound on every feasible plan's value.

    It bounds the fractional and the whole-loan problem alike (with the on/off
    variables fixed to ``fix_blocks`` when given). ``best`` is each loan's best
    reduced value when known (else the row maximum of ``reduced``).
    """
    rows = problem.rows
    weights = price_weights(problem, duals)
    pos, neg = np.maximum(weights, 0.0), np.minimum(weights, 0.0)
    rhs = -(pos @ np.where(pos > 0, rows.lower, 0.0)) - (neg @ np.where(neg < 0, rows.upper, 0.0))
    cost = np.zeros(len(problem.blocks)) if phase_one else problem.block_cost
    block = cost + rows.blocks.T @ weights
    free = np.ones(block.size, dtype=bool) if fix_blocks is None else np.isnan(fix_blocks)
    level = np.where(free, block > 0, np.nan_to_num(fix_blocks if fix_blocks is not None else 0))
    blocks = float(block @ level)
    top = row_max(reduced) if best is None else best
    return float(top.sum() + rhs + blocks)


def argmax_shares(reduced: np.ndarray, best: np.ndarray | None = None) -> np.ndarray:
    """Every loan wholly on its best option (``best``: its position, when known)."""
    shares = np.zeros(reduced.shape)
    best = row_argmax(reduced) if best is None else best
    shares[np.arange(reduced.shape[0]), best] = 1.0
    return shares


def best_and_gap(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each loan's best option, and how much it beats the second best (inf if none)."""
    best, top, second = best_two(reduced)
    gap = top - second
    return best, np.where(np.isfinite(gap), gap, np.inf)


def sample_duals(
    problem: AllocationProblem,
    size: int,
    rng: np.random.Generator,
    deadline: float,
    phase_one: bool,
    fix_blocks: np.ndarray | None = None,
    sample: int = 4000,
    free_target: int = 3000,
    grouped: bool = True,
) -> tuple[np.ndarray, tuple[AllocationProblem, Outcome] | None]:
    """Prices from the exact LP of a random sample, its budgets scaled to the sample.

    The sample problem is solved by this same method, so a portfolio is priced
    from a tenth of its loans, that tenth from a tenth of it, and so on: the
    prices' sampling error, and with it the loans left near a tie, shrinks as
    the square root of the sample. The sample problem and its outcome come
    back too, to price the same loans again with the on/off blocks fixed.
    """
    n = problem.n_loans
    pick = np.zeros(n, dtype=bool)
    pick[rng.choice(n, size=min(size, n), replace=False)] = True
    sub = sample_problem(problem, pick)
    left = deadline - time.perf_counter()
    outcome = solve_fractional(
        sub,
        left,
        phase_one=phase_one,
        fix_blocks=fix_blocks,
        seed=int(rng.integers(1 << 30)),
        sample=sample,
        free_target=free_target,
        grouped=grouped,
    )
    if outcome.status != "optimal":
        return np.zeros(len(problem.rows)), None
    return outcome.duals, (sub, outcome)


def sample_problem(problem: AllocationProblem, pick: np.ndarray) -> AllocationProblem:
    """The problem restricted to loans ``pick``, each row's limits scaled to the sample."""
    rows, m = problem.rows, problem.n_channels
    loans = np.flatnonzero(pick)
    columns = (loans[:, None] * m + np.arange(m)).ravel()  # ascending: a fast column gather
    matrix = sp.csc_matrix(rows.matrix[:, columns])
    factor = _sample_factor(problem, matrix, pick.mean())
    sub_rows = replace(
        rows,
        matrix=matrix,
        blocks=rows.blocks * factor[:, None],
        lower=np.where(np.isfinite(rows.lower), np.nan_to_num(rows.lower) * factor, rows.lower),
        upper=np.where(np.isfinite(rows.upper), np.nan_to_num(rows.upper) * factor, rows.upper),
    )
    share = float(pick.mean())
    return replace(
        problem,
        **loan_arrays(problem, loans),
        rows=sub_rows,
        blocks=tuple(replace(b, fixed_cost=b.fixed_cost * share) for b in problem.blocks),
    )


def _sample_factor(problem: AllocationProblem, sample: sp.csc_matrix, share: float) -> np.ndarray:
    """Share of each row's reach (sum of |coefficients|) that the ``sample`` columns hold.

    ``share`` (the sample's share of loans) stands in for rows that reach nothing.
    """
    total = problem.rows.reach
    k = total.size
    picked = np.bincount(sample.indices, weights=np.abs(sample.data), minlength=k)
    return np.divide(picked, total, out=np.full(k, share), where=total > 0)




def solve_fractional(
    problem: AllocationProblem,
    time_limit: float | None = None,
    sample: int = 4000,
    free_target: int = 3000,
    seed: int = 0,
    phase_one: bool = False,
    progress: Callable[[str], None] | None = None,
    fix_blocks: np.ndarray | None = None,
    prices: np.ndarray | None = None,
    warm: Outcome | None = None,
    grouped: bool = True,
    groups: Grouping | None = None,
) -> Outcome:
    """Exact LP optimum by pricing and restricted LPs (see the module docstring).

    ``fix_blocks`` fixes the on/off variables; ``prices`` (duals of an earlier
    solve) replace the sample estimate; ``warm`` (an earlier outcome) also gives
    the plan and the open loans to start from, and its restricted LP (grown
    further in place) when it has one and the on/off variables are fixed.
    ``phase_one`` drops the values: the least total miss of the rows. With the tail
    model a large problem is solved over groups of its loans first
    (:func:`~npl_disposal.solvers._aggregate.solve_by_groups`, from ``groups`` when
    given) unless ``grouped`` is off.
    """
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    by_groups = grouped and _by_groups(problem, phase_one, warm, sample + free_target)
    duals, free, sampled = _first_prices(
        problem, deadline, sample, free_target, seed, phase_one, fix_blocks, prices, warm,
        by_groups,
    )
    if by_groups:

        def inner(over: AllocationProblem, at: np.ndarray, left: float) -> Outcome:
            return solve_fractional(over, left, GROUP_SAMPLE, GROUP_FREE, seed,
                                    fix_blocks=fix_blocks, prices=at, grouped=False)  # fmt: skip

        outcome, duals = solve_by_groups(problem, duals, deadline, inner, fix_blocks, groups)
        if outcome is not None:
            return replace(outcome, sample=sampled,
                           seconds={"total": time.perf_counter() - start})  # fmt: skip
    loop = _PricingLoop.start(problem, duals, free, free_target, phase_one, fix_blocks, warm,
                              progress)  # fmt: skip
    seconds = {"prices": time.perf_counter() - start}
    sol = loop.run(deadline)
    if sol.status != "optimal":
        return loop.failure(sol, seconds)
    seconds["total"] = time.perf_counter() - start
    return loop.outcome(sol, seconds, sampled)


def _by_groups(
    problem: AllocationProblem, phase_one: bool, warm: Outcome | None, whole: int
) -> bool:
    """Whether the LP is solved over groups of loans first (the tail model, a large problem)."""
    return problem.has_tail and not phase_one and warm is None and problem.n_loans > whole


def _first_prices(
    problem: AllocationProblem,
    deadline: float,
    sample: int,
    free_target: int,
    seed: int,
    phase_one: bool,
    fix_blocks: np.ndarray | None,
    prices: np.ndarray | None,
    warm: Outcome | None,
    grouped: bool = False,
) -> tuple[np.ndarray, np.ndarray, tuple[AllocationProblem, Outcome] | None]:
    """The prices to start from, the loans free from the start, and the sample priced.

    A problem small enough is solved whole (every loan free, no prices needed).
    ``grouped``: groups of loans refine the prices next, so a smaller sample does.
    """
    n = problem.n_loans
    free = np.zeros(n, dtype=bool)
    if n <= sample + free_target:
        free[:] = True
        return np.zeros(len(problem.rows)), free, None
    if warm is not None:
        return warm.duals, free, None
    if prices is not None:
        return prices, free, None
    rng = np.random.default_rng(seed)
    # Groups refine the tail model's prices: a 25th of the loans prices them well enough;
    # 1M loans' 40,000, solved by groups, leave half the loans mispriced that 10,000 did
    # (benchmarks/README.md, design measurements).
    size, by_groups = max(sample, n // 10), False
    if grouped:
        size = max(sample, n // SAMPLE_SHARE)
        by_groups = size > SAMPLE_BY_GROUPS
        size = min(size, LARGE_SAMPLE if by_groups else GROUPED_SAMPLE)
    duals, sampled = sample_duals(problem, size, rng, deadline, phase_one, fix_blocks,
                                  sample=sample, free_target=free_target,
                                  grouped=by_groups)  # fmt: skip
    return duals, free, sampled


class _PricingLoop:
    """The restricted LP and the prices, passed back and forth until no fixed loan moves."""

    def __init__(
        self,
        problem: AllocationProblem,
        lp: GrowingLP,
        duals: np.ndarray,
        reduced: np.ndarray,
        switch_cost: np.ndarray | None,
        free_target: int,
        phase_one: bool,
        fix_blocks: np.ndarray | None,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.problem, self.lp, self.duals, self.reduced = problem, lp, duals, reduced
        self.switch_cost = switch_cost  # each loan's cost of leaving base (while base is best)
        self.phase_one, self.fix_blocks, self.progress = phase_one, fix_blocks, progress
        self.iterations, self.timed_out = 0, False
        # Let in a few thousand loans per pass; twice as many whenever the count of
        # mispriced loans did not halve (the prices are far off, e.g. after fixing blocks).
        self.step, self.last_wrong = free_target, 2**62

    @classmethod
    def start(
        cls,
        problem: AllocationProblem,
        duals: np.ndarray,
        free: np.ndarray,
        free_target: int,
        phase_one: bool,
        fix_blocks: np.ndarray | None,
        warm: Outcome | None,
        progress: Callable[[str], None] | None,
    ) -> _PricingLoop:
        """Every loan at its best channel at ``duals``; the near-ties (and ``free``) in the LP."""
        n = problem.n_loans
        reduced = reduced_values(problem, duals, phase_one)
        best, gap = best_and_gap(reduced)
        base = argmax_shares(reduced, best)
        switch_cost: np.ndarray | None = gap
        free[cheapest(gap / problem.balance, max(free_target, n // 200))] = True
        free |= gap * MONEY_SCALE <= TIE_TOL
        if warm is not None and warm.free is not None:
            free |= warm.free | (row_max(warm.shares) < 1.0)
            base = np.where(free[:, None], base, argmax_shares(warm.shares))
            switch_cost = None
        if warm is not None and warm.lp is not None and fix_blocks is not None:
            lp = warm.lp
            lp.fix_blocks(fix_blocks)
            lp.grow(free)
            switch_cost = None
        else:  # the grid becomes the LP's base, free rows cleared: only fixed loans' are read
            lp = GrowingLP(problem, free, base, phase_one, fix_blocks, start=base, own=True,
                           enforced=duals != 0)  # the rows the prices bind
        return cls(problem, lp, duals, reduced, switch_cost, free_target, phase_one, fix_blocks,
                   progress)  # fmt: skip

    def run(self, deadline: float) -> ArraySolution:
        """Solve, free loans, solve again until the LP's prices move no fixed loan."""
        lp = self.lp
        while True:
            self.iterations += 1
            sol = lp.solve(time_limit=max(deadline - time.perf_counter(), 0.05))
            if sol.status != "optimal":
                return sol
            short = lp.slack(sol.x)
            if time.perf_counter() > deadline:
                self.timed_out = True
                return sol
            if np.abs(short).max(initial=0.0) > SLACK_TOL and not lp.free.all():
                self._meet_rows(short, sol.seconds)
            elif not self._reprice(sol):
                return sol

    def _meet_rows(self, short: np.ndarray, seconds: float) -> None:
        """Free the fixed loans that can close the rows the restricted LP misses."""
        problem, lp = self.problem, self.lp
        free = lp.free.copy()
        added = free_for_rows(problem, free, lp.base, self.reduced, short / row_scale(problem),
                              self.switch_cost)  # fmt: skip
        if added == 0:  # no fixed loan can help: only the whole LP can settle it
            free[:] = True
        lp.grow(free)
        missed = ", ".join(f"{problem.rows.names[r]} {short[r]:.4g}" for r in np.flatnonzero(short))
        _report(self.progress, self.iterations, free, added, "to meet violated rows " + missed,
                seconds)  # fmt: skip

    def _reprice(self, sol: ArraySolution) -> bool:
        """Price the fixed loans at the LP's duals; free the mispriced. False if none is."""
        problem, lp = self.problem, self.lp
        free = lp.free.copy()
        self.duals = lp.resource_duals(sol.row_dual)
        self.reduced = reduced_values(problem, self.duals, self.phase_one)
        self.switch_cost = None
        chosen = np.take_along_axis(self.reduced, row_argmax(lp.base)[:, None], axis=1)[:, 0]
        loss = (row_max(self.reduced) - chosen) * MONEY_SCALE
        wrong = ~free & (loss > TIE_TOL)
        if not wrong.any():
            return False
        count = int(wrong.sum())
        self.step = self.step * 2 if count > self.last_wrong // 2 else self.step
        self.last_wrong = count
        free_more(free, wrong, loss, self.step, problem.balance)
        lp.grow(free)
        _report(self.progress, self.iterations, free, count, "repriced", sol.seconds)
        return True

    def failure(self, sol: ArraySolution, seconds: dict[str, float]) -> Outcome:
        """The outcome of a restricted LP that did not solve (``sol.status`` says why)."""
        lp = self.lp
        return replace(
            failed(self.problem, sol.status, sol.message, iterations=self.iterations,
                   free_loans=lp.n_free, free=lp.free, seconds=seconds),
            shares=lp.base,
            y=np.ones(len(self.problem.blocks)),
            duals=self.duals,
        )  # fmt: skip

    def outcome(
        self,
        sol: ArraySolution,
        seconds: dict[str, float],
        sampled: tuple[AllocationProblem, Outcome] | None,
    ) -> Outcome:
        """The LP optimum over every loan, its Lagrangian bound and the LP kept for reuse."""
        problem, lp = self.problem, self.lp
        shares = lp.shares(sol.x)
        y = lp.y(sol.x)
        shortfall = lp.slack(sol.x) / row_scale(problem)
        objective = -float(shortfall.sum()) if self.phase_one else plan_value(problem, shares, y)
        bound = lagrangian_bound(problem, self.duals, self.reduced, self.phase_one,
                                 self.fix_blocks)  # fmt: skip
        free = lp.free.copy()
        return Outcome(
            status="time_limit" if self.timed_out else "optimal",
            shares=shares,
            y=y,
            objective=objective,
            bound=bound,
            duals=self.duals,
            shortfall=shortfall,
            iterations=self.iterations,
            free_loans=int(free.sum()),
            free=free,
            seconds=seconds,
            lp=lp,
            sample=sampled,
        )


def _report(
    progress: Callable[[str], None] | None,
    iteration: int,
    free: np.ndarray,
    added: int,
    why: str,
    seconds: float,
) -> None:
    if progress is not None:
        progress(
            f"LP pass {iteration} ({seconds:.2f} s): {added:,} loans freed {why}; "
            f"{int(free.sum()):,} free"
        )


def free_for_rows(
    problem: AllocationProblem,
    free: np.ndarray,
    base: np.ndarray,
    reduced: np.ndarray,
    shortfall: np.ndarray,
    cost: np.ndarray | None = None,
) -> int:
    """Free the cheapest fixed loans able to close each violated row, twice over.

    A loan moved off its channel costs its reduced-value gap (``cost``, when
    known: the gap to the second best when ``base`` is the best at ``reduced``);
    it helps a row by the change in the row's coefficient. Loans are freed in
    order of cost per unit of help until their help covers twice the shortfall.
    """
    before = int(free.sum())
    current = row_argmax(base)
    idx = np.arange(problem.n_loans)
    if cost is None:
        others = reduced.copy()  # -inf where not eligible already
        others[idx, current] = -np.inf
        cost = reduced[idx, current] - row_max(others)
        del others
    for r in np.flatnonzero(shortfall != 0):
        unit = np.zeros(len(problem.rows))
        unit[r] = 1.0 if shortfall[r] > 0 else -1.0
        signed = np.asarray(problem.rows.matrix.T @ unit).reshape(reduced.shape)
        now = signed[idx, current]
        gain = row_max(signed, where=problem.eligible) - now
        ok = np.flatnonzero((~free) & (gain > 0))
        free[ok[_cheapest_cover(cost[ok] / gain[ok], gain[ok], 2.0 * abs(shortfall[r]))]] = True
    return int(free.sum()) - before


def _cheapest_cover(
    ratio: np.ndarray, gain: np.ndarray, need: float, first: int = 4096
) -> np.ndarray:
    """Positions of the lowest ``ratio`` whose ``gain`` adds up to ``need`` (one more).

    The few thousand cheapest are selected and sorted, four times as many while
    they fall short, instead of sorting every loan.
    """
    if ratio.size == 0:
        return np.zeros(0, dtype=np.intp)
    k = min(ratio.size, first)
    while True:
        some = cheapest(ratio, k)
        total = np.cumsum(gain[some])
        if k == ratio.size or total[-1] >= need:
            return some[: np.searchsorted(total, need) + 1]
        k = min(4 * k, ratio.size)


def free_more(
    free: np.ndarray,
    wrong: np.ndarray,
    loss: np.ndarray,
    limit: int,
    balance: np.ndarray,
) -> None:
    """Free the most mispriced loans, at most ``limit`` per pass.

    Capping the loans let in per pass keeps each restricted LP small while the
    prices settle (column generation's usual stabilisation); the grown model
    restarts from its last basis, so many small passes cost less than a few
    large ones (benchmarks/README.md, design measurements).
    Gaps are compared per yuan of balance, since most rows weigh a loan by its
    balance.
    """
    worst = np.flatnonzero(wrong)
    if worst.size > limit:
        worst = worst[np.argpartition(-loss[worst] / balance[worst], limit)[:limit]]
    free[worst] = True



def cheapest(cost: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest ``cost`` values, smallest first (ties by position)."""
    if count >= cost.size:
        return np.argsort(cost, kind="stable")
    head = np.argpartition(cost, count)[:count]
    return head[np.lexsort((head, cost[head]))]



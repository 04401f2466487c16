"""Whole-loan optima: the LP, then per on/off combination a repair and an exact MILP.

A basic LP optimum splits at most as many loans as there are rows. Those loans (and
the other near-ties) are repaired by a small exact MILP, giving a plan worth ``z``.
Reduced-cost fixing then proves that any better plan only uses options whose
reduced-value loss is below ``L(pi) - z``; the MILP over those options gives the
optimum and its bound. With on/off channels (bulk transfer, securitisation) each
on/off combination is its own LP. The combinations are visited best bound first:
every one starts with the Lagrangian bound at the relaxation's prices; the
highest is tightened by the prices of a small sample's LP with its blocks fixed
(any prices bound it), and a combination is solved over every loan only when its
tightened bound is still the highest. A schedule's windows make 2^windows
combinations, of which usually one or two are solved.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable

import numpy as np

from npl_disposal._grid import best_two, row_argmax, row_max
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE, restricted_model, shares_from
from npl_disposal.solvers._highs import run_highs
from npl_disposal.solvers._outcome import Outcome, plan_value
from npl_disposal.solvers._pricing import (
    SLACK_TOL,
    argmax_shares,
    cheapest,
    lagrangian_bound,
    price_weights,
    reduced_values,
    sample_duals,
    sample_problem,
    solve_fractional,
)

__all__ = [
    "block_levels",
    "combination_order",
    "combinations",
    "describe",
    "gap",
    "losses",
    "repair",
    "solve_whole_loan",
]

#: A plan found for one on/off combination: shares, block levels, value (CNY yuan).
Found = tuple[np.ndarray, np.ndarray, float]


def solve_whole_loan(
    problem: AllocationProblem,
    time_limit: float | None = None,
    mip_gap: float = 1e-6,
    max_free: int = 20000,
    progress: Callable[[str], None] | None = None,
    **lp_options: object,
) -> Outcome:
    """Whole-loan optimum: LP, then per on/off combination a repair and an exact MILP.

    The combination the LP points to (a block on wherever the LP uses it) is
    solved first. Every other combination is bounded by the Lagrangian at the LP
    prices with its closed channels removed; one that cannot beat the best plan
    is skipped, the others get their own LP, repair and reduced-cost fixing.

    With on/off blocks and loans enough to price on a sample, the relaxation of
    every loan is skipped: the sample's LP points to the combination and its
    prices bound the others (any prices give a valid Lagrangian bound). Only if
    that finds no plan is the full relaxation solved.
    """
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    if problem.switches.any() and not problem.has_tail:  # a sample prices the tail poorly
        priced = _sampled_relaxation(problem, deadline, lp_options)
        if priced is not None:
            outcome = _by_combination(problem, priced, start, deadline, mip_gap, max_free,
                                      progress, lp_options)  # fmt: skip
            if outcome.status != "no_solution" or time.perf_counter() > deadline:
                return outcome
    left = deadline - time.perf_counter()
    lp = solve_fractional(problem, left, progress=progress, **lp_options)  # type: ignore[arg-type]
    if lp.status != "optimal" or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > SLACK_TOL:
        return lp
    return _by_combination(problem, lp, start, deadline, mip_gap, max_free, progress, lp_options)


def _sampled_relaxation(
    problem: AllocationProblem, deadline: float, lp_options: dict[str, object]
) -> Outcome | None:
    """The relaxation priced on a sample only: its prices, on/off levels and Lagrangian bound.

    None when the problem is small enough to solve whole, or the sample's LP is
    not feasible (the full relaxation then decides).
    """
    sample = int(lp_options.get("sample", 4000))  # type: ignore[call-overload]
    free_target = int(lp_options.get("free_target", 3000))  # type: ignore[call-overload]
    n = problem.n_loans
    if n <= sample + free_target:
        return None
    rng = np.random.default_rng(int(lp_options.get("seed", 0)))  # type: ignore[call-overload]
    duals, sampled = sample_duals(problem, max(sample, n // 10), rng, deadline, False,
                                   sample=sample, free_target=free_target)  # fmt: skip
    if sampled is None:
        return None
    sub_lp = sampled[1]
    if np.abs(sub_lp.shortfall).max(initial=0.0) * MONEY_SCALE > SLACK_TOL:
        return None
    reduced = reduced_values(problem, duals)
    bound = lagrangian_bound(problem, duals, reduced)
    return Outcome(status="optimal", shares=argmax_shares(reduced), y=sub_lp.y,
                   objective=math.nan, bound=bound, duals=duals,
                   shortfall=np.zeros(len(problem.rows)), sample=sampled,
                   priced_only=True, reduced=reduced)  # fmt: skip



def _by_combination(
    problem: AllocationProblem,
    lp: Outcome,
    start: float,
    deadline: float,
    mip_gap: float,
    max_free: int,
    progress: Callable[[str], None] | None,
    lp_options: dict[str, object],
) -> Outcome:
    """The best whole-loan plan over the on/off combinations, from a relaxation ``lp``."""
    search = _Search(problem, lp, deadline, mip_gap, max_free, progress, lp_options)
    order = combination_order(problem.switches, lp.y)
    if len(order) > 1 and problem.has_tail:
        # With the tail model the relaxation's prices bound the other combinations loosely
        # and a sample's are far off: the combination the relaxation points to is solved
        # first (from the relaxation's prices), then the others best bound first.
        search.visit(0, order[0])
        search.best_first(order, skip_first=True)
    elif len(order) > 1:
        search.best_first(order)
    else:
        for i, combo in enumerate(order):
            search.visit(i, combo)
    return search.outcome(start)


def combination_order(switches: np.ndarray, y: np.ndarray) -> list[np.ndarray | None]:
    """The on/off combinations, the one the relaxation's levels ``y`` point to first."""
    nearest = np.where(switches, (y > 1e-9).astype(float), np.nan)
    others = [
        c
        for c in combinations(switches)
        if c is None or not np.array_equal(c, nearest, equal_nan=True)
    ]
    return [nearest, *others] if switches.any() else others


class _Search:
    """The combinations visited so far: the best plan, each one's bound, the LP behind it."""

    def __init__(
        self,
        problem: AllocationProblem,
        lp: Outcome,
        deadline: float,
        mip_gap: float,
        max_free: int,
        progress: Callable[[str], None] | None,
        lp_options: dict[str, object],
    ) -> None:
        self.problem, self.lp, self.deadline, self.mip_gap = problem, lp, deadline, mip_gap
        self.max_free, self.progress, self.lp_options = max_free, progress, lp_options
        self.best: Found | None = None
        self.bounds: list[float] = []
        self.work = lp  # the LP behind the best plan, for its passes and open loans
        self._at_duals: np.ndarray | None = None
        self._bounding: tuple[AllocationProblem, Outcome] | None = None
        # The relaxation's own sample solved with the blocks fixed at a combination: the
        # combination and that LP, which both tightens its bound and starts its LP.
        self._sample_fixed: tuple[np.ndarray | None, Outcome] | None = None

    def at_duals(self) -> np.ndarray:
        """The reduced values at the relaxation's prices, computed once (read only).

        A relaxation priced on a sample has computed them already.
        """
        if self._at_duals is None:
            known = self.lp.reduced
            self._at_duals = known if known is not None else reduced_values(self.problem,
                                                                             self.lp.duals)
        return self._at_duals

    def visit(self, i: int, combo: np.ndarray | None) -> None:
        """Bound combination ``combo``; solve it unless the bound shows it cannot win."""
        # The first combination's own LP bounds it; the others are first bounded at the
        # relaxation's prices, which may spare solving them.
        estimate = (
            _combo_bound(self.problem, self.lp.duals, combo, self.at_duals)
            if combo is not None and i > 0
            else math.inf
        )
        best = self.best
        prune = best is not None and (estimate <= best[2] or gap(best[2], estimate) <= self.mip_gap)
        if i > 0 and (prune or time.perf_counter() > self.deadline):
            self.bounds.append(estimate)
            return
        self.solve(combo, estimate)

    def solve(
        self, combo: np.ndarray | None, estimate: float, prices: np.ndarray | None = None
    ) -> None:
        """Solve combination ``combo`` over every loan (``prices``: where its LP starts)."""
        best = self.best
        fixed = self._sample_fixed
        sample_lp = fixed[1] if fixed is not None and fixed[0] is combo else None
        found, bound, solved = _solve_combo(self.problem, self.lp, combo, best, self.deadline,
                                            self.mip_gap, self.max_free, self.progress,
                                            self.lp_options, prices, sample_lp)  # fmt: skip
        self.bounds.append(min(bound, estimate))
        if found is not None and (best is None or found[2] > best[2]):
            self.best, self.work = found, solved

    def cannot_win(self, bound: float) -> bool:
        """Whether a combination bounded by ``bound`` (CNY yuan) cannot beat the best plan.

        A bound of minus infinity: some loan has no channel open, no plan at all.
        """
        best = self.best
        if bound == -math.inf:
            return True
        return best is not None and (bound <= best[2] or gap(best[2], bound) <= self.mip_gap)

    def best_first(self, order: list[np.ndarray | None], skip_first: bool = False) -> None:
        """Visit the combinations best bound first, tightening a bound before solving.

        A combination whose bound cannot beat the best plan found is not solved;
        since the bounds are visited in falling order, neither is any after it.
        ``skip_first``: the first combination is already visited.
        """
        # Where the relaxation's own levels are whole, its prices already bound the
        # combination they point to (order[0]) as tightly as a sample's LP would.
        levels = self.lp.y[self.problem.switches]
        whole = bool(np.all(np.abs(levels - np.round(levels)) < 1e-6))
        queue = [
            (-_combo_bound(self.problem, self.lp.duals, combo, self.at_duals), i, i == 0 and whole)
            for i, combo in enumerate(order)
            if i > 0 or not skip_first
        ]
        heapq.heapify(queue)
        prices: dict[int, np.ndarray] = {}
        while queue:
            bound, i, tight = -queue[0][0], queue[0][1], queue[0][2]
            if self.cannot_win(bound) or time.perf_counter() > self.deadline:
                break
            heapq.heappop(queue)
            if tight:
                self.solve(order[i], bound, prices.get(i))
                continue
            tighter, found = self.tighten(order[i], own=i == 0)
            if found is not None:
                prices[i] = found
            heapq.heappush(queue, (-min(bound, tighter), i, True))
        self.bounds.extend(-q[0] for q in queue)

    def tighten(
        self, combo: np.ndarray | None, own: bool = False
    ) -> tuple[float, np.ndarray | None]:
        """A bound on ``combo`` at the prices of a small sample's LP with its blocks fixed.

        Also those prices, to start the combination's LP over every loan (None
        when the sample's LP has no optimum: the bound is then infinite).

        ``own``: ``combo`` is the one the relaxation points to, the likeliest to be
        solved. When the relaxation was priced on a sample, that sample's LP with the
        blocks fixed is what the combination's LP starts from (:func:`_combo_lp`); solved
        here once, it bounds the combination as well and is kept for its LP, sparing a
        second sample and its LP (about 0.05 s at 100,000 loans).
        """
        if own and self.lp.sample is not None:
            priced = _sample_lp(self.lp, combo, self.deadline, self.lp_options)
            self._sample_fixed = combo, priced
            if priced.status != "optimal":
                return math.inf, None
            return _combo_bound(self.problem, priced.duals, combo), priced.duals
        sub, base = self.bounding_sample()
        left = self.deadline - time.perf_counter()
        priced = solve_fractional(sub, left, fix_blocks=combo, warm=base)
        if priced.status != "optimal":
            return math.inf, None
        return _combo_bound(self.problem, priced.duals, combo), priced.duals

    def bounding_sample(self) -> tuple[AllocationProblem, Outcome]:
        """A sample of loans small enough to solve whole, with its relaxation's LP.

        A problem no larger than the sample is its own sample: the bound is then
        the combination's LP bound.
        """
        if self._bounding is None:
            options = self.lp_options
            size = int(options.get("sample", 4000))  # type: ignore[call-overload]
            if self.problem.n_loans <= size and not self.lp.priced_only:
                self._bounding = self.problem, self.lp
                return self._bounding
            rng = np.random.default_rng(int(options.get("seed", 0)) + 1)  # type: ignore[call-overload]
            pick = np.zeros(self.problem.n_loans, dtype=bool)
            pick[rng.choice(pick.size, size=min(size, pick.size), replace=False)] = True
            sub = sample_problem(self.problem, pick)
            self._bounding = sub, solve_fractional(sub, self.deadline - time.perf_counter())
        return self._bounding

    def outcome(self, start: float) -> Outcome:
        """The best plan with the bound over every combination (``no_solution`` if none)."""
        lp, work = self.lp, self.work
        seconds = dict(work.seconds, total=time.perf_counter() - start)
        if self.best is None:
            return Outcome(status="no_solution", shares=lp.shares, y=lp.y, objective=math.nan,
                           bound=lp.bound, duals=lp.duals, shortfall=lp.shortfall,
                           iterations=lp.iterations, free_loans=lp.free_loans, free=lp.free,
                           seconds=seconds, message="no whole-loan plan found")  # fmt: skip
        shares, y, value = self.best
        bound = max(value, min(lp.bound, max(self.bounds)))
        status = "optimal" if gap(value, bound) <= self.mip_gap else "feasible"
        return Outcome(status=status, shares=shares, y=y, objective=value, bound=bound,
                       duals=lp.duals, shortfall=np.zeros(len(self.problem.rows)),
                       iterations=work.iterations, free_loans=work.free_loans, free=work.free,
                       seconds=seconds)  # fmt: skip


def _combo_bound(
    problem: AllocationProblem,
    duals: np.ndarray,
    combo: np.ndarray | None,
    at_duals: Callable[[], np.ndarray] | None = None,
) -> float:
    """Lagrangian bound (CNY yuan) with the on/off variables fixed at ``combo``.

    A block switched off closes its channel; the rows that only limit that
    channel then hold trivially and their prices are dropped (the tail model's
    scenario rows, which carry the channel's fixed cost, keep theirs). ``at_duals``
    gives the reduced values at ``duals``, reused when no dropped price was set.
    """
    if combo is None:
        combo = np.full(len(problem.blocks), np.nan)
    off = [b.name for b, on in zip(problem.blocks, combo, strict=True) if on < 0.5]  # NaN: free
    closed = [problem.channels.index(name) for name in off if name in problem.channels]
    open_ = np.setdiff1d(np.arange(problem.n_channels), closed)
    # A loan none of whose eligible channels is open has no plan at any prices (its best
    # reduced value is -inf): known from the grid, before a pass over every option.
    if not problem.eligible[:, open_].any(axis=1).all():
        return -math.inf
    prices = duals.copy()
    limits = ~np.char.startswith(np.array(problem.rows.rule, dtype=str), "risk.")
    for name in off:
        switch = problem.rows.blocks[:, [b.name for b in problem.blocks].index(name)] != 0
        prices[switch & limits] = 0.0
    unchanged = np.array_equal(price_weights(problem, prices), price_weights(problem, duals))
    reduced = at_duals() if unchanged and at_duals is not None else reduced_values(problem, prices)
    best = row_max(reduced, open_)
    if not np.isfinite(best).all():
        return -math.inf
    return lagrangian_bound(problem, prices, reduced, fix_blocks=combo, best=best)


def combinations(switches: np.ndarray) -> list[np.ndarray | None]:
    """Every on/off setting of the switch blocks (other blocks NaN: left free)."""
    ns = int(switches.sum())
    if ns == 0:
        return [None]
    grid = np.array(np.meshgrid(*[[1.0, 0.0]] * ns, indexing="ij")).reshape(ns, -1).T
    out = np.full((grid.shape[0], switches.size), np.nan)
    out[:, switches] = grid
    return list(out)


def _solve_combo(
    problem: AllocationProblem,
    relaxed: Outcome,
    combo: np.ndarray | None,
    best: tuple[np.ndarray, np.ndarray, float] | None,
    deadline: float,
    mip_gap: float,
    max_free: int,
    progress: Callable[[str], None] | None,
    lp_options: dict[str, object],
    prices: np.ndarray | None = None,
    sample_lp: Outcome | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, float] | None, float, Outcome]:
    """Best whole-loan plan with the blocks fixed at ``combo``, a bound on it, and its LP.

    ``sample_lp``: the relaxation's sample already solved with the blocks at ``combo``.
    """
    same = combo is None or np.array_equal(relaxed.y[problem.switches], combo[problem.switches])
    if same and not relaxed.priced_only:
        lp = relaxed
    elif prices is not None and relaxed.sample is None:  # else a tenth of the loans prices better
        left = deadline - time.perf_counter()
        lp = solve_fractional(problem, left, fix_blocks=combo, progress=progress, prices=prices,
                              **lp_options)  # type: ignore[arg-type]  # fmt: skip
    else:
        lp = _combo_lp(problem, relaxed, combo, deadline, progress, lp_options, sample_lp)
    if lp.status != "optimal" or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > SLACK_TOL:
        return None, lp.bound if math.isfinite(lp.bound) else math.inf, lp
    loss, second = losses(reduced_values(problem, lp.duals))
    found = repair(problem, lp, loss, second, deadline, max_free, combo, mip_gap)
    bound = lp.bound
    if progress is not None:
        progress(
            f"{describe(problem, combo)}: LP bound {bound:,.2f}, repaired plan "
            f"{found[2] if found else math.nan:,.2f}"
        )
    value = max(found[2] if found else -math.inf, best[2] if best else -math.inf)
    if math.isfinite(value) and gap(value, bound) > mip_gap and time.perf_counter() < deadline:
        allowed = problem.eligible & (loss < bound - value + 1e-6)
        free = allowed.sum(axis=1) >= 2
        if progress is not None:
            progress(
                f"{describe(problem, combo)}: reduced-cost fixing leaves "
                f"{int(free.sum()):,} loans open"
            )
        if free.sum() <= max_free:
            exact = _exact_milp(problem, free, allowed, loss, deadline, mip_gap, combo)
            if exact is not None:
                plan, milp_bound = exact
                if plan is not None and (found is None or plan[2] > found[2]):
                    found = plan
                bound = min(bound, max(milp_bound, value))
    elif not math.isfinite(value) and problem.n_loans <= max_free and _left(deadline):
        # No plan to fix reduced costs against: the MILP of every loan settles the combination
        # (a combination the LP can meet only with split loans has no plan, and bound -inf).
        every = np.ones(problem.n_loans, dtype=bool)
        exact = _exact_milp(problem, every, problem.eligible, loss, deadline, mip_gap, combo)
        if exact is not None:
            found, milp_bound = exact
            bound = min(bound, milp_bound if found is None else max(milp_bound, found[2]))
    return found, bound, lp


def _combo_lp(
    problem: AllocationProblem,
    relaxed: Outcome,
    combo: np.ndarray | None,
    deadline: float,
    progress: Callable[[str], None] | None,
    lp_options: dict[str, object],
    sample_lp: Outcome | None = None,
) -> Outcome:
    """The exact LP with the on/off blocks fixed at ``combo``.

    Fixing a block the relaxation used in part (securitisation at 0.8, say)
    frees budget that tens of thousands of loans then move into, so the
    relaxation's prices are far off. When those prices came from a sample, the
    sample's LP is solved again with the blocks fixed (from its last basis), and
    its prices start a fresh LP over every loan, which halves the whole-loan solve
    (benchmarks/README.md, design measurements). Otherwise the relaxed LP is grown in place.
    ``sample_lp`` is that sample's LP when already solved (:meth:`_Search.tighten`).
    """
    start = _combo_start(problem, relaxed, combo, deadline, lp_options, sample_lp)
    left = deadline - time.perf_counter()
    return solve_fractional(problem, left, fix_blocks=combo, progress=progress,
                            **start, **lp_options)  # type: ignore[arg-type]  # fmt: skip


def _combo_start(
    problem: AllocationProblem,
    relaxed: Outcome,
    combo: np.ndarray | None,
    deadline: float,
    lp_options: dict[str, object],
    sample_lp: Outcome | None,
) -> dict[str, object]:
    """Where :func:`_combo_lp`'s LP starts: the prices it is given, or the relaxed LP grown.

    With the tail model, the relaxation's prices and last grouping; after a sampled
    relaxation, its sample's LP with the blocks fixed (when it solves); after one priced
    only, its prices; otherwise the relaxed LP itself.
    """
    if problem.has_tail and not relaxed.priced_only:
        return {"prices": relaxed.duals, "groups": relaxed.groups}
    if relaxed.sample is not None:
        priced = sample_lp if sample_lp is not None else _sample_lp(relaxed, combo, deadline,
                                                                    lp_options)  # fmt: skip
        if priced.status == "optimal":
            return {"prices": priced.duals}
    if relaxed.priced_only:
        return {"prices": relaxed.duals}
    return {"warm": relaxed}


def _sample_lp(
    relaxed: Outcome, combo: np.ndarray | None, deadline: float, lp_options: dict[str, object]
) -> Outcome:
    """The LP of the relaxation's sample with the on/off blocks fixed at ``combo``.

    Grown from the sample's own LP (its last basis); ``relaxed`` must have a sample.
    """
    if relaxed.sample is None:
        raise ValueError("the relaxation was not priced on a sample")
    sub, sub_lp = relaxed.sample
    left = deadline - time.perf_counter()
    return solve_fractional(sub, left, fix_blocks=combo, warm=sub_lp, **lp_options)  # type: ignore[arg-type]


def describe(problem: AllocationProblem, combo: np.ndarray | None) -> str:
    """The switches of ``combo`` in words, e.g. ``bulk_transfer on, securitisation off``."""
    if combo is None or not problem.switches.any():
        return "no on/off channels"
    return ", ".join(
        f"{b.name} {'on' if level > 0.5 else 'off'}"
        for b, level in zip(problem.blocks, combo, strict=True)
        if b.kind == "switch"
    )


def block_levels(problem: AllocationProblem, y: np.ndarray) -> np.ndarray:
    """A MILP's block levels: integer blocks rounded, continuous ones kept in [0, 1]."""
    integer = np.array([b.integer for b in problem.blocks], dtype=bool)
    return np.where(integer, np.round(y), np.clip(y, 0.0, 1.0))


def gap(value: float, bound: float) -> float:
    return max(bound - value, 0.0) / max(abs(bound), 1.0)


def losses(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each option's loss against its loan's best (CNY yuan; inf if not eligible), in place.

    Also each loan's second smallest loss, what switching off its best option
    costs (inf with a single eligible option).
    """
    _, top, runner_up = best_two(reduced)
    np.subtract(top[:, None], reduced, out=reduced)
    return reduced, top - runner_up


def repair(
    problem: AllocationProblem,
    lp: Outcome,
    loss: np.ndarray,
    second: np.ndarray,
    deadline: float,
    max_free: int,
    combo: np.ndarray | None,
    mip_gap: float,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A whole-loan plan: the LP's whole loans kept, its split loans and near-ties re-solved.

    The near-ties are the loans whose second-best option costs least per yuan of
    balance (the rows mostly weigh balance), each offered its two best options
    and any the LP used. The MILP stops at the first plan the LP bound
    certifies; if none is found within the gap, the neighbourhood grows fourfold.
    """
    split = row_max(lp.shares) < 1.0 - 1e-9
    # Each loan's best option has loss 0; the second smallest, ``second``, is what switching
    # costs (inf with a single eligible option).
    allowed = problem.eligible & ((loss <= second[:, None]) | (lp.shares > 1e-9))
    order = cheapest(second / problem.balance, max_free)
    choice = row_argmax(lp.shares)  # every loan's shares add up to 1, on eligible options
    base = np.zeros(loss.shape)
    base[np.arange(loss.shape[0]), choice] = 1.0
    chosen_value = np.take_along_axis(problem.value, choice[:, None], axis=1)[:, 0]
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    count = max(500, 4 * int(split.sum()))
    while True:
        free = split.copy()
        free[order[:count]] = True
        restricted = restricted_model(
            problem, free, base, allowed=allowed, integer=True, elastic=False, fix_blocks=combo
        )
        # Any plan within half the gap of the LP bound is certified by that bound.
        enough = lp.bound - 0.5 * mip_gap * abs(lp.bound) - float(chosen_value[~free].sum())
        sol = run_highs(
            restricted.model,
            time_limit=max(deadline - time.perf_counter(), 0.05),
            mip_gap=1e-9,
            abs_gap=0.5 * mip_gap * abs(lp.bound) * MONEY_SCALE,
            target=-enough * MONEY_SCALE,
        )
        if sol.x.size and sol.status in ("optimal", "target", "time_limit"):
            shares = shares_from(problem, restricted, np.round(sol.x), base)
            y = block_levels(problem, sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks])
            found = (shares, y, plan_value(problem, shares, y))
            if best is None or found[2] > best[2]:
                best = found
            if gap(best[2], lp.bound) <= mip_gap:
                return best
        if free.all() or count >= max_free or time.perf_counter() > deadline:
            return best
        count *= 4


def _left(deadline: float) -> bool:
    return time.perf_counter() < deadline


def _without(shares: np.ndarray, loans: np.ndarray) -> np.ndarray:
    """A copy of the ``shares`` grid with the rows of mask ``loans`` at zero.

    Copying and clearing the few rows costs a fifth of ``np.where`` broadcasting
    the mask over the whole grid.
    """
    out = shares.copy()
    out[loans] = 0.0
    return out



def _exact_milp(
    problem: AllocationProblem,
    free: np.ndarray,
    allowed: np.ndarray,
    loss: np.ndarray,
    deadline: float,
    mip_gap: float,
    combo: np.ndarray | None,
) -> tuple[Found | None, float] | None:
    """MILP over the loans reduced-cost fixing left open; the rest at their best option.

    Its plan (None: the MILP has none) and bound (CNY yuan; -inf when infeasible); None
    when it stopped without an answer.
    """
    base = argmax_shares(-np.where(problem.eligible, loss, np.inf))
    fixed = _without(base, free)
    restricted = restricted_model(
        problem, free, fixed, allowed=allowed, integer=True, elastic=False, fix_blocks=combo
    )
    # The gap is relative to the plan's value: the fixed loans' alone is nothing when
    # every loan is open (a small problem), and would ask HiGHS for a gap of 1e-9.
    total = max(abs(float((problem.value * fixed).sum())),
                abs(float(row_max(problem.eligible_value).sum()))) + 1.0  # fmt: skip
    sol = run_highs(
        restricted.model,
        time_limit=max(deadline - time.perf_counter(), 0.05),
        mip_gap=1e-9,
        abs_gap=0.5 * mip_gap * total * MONEY_SCALE,
    )
    if sol.status == "infeasible":
        return None, -math.inf
    if not sol.x.size:
        return None
    shares = shares_from(problem, restricted, np.round(sol.x), base)
    y = block_levels(problem, sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks])
    constant = float((problem.value * fixed).sum())
    bound = -sol.bound / MONEY_SCALE + constant if math.isfinite(sol.bound) else math.inf
    return (shares, y, plan_value(problem, shares, y)), bound

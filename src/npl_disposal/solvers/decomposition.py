"""Exact LP and whole-loan solves that exploit the problem's structure.

Every loan couples to the others only through a few budget rows and one
tolerance row per branch. For dual prices ``pi`` on those rows each loan's best
channel is one vectorised pass (:func:`reduced_values`), and the Lagrangian
``L(pi)`` is a certified upper bound on both the LP and the whole-loan optimum.

* **Fractional (LP)**: estimate prices on a sample, fix each loan whose best
  channel wins by a clear margin, solve the LP exactly on the loans near a tie,
  then price every fixed loan with the LP's duals; any loan whose fixed channel
  is no longer best is freed and the LP solved again. When none is left, the
  restricted optimum is optimal for the whole LP (complementary slackness).
* **Whole loan (MILP)**: a basic LP optimum splits at most as many loans as there
  are rows. Those loans (and the other near-ties) are repaired by a small exact
  MILP, giving a plan worth ``z``. Reduced-cost fixing then proves that any
  better plan only uses options whose reduced-value loss is below
  ``L(pi) - z``; the MILP over those options gives the optimum and its bound.
  With on/off channels (bulk transfer, securitisation) each on/off combination
  is its own LP; the sample's LP picks the combination to solve first and its
  prices bound the others, so the LP of every loan is solved only once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from npl_disposal._grid import best_two, row_argmax, row_max
from npl_disposal.model.problem import AllocationProblem, loan_arrays
from npl_disposal.solvers._formulation import (
    MONEY_SCALE,
    GrowingLP,
    restricted_model,
    row_scale,
    shares_from,
)
from npl_disposal.solvers._highs import run_highs

_TIE_TOL = 1e-9  # scaled (CNY m): a thousandth of a yuan
_SLACK_TOL = 1e-7  # scaled: a tenth of a yuan, or 1e-7 loans


@dataclass
class Outcome:
    """Raw outcome of a structured solve (shares on the grid, objective, bound)."""

    status: str
    shares: np.ndarray
    y: np.ndarray
    objective: float
    bound: float
    duals: np.ndarray
    shortfall: np.ndarray
    iterations: int = 0
    free_loans: int = 0
    free: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""
    lp: GrowingLP | None = field(default=None, repr=False)
    sample: tuple[AllocationProblem, Outcome] | None = field(default=None, repr=False)
    priced_only: bool = False


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

    ``v_im - sum_r lambda_r a_r,im`` for every loan and channel in one sparse pass.
    """
    weights = price_weights(problem, duals)
    priced = np.asarray(problem.rows.matrix.T @ weights).reshape(problem.eligible.shape)
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


def plan_value(problem: AllocationProblem, shares: np.ndarray, y: np.ndarray) -> float:
    """Objective of a plan: sum of v_im x_im less the blocks' fixed costs, CNY yuan."""
    return float(np.vdot(problem.value, shares) + problem.block_cost @ y)


def _argmax_shares(reduced: np.ndarray, best: np.ndarray | None = None) -> np.ndarray:
    """Every loan wholly on its best option (``best``: its position, when known)."""
    shares = np.zeros(reduced.shape)
    best = row_argmax(reduced) if best is None else best
    shares[np.arange(reduced.shape[0]), best] = 1.0
    return shares


def _best_and_gap(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each loan's best option, and how much it beats the second best (inf if none)."""
    best, top, second = best_two(reduced)
    gap = top - second
    return best, np.where(np.isfinite(gap), gap, np.inf)


def _sample_duals(
    problem: AllocationProblem,
    size: int,
    rng: np.random.Generator,
    deadline: float,
    phase_one: bool,
    fix_blocks: np.ndarray | None = None,
    sample: int = 4000,
    free_target: int = 3000,
) -> tuple[np.ndarray, tuple[AllocationProblem, Outcome] | None]:
    """Prices from the exact LP of a random sample, its budgets scaled to the sample.

    The sample problem is solved by this same method, so a million loans are
    priced from a hundred thousand, those from ten thousand, and so on: the
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
) -> Outcome:
    """Exact LP optimum by pricing and restricted LPs (see the module docstring).

    ``fix_blocks`` fixes the on/off variables; ``prices`` (duals of an earlier
    solve) replace the sample estimate; ``warm`` (an earlier outcome) also gives
    the plan and the open loans to start from, and its restricted LP (grown
    further in place) when it has one and the on/off variables are fixed.
    """
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    n = problem.n_loans
    free = np.zeros(n, dtype=bool)
    sampled = None
    if n <= sample + free_target:
        duals = np.zeros(len(problem.rows))
        free[:] = True
    elif warm is not None:
        duals = warm.duals
    elif prices is not None:
        duals = prices
    else:
        rng = np.random.default_rng(seed)
        size = max(sample, n // 10)
        duals, sampled = _sample_duals(problem, size, rng, deadline, phase_one, fix_blocks,
                                       sample=sample, free_target=free_target)  # fmt: skip
    reduced = reduced_values(problem, duals, phase_one)
    best, gap = _best_and_gap(reduced)
    base = _argmax_shares(reduced, best)
    switch_cost: np.ndarray | None = gap  # while base is the best option at reduced
    free[_cheapest(gap / problem.balance, max(free_target, n // 200))] = True
    free |= gap * MONEY_SCALE <= _TIE_TOL
    if warm is not None and warm.free is not None:
        free |= warm.free | (row_max(warm.shares) < 1.0)
        base = np.where(free[:, None], base, _argmax_shares(warm.shares))
        switch_cost = None
    seconds = {"prices": time.perf_counter() - start}
    iterations, timed_out = 0, False
    step, last_wrong = free_target, 2**62
    if warm is not None and warm.lp is not None and fix_blocks is not None:
        lp = warm.lp
        lp.fix_blocks(fix_blocks)
        lp.grow(free)
        base = lp.base
        switch_cost = None
    else:
        lp = GrowingLP(problem, free, base, phase_one, fix_blocks, start=base, own=True)
        base = lp.base  # the same grid, free rows cleared: only fixed loans' rows are read
    while True:
        iterations += 1
        left = max(deadline - time.perf_counter(), 0.05)
        sol = lp.solve(time_limit=left)
        if sol.status != "optimal":
            return Outcome(
                sol.status,
                base,
                np.ones(len(problem.blocks)),
                math.nan,
                math.nan,
                duals,
                np.zeros(len(problem.rows)),
                iterations,
                lp.n_free,
                lp.free,
                seconds,
                sol.message,
            )
        short = lp.slack(sol.x)
        if time.perf_counter() > deadline:
            timed_out = True
            break
        free = lp.free.copy()
        if np.abs(short).max(initial=0.0) > _SLACK_TOL and not free.all():
            added = _free_for_rows(problem, free, base, reduced, short / row_scale(problem),
                                   switch_cost)  # fmt: skip
            if added == 0:  # no fixed loan can help: only the whole LP can settle it
                free[:] = True
            lp.grow(free)
            _report(
                progress,
                iterations,
                free,
                added,
                "to meet violated rows "
                + ", ".join(
                    f"{problem.rows.names[r]} {short[r]:.4g}" for r in np.flatnonzero(short)
                ),
                sol.seconds,
            )
            continue
        duals = lp.resource_duals(sol.row_dual)
        reduced = reduced_values(problem, duals, phase_one)
        switch_cost = None
        chosen = np.take_along_axis(reduced, row_argmax(base)[:, None], axis=1)[:, 0]
        loss = (row_max(reduced) - chosen) * MONEY_SCALE
        wrong = ~free & (loss > _TIE_TOL)
        if not wrong.any():
            break
        # Let in a few thousand loans per pass; twice as many whenever the count of
        # mispriced loans did not halve (the prices are far off, e.g. after fixing blocks).
        count = int(wrong.sum())
        step = step * 2 if count > last_wrong // 2 else step
        last_wrong = count
        _free_more(free, wrong, loss, step, problem.balance)
        lp.grow(free)
        _report(progress, iterations, free, int(wrong.sum()), "repriced", sol.seconds)
    shares = lp.shares(sol.x)
    y = lp.y(sol.x)
    shortfall = lp.slack(sol.x) / row_scale(problem)
    objective = -float(shortfall.sum()) if phase_one else plan_value(problem, shares, y)
    bound = lagrangian_bound(problem, duals, reduced, phase_one, fix_blocks)
    free = lp.free.copy()
    seconds["total"] = time.perf_counter() - start
    return Outcome(
        "time_limit" if timed_out else "optimal",
        shares,
        y,
        objective,
        bound,
        duals,
        shortfall,
        iterations,
        int(free.sum()),
        free,
        seconds,
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


def _free_for_rows(
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
    they fall short, instead of sorting millions (10M loans: about 1 s).
    """
    if ratio.size == 0:
        return np.zeros(0, dtype=np.intp)
    k = min(ratio.size, first)
    while True:
        some = _cheapest(ratio, k)
        total = np.cumsum(gain[some])
        if k == ratio.size or total[-1] >= need:
            return some[: np.searchsorted(total, need) + 1]
        k = min(4 * k, ratio.size)


def _free_more(
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
    large ones (1M loans: 21 s with 40k loans let in per pass, 9.5 s with 3k).
    Gaps are compared per yuan of balance, since most rows weigh a loan by its
    balance.
    """
    worst = np.flatnonzero(wrong)
    if worst.size > limit:
        worst = worst[np.argpartition(-loss[worst] / balance[worst], limit)[:limit]]
    free[worst] = True


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
    if problem.switches.any():
        priced = _sampled_relaxation(problem, deadline, lp_options)
        if priced is not None:
            outcome = _by_combination(problem, priced, start, deadline, mip_gap, max_free,
                                      progress, lp_options)  # fmt: skip
            if outcome.status != "no_solution" or time.perf_counter() > deadline:
                return outcome
    left = deadline - time.perf_counter()
    lp = solve_fractional(problem, left, progress=progress, **lp_options)  # type: ignore[arg-type]
    if lp.status != "optimal" or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > _SLACK_TOL:
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
    duals, sampled = _sample_duals(problem, max(sample, n // 10), rng, deadline, False,
                                   sample=sample, free_target=free_target)  # fmt: skip
    if sampled is None:
        return None
    sub_lp = sampled[1]
    if np.abs(sub_lp.shortfall).max(initial=0.0) * MONEY_SCALE > _SLACK_TOL:
        return None
    reduced = reduced_values(problem, duals)
    bound = lagrangian_bound(problem, duals, reduced)
    return Outcome("optimal", _argmax_shares(reduced), sub_lp.y, math.nan, bound, duals,
                   np.zeros(len(problem.rows)), sample=sampled, priced_only=True)  # fmt: skip


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
    switches = problem.switches
    nearest = np.where(switches, (lp.y > 1e-9).astype(float), np.nan)
    others = [
        c for c in _combos(switches) if c is None or not np.array_equal(c, nearest, equal_nan=True)
    ]
    combos: list[np.ndarray | None] = [nearest] if switches.any() else []
    combos += others
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    bounds: list[float] = []
    work = lp  # the LP behind the best plan, for its passes and open loans
    cache: list[np.ndarray] = []

    def at_duals() -> np.ndarray:
        if not cache:
            cache.append(reduced_values(problem, lp.duals))
        return cache[0]

    for i, combo in enumerate(combos):
        # The first combination's own LP bounds it; the others are first bounded at the
        # relaxation's prices, which may spare solving them.
        estimate = (
            _combo_bound(problem, lp.duals, combo, at_duals)
            if combo is not None and i > 0
            else math.inf
        )
        prune = best is not None and (estimate <= best[2] or _gap(best[2], estimate) <= mip_gap)
        if i > 0 and (prune or time.perf_counter() > deadline):
            bounds.append(estimate)
            continue
        found, bound, solved = _solve_combo(
            problem, lp, combo, best, deadline, mip_gap, max_free, progress, lp_options
        )
        bounds.append(min(bound, estimate))
        if found is not None and (best is None or found[2] > best[2]):
            best, work = found, solved
    seconds = dict(work.seconds, total=time.perf_counter() - start)
    if best is None:
        return Outcome(
            "no_solution",
            lp.shares,
            lp.y,
            math.nan,
            lp.bound,
            lp.duals,
            lp.shortfall,
            lp.iterations,
            lp.free_loans,
            lp.free,
            seconds,
            "no whole-loan plan found",
        )
    shares, y, value = best
    bound = max(value, min(lp.bound, max(bounds)))
    status = "optimal" if _gap(value, bound) <= mip_gap else "feasible"
    return Outcome(
        status,
        shares,
        y,
        value,
        bound,
        lp.duals,
        np.zeros(len(problem.rows)),
        work.iterations,
        work.free_loans,
        work.free,
        seconds,
    )


def _combo_bound(
    problem: AllocationProblem,
    duals: np.ndarray,
    combo: np.ndarray,
    at_duals: Callable[[], np.ndarray] | None = None,
) -> float:
    """Lagrangian bound (CNY yuan) with the on/off variables fixed at ``combo``.

    A block switched off closes its channel; the rows that only limit that
    channel then hold trivially and their prices are dropped. ``at_duals``
    gives the reduced values at ``duals``, reused when no dropped price was set.
    """
    off = [b.name for b, on in zip(problem.blocks, combo, strict=True) if on < 0.5]  # NaN: free
    prices = duals.copy()
    for name in off:
        prices[problem.rows.blocks[:, [b.name for b in problem.blocks].index(name)] != 0] = 0.0
    unchanged = np.array_equal(price_weights(problem, prices), price_weights(problem, duals))
    reduced = at_duals() if unchanged and at_duals is not None else reduced_values(problem, prices)
    closed = [problem.channels.index(name) for name in off if name in problem.channels]
    open_ = np.setdiff1d(np.arange(problem.n_channels), closed)
    best = row_max(reduced, open_)
    if not np.isfinite(best).all():
        return -math.inf
    return lagrangian_bound(problem, prices, reduced, fix_blocks=combo, best=best)


def _combos(switches: np.ndarray) -> list[np.ndarray | None]:
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
) -> tuple[tuple[np.ndarray, np.ndarray, float] | None, float, Outcome]:
    """Best whole-loan plan with the blocks fixed at ``combo``, a bound on it, and its LP."""
    same = combo is None or np.array_equal(relaxed.y[problem.switches], combo[problem.switches])
    if same and not relaxed.priced_only:
        lp = relaxed
    else:
        lp = _combo_lp(problem, relaxed, combo, deadline, progress, lp_options)
    if lp.status != "optimal" or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > _SLACK_TOL:
        return None, lp.bound if math.isfinite(lp.bound) else math.inf, lp
    loss, second = _losses(reduced_values(problem, lp.duals))
    found = _repair(problem, lp, loss, second, deadline, max_free, combo, mip_gap)
    bound = lp.bound
    if progress is not None:
        progress(
            f"{_describe(problem, combo)}: LP bound {bound:,.2f}, repaired plan "
            f"{found[2] if found else math.nan:,.2f}"
        )
    value = max(found[2] if found else -math.inf, best[2] if best else -math.inf)
    if math.isfinite(value) and _gap(value, bound) > mip_gap and time.perf_counter() < deadline:
        allowed = problem.eligible & (loss < bound - value + 1e-6)
        free = allowed.sum(axis=1) >= 2
        if progress is not None:
            progress(
                f"{_describe(problem, combo)}: reduced-cost fixing leaves "
                f"{int(free.sum()):,} loans open"
            )
        if free.sum() <= max_free:
            exact = _exact_milp(problem, free, allowed, loss, deadline, mip_gap, combo)
            if exact is not None:
                if found is None or exact[2] > found[2]:
                    found = exact[:3]
                bound = min(bound, max(exact[3], value))
    return found, bound, lp


def _combo_lp(
    problem: AllocationProblem,
    relaxed: Outcome,
    combo: np.ndarray | None,
    deadline: float,
    progress: Callable[[str], None] | None,
    lp_options: dict[str, object],
) -> Outcome:
    """The exact LP with the on/off blocks fixed at ``combo``.

    Fixing a block the relaxation used in part (securitisation at 0.8, say)
    frees budget that tens of thousands of loans then move into, so the
    relaxation's prices are far off. When those prices came from a sample, the
    sample's LP is solved again with the blocks fixed (from its last basis), and
    its prices start a fresh LP over every loan (1M loans: 20 s to 10 s for the
    whole-loan solve). Otherwise the relaxed LP is grown in place.
    """
    options: dict[str, object] = dict(lp_options)
    if relaxed.sample is not None:
        sub, sub_lp = relaxed.sample
        left = deadline - time.perf_counter()
        priced = solve_fractional(sub, left, fix_blocks=combo, warm=sub_lp, **options)  # type: ignore[arg-type]
        if priced.status == "optimal":
            left = deadline - time.perf_counter()
            return solve_fractional(problem, left, fix_blocks=combo, progress=progress,
                                    prices=priced.duals, **options)  # type: ignore[arg-type]  # fmt: skip
    left = deadline - time.perf_counter()
    if relaxed.priced_only:
        return solve_fractional(problem, left, fix_blocks=combo, progress=progress,
                                prices=relaxed.duals, **options)  # type: ignore[arg-type]  # fmt: skip
    return solve_fractional(problem, left, fix_blocks=combo, progress=progress, warm=relaxed,
                            **options)  # type: ignore[arg-type]  # fmt: skip


def _describe(problem: AllocationProblem, combo: np.ndarray | None) -> str:
    """The switches of ``combo`` in words, e.g. ``bulk_transfer on, securitisation off``."""
    if combo is None or not problem.switches.any():
        return "no on/off channels"
    return ", ".join(
        f"{b.name} {'on' if level > 0.5 else 'off'}"
        for b, level in zip(problem.blocks, combo, strict=True)
        if b.kind == "switch"
    )


def _block_levels(problem: AllocationProblem, y: np.ndarray) -> np.ndarray:
    """A MILP's block levels: integer blocks rounded, continuous ones kept in [0, 1]."""
    integer = np.array([b.integer for b in problem.blocks], dtype=bool)
    return np.where(integer, np.round(y), np.clip(y, 0.0, 1.0))


def _gap(value: float, bound: float) -> float:
    return max(bound - value, 0.0) / max(abs(bound), 1.0)


def _losses(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each option's loss against its loan's best (CNY yuan; inf if not eligible), in place.

    Also each loan's second smallest loss, what switching off its best option
    costs (inf with a single eligible option).
    """
    _, top, runner_up = best_two(reduced)
    np.subtract(top[:, None], reduced, out=reduced)
    return reduced, top - runner_up


def _repair(
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
    gap = second
    allowed = problem.eligible & ((loss <= second[:, None]) | (lp.shares > 1e-9))
    order = _cheapest(gap / problem.balance, max_free)
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
            y = _block_levels(problem, sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks])
            found = (shares, y, plan_value(problem, shares, y))
            if best is None or found[2] > best[2]:
                best = found
            if _gap(best[2], lp.bound) <= mip_gap:
                return best
        if free.all() or count >= max_free or time.perf_counter() > deadline:
            return best
        count *= 4


def _without(shares: np.ndarray, loans: np.ndarray) -> np.ndarray:
    """A copy of the ``shares`` grid with the rows of mask ``loans`` at zero.

    Copying and clearing the few rows costs a fifth of ``np.where`` broadcasting
    the mask over the whole grid (10M loans: 0.9 s).
    """
    out = shares.copy()
    out[loans] = 0.0
    return out


def _cheapest(cost: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest ``cost`` values, smallest first (ties by position)."""
    if count >= cost.size:
        return np.argsort(cost, kind="stable")
    head = np.argpartition(cost, count)[:count]
    return head[np.lexsort((head, cost[head]))]


def _exact_milp(
    problem: AllocationProblem,
    free: np.ndarray,
    allowed: np.ndarray,
    loss: np.ndarray,
    deadline: float,
    mip_gap: float,
    combo: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """MILP over the loans reduced-cost fixing left open; the rest at their best option."""
    base = _argmax_shares(-np.where(problem.eligible, loss, np.inf))
    fixed = _without(base, free)
    restricted = restricted_model(
        problem, free, fixed, allowed=allowed, integer=True, elastic=False, fix_blocks=combo
    )
    total = abs(float((problem.value * fixed).sum())) + 1.0
    sol = run_highs(
        restricted.model,
        time_limit=max(deadline - time.perf_counter(), 0.05),
        mip_gap=1e-9,
        abs_gap=0.5 * mip_gap * total * MONEY_SCALE,
    )
    if not sol.x.size:
        return None
    shares = shares_from(problem, restricted, np.round(sol.x), base)
    y = _block_levels(problem, sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks])
    constant = float((problem.value * fixed).sum())
    bound = -sol.bound / MONEY_SCALE + constant if math.isfinite(sol.bound) else math.inf
    return shares, y, plan_value(problem, shares, y), bound

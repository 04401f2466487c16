"""The coordinator's side: restricted LPs over the open loans, the whole-loan path."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal.distributed._cluster import _pick
from npl_disposal.distributed._layout import _assemble, _Layout, _Piece
from npl_disposal.distributed._steps import (
    _combo_part,
    _fixing,
    _open_all,
    _open_for_rows,
    _price_out,
    _Report,
    _respond,
    _sample,
)
from npl_disposal.model.diagnose import explain
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import (
    MONEY_SCALE,
    Restricted,
    restricted_model,
    row_scale,
    shares_from,
)
from npl_disposal.solvers._highs import ArraySolution, run_highs
from npl_disposal.solvers._outcome import Outcome
from npl_disposal.solvers._pricing import (
    SLACK_TOL,
    lagrangian_bound,
    plan_value,
    reduced_values,
    solve_fractional,
)
from npl_disposal.solvers._whole_loan import (
    block_levels,
    combination_order,
    describe,
    gap,
    losses,
    repair,
)


@dataclass(eq=False)
class _Open:
    """The open loans the coordinator holds, piece by piece, in arrival order."""

    pieces: list[_Piece] = field(default_factory=list)

    def add(self, reports: Sequence[_Report]) -> int:
        added = 0
        for r in reports:
            if r.opened is not None and r.opened.size:
                self.pieces.append(r.opened)
                added += r.opened.size
        return added

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)

    def split(self, shares: np.ndarray, n_parts: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per partition: its open loans (local positions) and their rows of ``shares``."""
        out: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(n_parts)]
        start = 0
        for piece in self.pieces:
            out[piece.index][0].append(piece.loans)
            out[piece.index][1].append(shares[start : start + piece.size])
            start += piece.size
        m = shares.shape[1]
        return [
            (
                np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64),
                np.concatenate(rows) if rows else np.zeros((0, m)),
            )
            for idx, rows in out
        ]


@dataclass(eq=False)
class _LP:
    """A distributed LP solve: duals, bound, the open loans' solution and the states."""

    status: str
    duals: np.ndarray
    objective: float
    bound: float
    y: np.ndarray
    shortfall: np.ndarray
    open: _Open
    problem: AllocationProblem
    shares: np.ndarray
    states: list[Any]
    fixed_value: float
    iterations: int
    message: str = ""


@dataclass(eq=False)
class _Plan:
    """A plan: the states (fixed channels) on the workers plus the open loans' shares."""

    states: list[Any]
    open: _Open
    shares: np.ndarray
    y: np.ndarray
    value: float


@dataclass(eq=False)
class _Passes:
    """The state of a distributed LP between passes: prices, states, open loans, fixed usage."""

    duals: np.ndarray
    states: list[Any]
    open: _Open
    all_open: bool = False
    fixed_usage: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fixed_value: float = 0.0
    best: tuple[np.ndarray, float] = field(default_factory=lambda: (np.zeros(0), 0.0))
    iterations: int = 0
    timed_out: bool = False

    def took(self, reports: Sequence[_Report], duals: np.ndarray) -> None:
        """The workers' first answer: their open loans, fixed usage and best values."""
        self.open.add(reports)
        self.fixed(reports)
        self.best = (duals, float(sum(r.best for r in reports)))

    def fixed(self, reports: Sequence[_Report]) -> None:
        """The fixed loans' usage of each row and their value, from the workers' reports."""
        self.fixed_usage = np.sum([r.usage for r in reports], axis=0)
        self.fixed_value = float(sum(r.value for r in reports))

    def failure(self, sol: ArraySolution, problem: AllocationProblem, blocks: int) -> _LP:
        """The outcome of a restricted LP that did not solve."""
        k = len(problem.rows)
        return _LP(sol.status, self.duals, math.nan, math.nan, np.ones(blocks), np.zeros(k),
                   self.open, problem, np.zeros(problem.eligible.shape), self.states,
                   self.fixed_value, self.iterations, sol.message)  # fmt: skip


class _Run:
    """The coordinator's side of one solve over partitions already built on the workers."""

    def __init__(
        self,
        client: Any,
        parts: list[Any],
        layout: _Layout,
        sizes: list[int],
        progress: Callable[[str], None] | None,
        seed: int,
        sample: int,
        free_target: int,
        deadline: float,
    ) -> None:
        self.client = client
        self.parts = parts
        self.layout = layout
        self.sizes = sizes
        self.n = sum(sizes)
        self.progress = progress
        self.seed = seed
        self.sample = sample
        self.free_target = free_target
        self.deadline = deadline
        self.opened = 0
        self.aggregate = layout.aggregate()
        self.switches = np.array([b.kind == "switch" for b in layout.blocks], dtype=bool)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def step(
        self,
        fn: Callable[..., Any],
        states: Sequence[Any] | None,
        *args: Any,
        each: Sequence[Sequence[Any]] | None = None,
    ) -> tuple[list[Any], list[_Report]]:
        """Run ``fn`` on every partition; the new states stay on the workers, reports come back.

        The returned futures hold ``(state, report)`` pairs; only the reports travel.
        """
        c = self.client
        pairs = []
        for i, part in enumerate(self.parts):
            extra = tuple(each[i]) if each is not None else ()
            lead = (part,) if states is None else (part, states[i])
            pairs.append(c.submit(fn, *lead, *args, *extra, pure=False))
        reports = c.gather([c.submit(_pick, f, 1, pure=False) for f in pairs])
        return pairs, list(reports)

    def left(self) -> float:
        return max(self.deadline - time.perf_counter(), 0.05)

    def limits(self) -> list[list[int]]:
        return [
            [max(math.ceil(self.free_target * s / max(self.n, 1)), s // 50)] for s in self.sizes
        ]

    # ------------------------------------------------------------------ prices

    def sample_prices(self, fix_blocks: np.ndarray | None) -> np.ndarray:
        """Prices from the exact LP of a random sample of every partition (as single-machine)."""
        size = max(self.sample, self.n // 10)
        seeds = np.random.SeedSequence(self.seed).generate_state(len(self.parts))
        counts = [round(size * s / self.n) for s in self.sizes]
        c = self.client
        futures = [
            c.submit(_sample, part, counts[i], int(seeds[i]), pure=False)
            for i, part in enumerate(self.parts)
        ]
        got = c.gather(futures)
        pieces = [g[0] for g in got if g[0].size]
        total = np.sum([g[1] for g in got], axis=0)
        sub = _assemble(self.layout, pieces)
        picked = np.asarray(abs(sub.rows.matrix) @ np.ones(sub.rows.matrix.shape[1])).ravel()
        share = sub.n_loans / max(self.n, 1)
        factor = np.divide(picked, total, out=np.full(total.size, share), where=total > 0)
        rows = sub.rows
        lower = np.where(np.isfinite(rows.lower), np.nan_to_num(rows.lower) * factor, rows.lower)
        upper = np.where(np.isfinite(rows.upper), np.nan_to_num(rows.upper) * factor, rows.upper)
        sub = replace(
            sub,
            rows=replace(rows, blocks=rows.blocks * factor[:, None], lower=lower, upper=upper),
            blocks=tuple(replace(b, fixed_cost=b.fixed_cost * share) for b in sub.blocks),
        )
        t0 = time.perf_counter()
        outcome = solve_fractional(
            sub,
            self.left(),
            sample=self.sample,
            free_target=self.free_target,
            seed=self.seed,
            fix_blocks=fix_blocks,
        )
        self.say(
            f"prices from a sample of {sub.n_loans:,} loans ({outcome.status}, "
            f"{time.perf_counter() - t0:.2f} s)"
        )
        return outcome.duals if outcome.status == "optimal" else np.zeros(self.layout.k)

    # ------------------------------------------------------------------ fractional

    def fractional(
        self, fix_blocks: np.ndarray | None = None, prices: np.ndarray | None = None
    ) -> _LP:
        """The LP optimum by prices and restricted LPs, as :func:`solve_fractional`."""
        everything = self.n <= self.sample + self.free_target
        if everything:
            duals = np.zeros(self.layout.k)
        elif prices is not None:
            duals = prices
        else:
            duals = self.sample_prices(fix_blocks)
        each = [[*lim, everything] for lim in self.limits()]
        states, reports = self.step(_respond, None, duals, each=each)
        passes = _Passes(duals, states, _Open(), all_open=everything)
        passes.took(reports, duals)
        while True:
            passes.iterations += 1
            problem, restricted, sol = self._restricted(passes, fix_blocks)
            if sol.status != "optimal":
                return passes.failure(sol, problem, len(self.layout.blocks))
            short = restricted.slack(sol.x)
            if time.perf_counter() > self.deadline:
                passes.timed_out = True
                break
            if np.abs(short).max(initial=0.0) > SLACK_TOL and not passes.all_open:
                self._open_for_rows(passes, short, sol.seconds)
                continue
            if not self._reprice(passes, restricted.resource_duals(sol.row_dual), sol.seconds):
                break
        return self._optimum(passes, problem, restricted, sol, fix_blocks)

    def _restricted(
        self, passes: _Passes, fix_blocks: np.ndarray | None
    ) -> tuple[AllocationProblem, Restricted, ArraySolution]:
        """The restricted LP over the open loans (the fixed loans' usage taken off the limits)."""
        layout = self.layout
        problem = _assemble(layout, passes.open.pieces, layout.lower - passes.fixed_usage,
                            layout.upper - passes.fixed_usage)  # fmt: skip
        restricted = restricted_model(
            problem, np.ones(problem.n_loans, dtype=bool), None, fix_blocks=fix_blocks
        )
        return problem, restricted, run_highs(restricted.model, time_limit=self.left())

    def _open_for_rows(self, passes: _Passes, short: np.ndarray, seconds: float) -> None:
        """Open the fixed loans that can close the rows missed (all of them if none can)."""
        scale = row_scale(self.aggregate)
        passes.states, reports = self.step(_open_for_rows, passes.states, passes.duals,
                                           short / scale)  # fmt: skip
        if passes.open.add(reports) == 0:  # no fixed loan can help: only the whole LP can
            passes.states, reports = self.step(_open_all, passes.states)
            passes.open.add(reports)
            passes.all_open = True
        passes.fixed(reports)
        self.say(f"LP pass {passes.iterations} ({seconds:.2f} s): rows missed, "
                 f"{passes.open.size:,} loans open")  # fmt: skip

    def _reprice(self, passes: _Passes, duals: np.ndarray, seconds: float) -> bool:
        """Price the fixed loans at the LP's duals; open the mispriced. False if none is."""
        passes.states, reports = self.step(_price_out, passes.states, duals, each=self.limits())
        passes.duals = duals
        passes.best = (duals, float(sum(r.best for r in reports)))
        wrong = sum(r.wrong for r in reports)
        if wrong == 0:
            return False
        passes.open.add(reports)
        passes.fixed(reports)
        self.say(f"LP pass {passes.iterations} ({seconds:.2f} s): {wrong:,} fixed loans "
                 f"repriced; {passes.open.size:,} loans open")  # fmt: skip
        return True

    def _optimum(
        self,
        passes: _Passes,
        problem: AllocationProblem,
        restricted: Restricted,
        sol: ArraySolution,
        fix_blocks: np.ndarray | None,
    ) -> _LP:
        """The LP over every loan: the open loans' solution, its value and Lagrangian bound."""
        shares = shares_from(problem, restricted, sol.x, np.zeros(problem.eligible.shape))
        y = sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks]
        shortfall = restricted.slack(sol.x) / row_scale(self.aggregate)
        objective = passes.fixed_value + plan_value(problem, shares, y)
        prices, best = passes.best
        bound = lagrangian_bound(self.aggregate, prices, np.array([[best]]), fix_blocks=fix_blocks)
        self.opened = max(self.opened, passes.open.size)
        self.say(f"LP optimum CNY {objective:,.2f}, bound CNY {bound:,.2f} after "
                 f"{passes.iterations} passes; {passes.open.size:,} loans open")  # fmt: skip
        return _LP("time_limit" if passes.timed_out else "optimal", passes.duals, objective,
                   bound, y, shortfall, passes.open, problem, shares, passes.states,
                   passes.fixed_value, passes.iterations)  # fmt: skip

    # ------------------------------------------------------------------ whole loan

    def combo_bound(self, duals: np.ndarray, combo: np.ndarray | None) -> float:
        """Lagrangian bound with the on/off variables fixed (as ``_combo_bound``), reduced here."""
        layout = self.layout
        closed: tuple[str, ...] = ()
        prices = duals
        if combo is not None:
            closed = tuple(b.name for b, on in zip(layout.blocks, combo, strict=True) if on < 0.5)
            prices = duals.copy()
            for name in closed:
                index = [b.name for b in layout.blocks].index(name)
                prices[layout.blocks_coef[:, index] != 0] = 0.0
        got = self.client.gather(
            [
                self.client.submit(_combo_part, part, prices, closed, pure=False)
                for part in self.parts
            ]
        )
        if not all(ok for ok, _ in got):
            return -math.inf
        total = float(sum(v for _, v in got))
        return lagrangian_bound(self.aggregate, prices, np.array([[total]]), fix_blocks=combo)

    def whole_loan(self, lp: _LP, mip_gap: float, max_free: int) -> tuple[_Plan | None, float]:
        """Best whole-loan plan and its bound, as :func:`solve_whole_loan` does."""
        combos = combination_order(self.switches, lp.y)
        estimates = [self.combo_bound(lp.duals, c) for c in combos]
        best: _Plan | None = None
        bounds: list[float] = []
        for i, (combo, estimate) in enumerate(zip(combos, estimates, strict=True)):
            prune = best is not None and (
                estimate <= best.value or gap(best.value, estimate) <= mip_gap
            )
            if i > 0 and (prune or time.perf_counter() > self.deadline):
                bounds.append(estimate)
                continue
            found, bound = self.solve_combo(lp, combo, best, mip_gap, max_free)
            bounds.append(min(bound, estimate))
            if found is not None and (best is None or found.value > best.value):
                best = found
        if best is None:
            return None, lp.bound
        return best, max(best.value, min(lp.bound, max(bounds)))

    def solve_combo(
        self,
        relaxed: _LP,
        combo: np.ndarray | None,
        best: _Plan | None,
        mip_gap: float,
        max_free: int,
    ) -> tuple[_Plan | None, float]:
        """Repair of the combination's LP on the open loans, then reduced-cost fixing."""
        if combo is None or np.array_equal(relaxed.y[self.switches], combo[self.switches]):
            lp = relaxed
        else:
            lp = self.fractional(fix_blocks=combo, prices=relaxed.duals)
        if (
            lp.status != "optimal"
            or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > SLACK_TOL
        ):
            return None, lp.bound if math.isfinite(lp.bound) else math.inf
        loss, second = losses(reduced_values(lp.problem, lp.duals))
        shell = Outcome("optimal", lp.shares, lp.y, lp.objective, lp.bound, lp.duals, lp.shortfall)
        repaired = repair(lp.problem, shell, loss, second, self.deadline, max_free, combo,
                           mip_gap)  # fmt: skip
        found = None
        if repaired is not None:
            found = _Plan(
                lp.states, lp.open, repaired[0], repaired[1], lp.fixed_value + repaired[2]
            )
        bound = lp.bound
        which = describe(self.aggregate, combo)
        self.say(
            f"{which}: LP bound {bound:,.2f}, repaired plan "
            f"{found.value if found else math.nan:,.2f}"
        )
        if found is None and best is None and time.perf_counter() < self.deadline:
            found = self.widened(lp.duals, combo, mip_gap, max_free)
        value = max(found.value if found else -math.inf, best.value if best else -math.inf)
        if (
            math.isfinite(value)
            and gap(value, bound) > mip_gap
            and time.perf_counter() < self.deadline
        ):
            threshold = bound - value + 1e-6
            count = self.open_within(lp.duals, threshold)
            self.say(f"{which}: reduced-cost fixing leaves {count:,} loans open")
            if count <= max_free:
                exact = self.exact(lp.duals, threshold, combo, mip_gap)
                if exact is not None:
                    plan, exact_bound = exact
                    if found is None or plan.value > found.value:
                        found = plan
                    bound = min(bound, max(exact_bound, value))
        return found, bound

    def open_within(self, duals: np.ndarray, threshold: float) -> int:
        """How many loans have a second option within ``threshold`` (CNY) of their best."""
        _, counts = self.step(_fixing, None, duals, threshold, False)
        return sum(r.count for r in counts)

    def widened(
        self, duals: np.ndarray, combo: np.ndarray | None, mip_gap: float, max_free: int
    ) -> _Plan | None:
        """A plan when repairing the open loans found none: a MILP over up to ``max_free`` loans.

        On one machine the repair grows its neighbourhood over every loan up to
        ``max_free``; here the open loans are only those the LP priced near a tie, so the
        loans with a second option within the largest loss threshold (CNY, searched on a
        log scale) that opens at most ``max_free`` are opened. Its MILP bound proves
        nothing (the threshold is not ``bound - plan``) and is dropped.
        """
        threshold = math.inf
        if self.open_within(duals, threshold) > max_free:
            low, high = -2.0, 13.0  # log10 of the threshold: a cent to CNY 10 trillion
            if self.open_within(duals, 10**low) > max_free:
                return None
            for _ in range(12):
                mid = (low + high) / 2
                if self.open_within(duals, 10**mid) <= max_free:
                    low = mid
                else:
                    high = mid
            threshold = 10**low
        exact = self.exact(duals, threshold, combo, mip_gap)
        self.say(f"{describe(self.aggregate, combo)}: widened to loss {threshold:,.2f}, plan "
                 f"{exact[0].value if exact else math.nan:,.2f}")  # fmt: skip
        return exact[0] if exact is not None else None

    def exact(
        self, duals: np.ndarray, threshold: float, combo: np.ndarray | None, mip_gap: float
    ) -> tuple[_Plan, float] | None:
        """MILP over the loans reduced-cost fixing leaves open, the rest at their best channel."""
        states, reports = self.step(_fixing, None, duals, threshold, True)
        open_ = _Open()
        open_.add(reports)
        self.opened = max(self.opened, open_.size)
        fixed_usage = np.sum([r.usage for r in reports], axis=0)
        fixed_value = float(sum(r.value for r in reports))
        layout = self.layout
        problem = _assemble(
            layout, open_.pieces, layout.lower - fixed_usage, layout.upper - fixed_usage
        )
        allowed = (
            np.concatenate([p.allowed for p in open_.pieces if p.allowed is not None])
            if open_.pieces
            else np.zeros(problem.eligible.shape, dtype=bool)
        )
        restricted = restricted_model(
            problem,
            np.ones(problem.n_loans, dtype=bool),
            None,
            allowed=allowed,
            integer=True,
            elastic=False,
            fix_blocks=combo,
        )
        sol = run_highs(
            restricted.model,
            time_limit=self.left(),
            mip_gap=1e-9,
            abs_gap=0.5 * mip_gap * (abs(fixed_value) + 1.0) * MONEY_SCALE,
        )
        if not sol.x.size:
            return None
        shares = shares_from(problem, restricted, np.round(sol.x), np.zeros(problem.eligible.shape))
        y = block_levels(problem, sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks])
        value = fixed_value + plan_value(problem, shares, y)
        bound = -sol.bound / MONEY_SCALE + fixed_value if math.isfinite(sol.bound) else math.inf
        return _Plan(states, open_, shares, y, value), bound


def _conflicts(layout: _Layout, shortfall: np.ndarray) -> pd.DataFrame:
    """The rules the elastic restricted LP had to miss, in each rule's words."""
    found = explain(layout.rows(sp.csr_matrix((layout.k, 0))), shortfall)
    return found[found["rule"] != "whole_loan"].reset_index(drop=True)

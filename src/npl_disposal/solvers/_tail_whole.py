"""Whole-loan plans with a weighted tail mean: section 4's problem on tangent values.

The tail mean is concave in the plan: for any tail weights q (one per scenario, as
sorting some plan's scenario values gives them) and every plan x, ``T(x) <= sum_s q_s
V_s(x)``, with equality at the plan that gave q. So ``expected value + aversion x sum_s
q_s V_s`` is section 4's objective on reweighted option values, an upper bound on the
true objective everywhere and exact at that plan. Each round solves that whole-loan
problem (no scenario rows: as fast as a plan without scenarios), values its plan
exactly, and takes the new plan's tail weights for the next round. Every round's
bound is a certified bound on the true optimum; the search stops when the best plan is
within the gap of the least bound, or when the weights repeat.

A MILP with the scenario rows instead couples every loan to every tail scenario, and
closing its gap took minutes on a few thousand loans. A floor on the tail mean is not
linearised this way (a tangent would admit plans below it): it keeps the full model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from npl_disposal.io.scenarios import segment_codes
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.risk import RiskTerms
from npl_disposal.model.rows import ResourceRows
from npl_disposal.policy.risk import tail_weights
from npl_disposal.solvers._outcome import Outcome, plan_value
from npl_disposal.solvers.backends import Backend

__all__ = ["MAX_ROUNDS", "solve_tail_whole_loan", "tangent_applies"]

#: Most rounds of tangent weights before the best plan is returned with its gap.
MAX_ROUNDS = 3


def tangent_applies(problem: AllocationProblem, mode: str) -> bool:
    """Whether a whole-loan solve takes the tangent rounds (a weighted tail, no floor)."""
    risk = problem.risk
    return (mode == "whole_loan" and risk is not None and risk.modelled
            and risk.section.min_tail_value is None
            and problem.n_loans == len(problem.portfolio.loans))  # fmt: skip


class _Tangent:
    """The problem without the tail model, and how to reweight it by tail weights."""

    def __init__(self, problem: AllocationProblem) -> None:
        risk = problem.risk
        assert risk is not None
        self.problem, self.risk = problem, risk
        self.segment, _ = segment_codes(problem.portfolio.loans, risk.section.segment_by)
        self.mean = risk.expected  # (channels, segments)
        keep_rows = np.array([not r.startswith("risk.") for r in problem.rows.rule])
        self.keep_blocks = np.array([not b.name.startswith("risk_") for b in problem.blocks])
        self.base = replace(problem, rows=_rows_subset(problem.rows, keep_rows,
                                                       self.keep_blocks),
                            blocks=tuple(b for b, k in zip(problem.blocks, self.keep_blocks,
                                                           strict=True) if k),
                            risk=None)  # fmt: skip
        self.fixed = np.array([b.fixed_cost if b.kind == "switch" else 0.0
                               for b in self.base.blocks])  # fmt: skip

    def values(self, shares: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each scenario's value of a plan (CNY yuan), from its per (channel, segment) sums."""
        risk, m = self.risk, self.problem.n_channels
        g = len(risk.segments)
        key = (self.segment[:, None] * m + np.arange(m)).ravel()
        sums = np.bincount(key, weights=(self.problem.value * shares).ravel(), minlength=g * m)
        mean = self.mean.T.ravel()  # by key: segment * channels + channel
        base = np.divide(sums, mean, out=np.zeros_like(sums), where=mean > 0)
        factors = risk.factors.transpose(0, 2, 1).reshape(risk.factors.shape[0], -1)
        return factors @ base - float(self.fixed @ y)

    def reweighted(self, weights: np.ndarray) -> AllocationProblem:
        """Section 4's problem on ``v (1 + aversion x sum_s q_s f_s / mean f)`` per option."""
        risk, lam = self.risk, self.risk.section.aversion
        tangent = np.tensordot(weights, risk.factors, axes=1)  # (channels, segments)
        ratio = np.divide(tangent, self.mean, out=np.zeros_like(tangent), where=self.mean > 0)
        value = self.problem.value * (1.0 + lam * ratio.T[self.segment])
        blocks = tuple(replace(b, fixed_cost=b.fixed_cost * (1.0 + lam))
                       if b.kind == "switch" else b for b in self.base.blocks)  # fmt: skip
        return replace(self.base, value=value, blocks=blocks)

    def levels(self, shares: np.ndarray, y: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Every block's level: the plan's, and the tail model's at its scenario values."""
        out = np.zeros(len(self.problem.blocks))
        out[self.keep_blocks] = y
        risk = self.risk
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(risk.scenarios.probability[order])
        j = min(int(np.searchsorted(cum, 1.0 - risk.section.alpha - 1e-12)), values.size - 1)
        eta = float(values[order[j]])
        at = {b.name: j for j, b in enumerate(self.problem.blocks)}
        out[at["risk_threshold"]] = np.clip((eta - risk.floor) / risk.width, 0.0, 1.0)
        for s, name in enumerate(risk.scenarios.names):
            short = max(eta - float(values[s]), 0.0) / risk.width
            out[at[f"risk_shortfall[{name}]"]] = min(short, 1.0)
        _aggregate_levels(self, shares, risk, at, out)
        return out


def _aggregate_levels(tangent: _Tangent, shares: np.ndarray, risk: RiskTerms,
                      at: dict[str, int], out: np.ndarray) -> None:  # fmt: skip
    m = tangent.problem.n_channels
    key = (tangent.segment[:, None] * m + np.arange(m)).ravel()
    sums = np.bincount(key, weights=(tangent.problem.value * shares).ravel(),
                       minlength=len(risk.segments) * m)  # fmt: skip
    mean = tangent.mean.T.ravel()
    base = np.divide(sums, mean, out=np.zeros_like(sums), where=mean > 0)
    for p, pair in enumerate(risk.pairs):
        level = (base[pair] - risk.low[p]) / risk.span[p]
        out[at[f"risk_level[{risk.pair_name(p)}]"]] = min(max(level, 0.0), 1.0)


#: Seconds (at least, and times the tangent rounds' own) the scenario-row MILP may add.
FULL_MODEL_SECONDS = 10.0


def _full_model(
    tangent: _Tangent,
    backend: Backend,
    method: str,
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray],
    bound: float,
    mip_gap: float,
    start: float,
    deadline: float,
    progress: Callable[[str], None] | None,
) -> tuple[tuple[float, np.ndarray, np.ndarray, np.ndarray], float]:
    """The MILP with every scenario row, for the time left: a better plan or bound, if any.

    Without a time limit it gets :data:`FULL_MODEL_SECONDS`, or four times what the
    tangent rounds took, whichever is more.
    """
    now = time.perf_counter()
    budget = max(FULL_MODEL_SECONDS, 4.0 * (now - start))
    left = min(deadline - now, budget)
    if left <= 0.05:
        return best, bound
    problem, risk = tangent.problem, tangent.risk
    full, _ = backend.solve(problem, "whole_loan", method, left, mip_gap, None)
    if not np.isfinite(full.objective):
        return best, bound
    y = full.y[tangent.keep_blocks]
    values = tangent.values(full.shares, y)
    prob, alpha = risk.scenarios.probability, risk.section.alpha
    true = plan_value(tangent.base, full.shares, y) + risk.section.aversion * float(
        tail_weights(values, prob, alpha) @ values)  # fmt: skip
    bound = min(bound, full.bound + risk.offset)
    if progress is not None:
        progress(f"tail MILP: plan CNY {true:,.2f}, bound CNY {bound:,.2f}")
    return (max(best, (true, full.shares, y, values), key=lambda b: b[0]), bound)


def _lp_weights(problem: AllocationProblem, lp: Outcome, default: np.ndarray) -> np.ndarray:
    """The LP optimum's tail weights: its scenario rows' prices, scaled to sum to 1."""
    rows = np.array(problem.rows.rule) == "risk.shortfall"
    prices = np.abs(lp.duals[rows]) if lp.duals.size == rows.size else np.zeros(0)
    total = float(prices.sum())
    return prices / total if prices.size == default.size and total > 0 else default


def _rows_subset(rows: ResourceRows, keep: np.ndarray, blocks: np.ndarray) -> ResourceRows:
    """The rows of mask ``keep`` over the blocks of mask ``blocks``."""
    idx = np.flatnonzero(keep)

    def pick(seq: tuple) -> tuple:
        return tuple(seq[i] for i in idx) if len(seq) == keep.size else seq

    return ResourceRows(
        names=pick(rows.names), rule=pick(rows.rule), unit=pick(rows.unit),
        branch=pick(rows.branch), matrix=rows.matrix[idx].tocsc(),
        blocks=rows.blocks[idx][:, blocks], lower=rows.lower[idx], upper=rows.upper[idx],
        short=pick(rows.short),
        limit=rows.limit[idx] if rows.limit is not None else None,
        negate=rows.negate[idx] if rows.negate is not None else None,
        switch=pick(rows.switch),
    )  # fmt: skip


def solve_tail_whole_loan(
    problem: AllocationProblem,
    backend: Backend,
    method: str,
    time_limit: float | None,
    mip_gap: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[Outcome, str]:
    """The best whole-loan plan over tangent rounds, and a certified bound (model units)."""
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    tangent = _Tangent(problem)
    risk = tangent.risk
    prob, alpha, lam = risk.scenarios.probability, risk.section.alpha, risk.section.aversion
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
    bound, seen, used = math.inf, [], method
    weights = np.array(prob)  # any weights give a bound; the LP's give the best one
    lp, _ = backend.solve(problem, "fractional", method, time_limit, mip_gap, None)
    if lp.status == "optimal":
        bound = lp.bound + risk.offset
        weights = _lp_weights(problem, lp, weights)
        if progress is not None:
            progress(f"tail LP: bound CNY {bound:,.2f}")
    for round_ in range(MAX_ROUNDS):
        left = None if time_limit is None else max(deadline - time.perf_counter(), 0.05)
        outcome, used = backend.solve(tangent.reweighted(weights), "whole_loan", method, left,
                                      mip_gap / 4, None)  # fmt: skip
        if not np.isfinite(outcome.objective):
            if best is None:
                return outcome, used
            break
        bound = min(bound, outcome.bound)
        values = tangent.values(outcome.shares, outcome.y)
        true = plan_value(tangent.base, outcome.shares, outcome.y) + lam * float(
            tail_weights(values, prob, alpha) @ values)  # fmt: skip
        if best is None or true > best[0]:
            best = (true, outcome.shares, outcome.y, values)
        if progress is not None:
            progress(f"tail round {round_ + 1}: plan CNY {true:,.2f}, bound CNY {bound:,.2f}")
        # The running mean of the rounds' weights: the plan's own weights alone oscillate.
        weights = ((round_ + 1) * weights + tail_weights(values, prob, alpha)) / (round_ + 2)
        key = weights.round(12).tobytes()
        if (bound - best[0]) <= mip_gap * max(abs(bound), 1.0) or key in seen:
            break
        seen.append(key)
        if time.perf_counter() > deadline:
            break
    assert best is not None
    if (bound - best[0]) > mip_gap * max(abs(bound), 1.0):
        best, bound = _full_model(tangent, backend, method, best, bound, mip_gap, start,
                                  deadline, progress)  # fmt: skip
    true, shares, y, values = best
    levels = tangent.levels(shares, y, values)
    status = "optimal" if (bound - true) <= mip_gap * max(abs(bound), 1.0) else "feasible"
    k = len(problem.rows)
    return Outcome(status=status, shares=shares, y=levels, objective=true - risk.offset,
                   bound=max(bound, true) - risk.offset, duals=np.zeros(k),
                   shortfall=np.zeros(k), iterations=len(seen) + 1,
                   free_loans=int(outcome.free_loans)), used  # fmt: skip

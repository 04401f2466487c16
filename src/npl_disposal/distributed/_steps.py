"""The workers' side of the pricing loop: best responses, pricing out, the plan written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal._grid import row_argmax, row_max
from npl_disposal.distributed._layout import _Piece, _piece
from npl_disposal.distributed._partitions import _Part
from npl_disposal.distributed._storage import _write_parquet
from npl_disposal.io._ids import positions_in
from npl_disposal.model._join import PlanJoin
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.verify import _Log, check_loans
from npl_disposal.policy.measures import Measure
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers._pricing import (
    TIE_TOL,
    best_and_gap,
    free_for_rows,
    free_more,
    reduced_values,
)
from npl_disposal.solvers.result import plan_frame


@dataclass(frozen=True, eq=False)
class _State:
    """A partition's plan between passes: each loan's fixed channel, and the open loans."""

    base: np.ndarray
    free: np.ndarray


@dataclass(frozen=True, eq=False)
class _Report:
    """What a worker sends back after a pass (small, apart from the loans it opens)."""

    index: int
    opened: _Piece | None
    usage: np.ndarray
    value: float
    best: float
    wrong: int = 0
    finite: bool = True
    count: int = 0


#: A state and the report that came with it: kept together on the worker (one task a pass).
_Held = tuple[_State, _Report]


def _onehot(p: AllocationProblem, base: np.ndarray, keep: np.ndarray) -> np.ndarray:
    shares = np.zeros(p.eligible.shape)
    loans = np.flatnonzero(keep)
    shares[loans, base[loans]] = 1.0
    return shares


def _report(
    index: int,
    p: AllocationProblem,
    state: _State,
    opened: np.ndarray | None,
    best: float,
    **extra: Any,
) -> _Report:
    fixed = _onehot(p, state.base, ~state.free)
    usage = np.asarray(p.rows.matrix @ fixed.ravel()).ravel()
    value = float((p.value * fixed).sum())
    piece = _piece(index, p, opened) if opened is not None and opened.size else None
    return _Report(index, piece, usage, value, best, **extra)


def _respond(
    part: _Part, prices: np.ndarray, limit: int, everything: bool
) -> tuple[_State, _Report]:
    """Best response to the prices: argmax channels, and the loans near a tie opened."""
    p = part.need()
    reduced = reduced_values(p, prices)
    base, gap = best_and_gap(reduced)
    free = np.ones(p.n_loans, dtype=bool) if everything else np.zeros(p.n_loans, dtype=bool)
    if not everything and p.n_loans:
        free[np.argsort(gap / p.balance, kind="stable")[:limit]] = True
        free |= gap * MONEY_SCALE <= TIE_TOL
    state = _State(base, free)
    best = float(row_max(reduced).sum())
    return state, _report(part.index, p, state, np.flatnonzero(free), best)


def _price_out(part: _Part, held: _Held, duals: np.ndarray, limit: int) -> _Held:
    """Price the fixed loans at the restricted LP's duals; open those no longer at their best."""
    state = held[0]
    p = part.need()
    reduced = reduced_values(p, duals)
    rows = np.arange(p.n_loans)
    loss = (row_max(reduced) - reduced[rows, state.base]) * MONEY_SCALE
    wrong = ~state.free & (loss > TIE_TOL)
    free = state.free.copy()
    if wrong.any():
        free_more(free, wrong, loss, limit, p.balance)
    new = _State(state.base, free)
    best = float(row_max(reduced).sum())
    return new, _report(
        part.index, p, new, np.flatnonzero(free & ~state.free), best, wrong=int(wrong.sum())
    )


def _open_for_rows(part: _Part, held: _Held, duals: np.ndarray, shortfall: np.ndarray) -> _Held:
    """Open the cheapest fixed loans able to close the rows the restricted LP misses."""
    state = held[0]
    p = part.need()
    reduced = reduced_values(p, duals)
    free = state.free.copy()
    free_for_rows(
        p, free, _onehot(p, state.base, np.ones(p.n_loans, dtype=bool)), reduced, shortfall
    )
    new = _State(state.base, free)
    return new, _report(part.index, p, new, np.flatnonzero(free & ~state.free), math.nan)


def _open_all(part: _Part, held: _Held) -> _Held:
    state = held[0]
    p = part.need()
    new = _State(state.base, np.ones(p.n_loans, dtype=bool))
    return new, _report(part.index, p, new, np.flatnonzero(~state.free), math.nan)


def _sample(part: _Part, count: int, seed: int) -> tuple[_Piece, np.ndarray]:
    """A random sample of the partition's loans, and each row's reach (sum of |coefficients|)."""
    p = part.need()
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(p.n_loans, size=min(count, p.n_loans), replace=False))
    reach = np.asarray(abs(p.rows.matrix) @ np.ones(p.rows.matrix.shape[1])).ravel()
    return _piece(part.index, p, pick.astype(np.int64)), reach


def _combo_part(part: _Part, prices: np.ndarray, closed: tuple[str, ...]) -> tuple[bool, float]:
    """Sum of the partition's best reduced values, the channels ``closed`` removed."""
    p = part.need()
    reduced = reduced_values(p, prices)
    for name in closed:
        if name in p.channels:
            reduced[:, p.channels.index(name)] = -np.inf
    best = row_max(reduced)
    if not np.isfinite(best).all():
        return False, -math.inf
    return True, float(best.sum())


def _fixing(
    part: _Part, duals: np.ndarray, threshold: float, gather: bool
) -> tuple[_State, _Report]:
    """Reduced-cost fixing: options within ``threshold`` (CNY) of the loan's best stay open.

    A loan with one such option is fixed at its best channel; with two or more it is
    open. With ``gather`` false only the count is reported.
    """
    p = part.need()
    reduced = reduced_values(p, duals)
    loss = row_max(reduced)[:, None] - reduced
    allowed = p.eligible & (loss < threshold)
    free = allowed.sum(axis=1) >= 2
    state = _State(row_argmax(reduced), free)
    if not gather:
        empty = _Report(
            part.index, None, np.zeros(len(p.rows)), 0.0, math.nan, count=int(free.sum())
        )
        return state, empty
    out = _report(part.index, p, state, None, math.nan, count=int(free.sum()))
    opened = np.flatnonzero(free)
    piece = _piece(part.index, p, opened, allowed) if opened.size else None
    return state, replace(out, opened=piece)


@dataclass(frozen=True, eq=False)
class _Written:
    """A partition's plan after writing: its loan-level check and its measures.

    ``measured`` holds the partition's value of each measure the coordinator asked
    for (per branch of the branch table where the measure is), ``count`` the loans
    it sends to each channel, ``value`` its options' value (CNY yuan, before fixed
    costs).
    """

    index: int
    name: str
    rows: int
    loans: int
    violations: pd.DataFrame
    value: float
    count: Mapping[str, float]
    measured: Mapping[Measure, float | np.ndarray]
    row_usage: np.ndarray
    plan: pd.DataFrame | None


def _write_plan(
    part: _Part,
    held: _Held,
    loans: np.ndarray,
    shares: np.ndarray,
    whole_loan: bool,
    url: str | None,
    storage: Mapping[str, Any] | None,
    measures: tuple[Measure, ...],
    branches: tuple[str, ...],
) -> _Written:
    """Write the partition's plan and check it (worker side).

    Loan-level rules (eligibility, shares, long ageing, write-off priority) are
    checked here, on the partition's own tables; the budgets and the tolerance need
    the whole portfolio, so the partition measures its plan (from the tables, not
    the solver's matrices) and the coordinator checks the sums.
    """
    p = part.need()
    grid = _onehot(p, held[0].base, np.ones(p.n_loans, dtype=bool))
    grid[loans] = shares
    plan = plan_frame(p, grid)
    plan["channel"] = plan["channel"].astype(str)
    if url is not None:
        _write_parquet(plan, url, storage)
    assert part.options is not None
    log = _Log()
    joined = PlanJoin(part.loans, part.options, plan)
    check_loans(log, joined, p.policy.rules, whole_loan)
    measured = joined.measured(positions_in(part.loans["branch"], branches), len(branches), {})
    usage = np.asarray(p.rows.matrix @ grid.ravel()).ravel()
    return _Written(
        part.index,
        part.name,
        len(plan),
        p.n_loans,
        log.frame().assign(file=part.name),
        float(joined.value @ joined.share),
        {str(c): float(v) for c, v in joined.by_channel(joined.share).items()},
        {m: measured.evaluate(m) for m in measures},
        usage,
        None if url is not None else plan,
    )

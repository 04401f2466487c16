"""The global row layout, and pieces of partitions assembled on the coordinator."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal.distributed._partitions import _Part
from npl_disposal.io.options import channel_order
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.schema import OPTION_COLUMNS
from npl_disposal.model.problem import (
    AllocationProblem,
    Block,
    GridOffers,
    ResourceRows,
    loan_arrays,
)
from npl_disposal.policy import Policy
from npl_disposal.policy.rules import fill_quota, tolerance_requirement


@dataclass(frozen=True)
class _Shape:
    """A partition problem's channels and rows, before the global layout is known.

    ``quota`` holds the balances (CNY yuan) of its small/micro loans offered write-off
    when ``[write_off] priority = "quota_first"`` (empty otherwise).
    """

    channels: tuple[str, ...]
    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    blocks_coef: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    blocks: tuple[Block, ...]
    branches: tuple[str, ...]
    npl: np.ndarray
    loans: int
    short: tuple[str, ...] = ()
    stated: tuple[np.ndarray, np.ndarray, tuple[str | None, ...]] | None = None
    quota: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, eq=False)
class _Layout:
    """The global problem's channels and coupling rows (names, limits, block coefficients).

    ``required`` is the small/micro balance (CNY yuan) the plan must write off under
    ``quota_first``, from every partition's loans (None under the other readings).
    """

    channels: tuple[str, ...]
    branches: tuple[str, ...]
    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    blocks_coef: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    blocks: tuple[Block, ...]
    policy: Policy
    mode: str
    short: tuple[str, ...] = ()
    limit: np.ndarray | None = None
    negate: np.ndarray | None = None
    switch: tuple[str | None, ...] = ()
    required: float | None = None

    @property
    def k(self) -> int:
        return len(self.names)

    def rows(
        self,
        matrix: sp.csr_matrix,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> ResourceRows:
        return ResourceRows(
            names=self.names,
            rule=self.rule,
            unit=self.unit,
            branch=self.branch,
            matrix=matrix,
            blocks=self.blocks_coef,
            lower=self.lower if lower is None else lower,
            upper=self.upper if upper is None else upper,
            short=self.short,
            limit=self.limit,
            negate=self.negate,
            switch=self.switch,
        )

    def aggregate(self, usage: np.ndarray | None = None) -> AllocationProblem:
        """A problem of one pseudo-loan whose first option uses ``usage`` of every row.

        It carries the rows for :func:`lagrangian_bound`, :func:`row_scale` and
        :func:`~npl_disposal.solvers.solve.constraint_table` (share 1 on that option gives
        the usage).
        """
        m = len(self.channels)
        column = np.zeros(self.k) if usage is None else usage
        matrix = sp.csr_matrix(
            (column, (np.arange(self.k), np.zeros(self.k, dtype=np.int64))), shape=(self.k, m)
        )
        one = _Piece(
            index=-1,
            loans=np.zeros(1, dtype=np.int64),
            loan_ids=np.array(["<all>"], dtype=object),
            balance=np.ones(1),
            branch_index=np.zeros(1, dtype=np.int64),
            inclusive=np.zeros(1, dtype=bool),
            value=np.zeros((1, m)),
            pnl=np.zeros((1, m)),
            derecognised=np.zeros((1, m)),
            offered=np.ones((1, m), dtype=bool),
            eligible=np.ones((1, m), dtype=bool),
            matrix=matrix,
        )
        return _assemble(self, [one])


def _shape(part: _Part) -> _Shape:
    p = part.need()
    rows = p.rows
    inc = p.inclusive
    npl = np.bincount(p.branch_index[inc], p.balance[inc], minlength=len(p.branches))
    return _Shape(
        p.channels,
        rows.names,
        rows.rule,
        rows.unit,
        rows.branch,
        rows.blocks,
        rows.lower,
        rows.upper,
        p.blocks,
        p.branches,
        npl,
        p.n_loans,
        rows.short,
        rows.stated(),
        _quota_loans(p, part.loans),
    )


def _quota_loans(p: AllocationProblem, loans: pd.DataFrame) -> np.ndarray:
    """Balances (CNY yuan) of the loans ``quota_first`` fills the quota from (else none)."""
    rule = p.policy.rules.priority
    if rule is None or rule.reading != "quota_first" or not p.n_loans:
        return np.zeros(0)
    return p.balance[rule.concerns(GridOffers(p.offered, p.channels), loans)]


def _layout(
    shapes: Sequence[_Shape], policy: Policy, mode: str, inclusive_loans: np.ndarray | None
) -> _Layout:
    """The global rows: the union of the partitions' rows, limits from global totals.

    Each partition problem is built with a branch table of zero inclusive loans,
    so that it has a tolerance row for every branch it holds inclusive NPL of;
    the limit of that row for the whole portfolio needs the branch's total NPL
    ``N_k`` (summed here over every partition) and ``L_k``. The write-off priority's
    limit fills the quota from every partition's loans. A row or an on/off block
    that only some partitions have (a channel not offered everywhere) is one global
    row or block; rows and blocks keep the order every partition gives them.
    """
    channels = channel_order(pd.Series([c for s in shapes for c in s.channels], dtype=object))
    at: dict[str, list[tuple[int, int]]] = {}
    for i, s in enumerate(shapes):
        for r, name in enumerate(s.names):
            at.setdefault(name, []).append((i, r))
    required = _required(shapes, policy)
    given = _given_limits(shapes, policy, inclusive_loans, required)
    names = [
        n
        for n in _merged([s.names for s in shapes])
        if shapes[at[n][0][0]].rule[at[n][0][1]] != "tolerance" or n in given
    ]
    where = [at[n][0] for n in names]
    pick = lambda attr: tuple(getattr(shapes[i], attr)[r] for i, r in where)  # noqa: E731
    lower = [
        given.get(n, float(shapes[i].lower[r])) for n, (i, r) in zip(names, where, strict=True)
    ]
    stated = [shapes[i].stated for i, _ in where]
    # A row whose limit comes from global totals states that limit as its own number.
    limit = [
        given[n] if n in given else float(st[0][r]) if st is not None else low
        for n, low, st, (_, r) in zip(names, lower, stated, where, strict=True)
    ]
    blocks = _union_blocks(shapes)
    branches = tuple(pd.unique(pd.Series([b for s in shapes for b in s.branches], dtype=object)))
    return _Layout(
        channels=channels,
        branches=branches,
        names=tuple(names),
        rule=pick("rule"),
        unit=pick("unit"),
        branch=pick("branch"),
        blocks_coef=_block_coefficients(shapes, names, at, blocks),
        lower=np.array(lower, dtype=float),
        upper=np.array(pick("upper"), dtype=float),
        blocks=blocks,
        policy=policy,
        mode=mode,
        short=pick("short"),
        limit=np.array(limit, dtype=float),
        negate=np.array([bool(st[1][r]) if st else False for st, (_, r) in zip(stated, where,
                                                                              strict=True)]),
        switch=tuple(st[2][r] if st else None for st, (_, r) in zip(stated, where, strict=True)),
        required=required,
    )


def _required(shapes: Sequence[_Shape], policy: Policy) -> float | None:
    """The small/micro balance (CNY yuan) ``quota_first`` requires written off, or None."""
    rule = policy.rules.priority
    if rule is None or rule.reading != "quota_first":
        return None
    return fill_quota(np.concatenate([s.quota for s in shapes]), rule.quota)


def _given_limits(
    shapes: Sequence[_Shape],
    policy: Policy,
    inclusive_loans: np.ndarray | None,
    required: float | None,
) -> dict[str, float]:
    """The lower limits (CNY yuan) that need every partition, by row name.

    Tolerance rows of the branches that must derecognise (others are dropped), and
    the write-off priority's.
    """
    given: dict[str, float] = {}
    if required is not None:
        given["write_off_priority"] = required
    if policy.tolerance is not None and policy.tolerance.enforce and inclusive_loans is not None:
        npl = np.sum([s.npl for s in shapes], axis=0)
        need = tolerance_requirement(npl, inclusive_loans, policy.tolerance.threshold)
        for b in np.flatnonzero(need > 0):
            given[f"tolerance[{shapes[0].branches[b]}]"] = float(need[b])
    return given


def _merged(sequences: Sequence[Sequence[str]]) -> list[str]:
    """Every name of ``sequences`` once, in an order that keeps each sequence's order.

    Names that no sequence orders come first seen first (a topological sort).
    """
    rank: dict[str, int] = {}
    after: dict[str, set[str]] = {}
    waiting: dict[str, int] = {}
    for seq in sequences:
        for name in seq:
            rank.setdefault(name, len(rank))
            after.setdefault(name, set())
            waiting.setdefault(name, 0)
        for a, b in itertools.pairwise(seq):
            if b not in after[a]:
                after[a].add(b)
                waiting[b] += 1
    ready = [(rank[n], n) for n in rank if waiting[n] == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        out.append(name)
        for nxt in after[name]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (rank[nxt], nxt))
    done = set(out)
    return out + [n for n in rank if n not in done]  # orders that disagree: first seen


def _union_blocks(shapes: Sequence[_Shape]) -> tuple[Block, ...]:
    """Every partition's on/off blocks, once each, in the order the partitions give them."""
    found: dict[str, Block] = {}
    for s in shapes:
        for b in s.blocks:
            found.setdefault(b.name, b)
    return tuple(found[n] for n in _merged([[b.name for b in s.blocks] for s in shapes]))


def _block_coefficients(
    shapes: Sequence[_Shape],
    names: Sequence[str],
    at: dict[str, list[tuple[int, int]]],
    blocks: Sequence[Block],
) -> np.ndarray:
    """Each global row's coefficients on the global blocks.

    A coefficient is the same in every partition that has both the row and the
    block, except on the switch of a switched row whose stated limit is infinite:
    there it is minus all the channel is offered, summed over the partitions.
    """
    col = {b.name: j for j, b in enumerate(blocks)}
    cols = [np.array([col[b.name] for b in s.blocks], dtype=np.int64) for s in shapes]
    coef = np.zeros((len(names), len(blocks)))
    known = np.zeros(coef.shape, dtype=bool)
    for i, name in enumerate(names):
        summed: str | None = None
        total = 0.0
        for s, r in at[name]:
            shape = shapes[s]
            values = shape.blocks_coef[r]
            fresh = ~known[i, cols[s]]
            coef[i, cols[s][fresh]] = values[fresh]
            known[i, cols[s]] = True
            if shape.stated is None:
                continue
            limit, _, switch = shape.stated
            on = switch[r]
            if on is not None and not math.isfinite(limit[r]):
                summed = on
                total += float(values[[b.name for b in shape.blocks].index(on)])
        if summed is not None:
            coef[i, col[summed]] = total
    return coef


def _globalise(part: _Part, layout: _Layout) -> _Part:
    """Re-index the partition problem on the global channels and rows (worker side)."""
    p = part.need()
    m_local, m = p.n_channels, len(layout.channels)
    to = pd.Index(layout.channels).get_indexer(list(p.channels))
    n = p.n_loans

    def widen(grid: np.ndarray) -> np.ndarray:
        out = np.zeros((n, m), dtype=grid.dtype)
        out[:, to] = grid
        return out

    row_of = pd.Index(layout.names).get_indexer(list(p.rows.names))
    coo = p.rows.matrix.tocoo()
    keep = row_of[coo.row] >= 0
    loan, chan = np.divmod(coo.col[keep].astype(np.int64), m_local)
    matrix = sp.csr_matrix(
        (coo.data[keep], (row_of[coo.row[keep]], loan * m + to[chan])), shape=(layout.k, n * m)
    )
    branch_to = pd.Index(layout.branches).get_indexer(list(p.branches))
    problem = replace(
        p,
        channels=layout.channels,
        branches=layout.branches,
        branch_index=branch_to[p.branch_index] if p.n_loans else p.branch_index,
        value=widen(p.value),
        pnl=widen(p.pnl),
        derecognised=widen(p.derecognised),
        offered=widen(p.offered),
        eligible=widen(p.eligible),
        rows=layout.rows(matrix),
        blocks=layout.blocks,
        portfolio=Portfolio(part.loans, part.branches, part.name),
        policy=layout.policy,
        mode=layout.mode,
    )
    return replace(part, problem=problem)


@dataclass(frozen=True, eq=False)
class _Piece:
    """Some loans of one partition with their rows of the options grid and row coefficients."""

    index: int
    loans: np.ndarray
    loan_ids: np.ndarray
    balance: np.ndarray
    branch_index: np.ndarray
    inclusive: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    derecognised: np.ndarray
    offered: np.ndarray
    eligible: np.ndarray
    matrix: sp.csr_matrix
    allowed: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.loans.size)


def _piece(
    index: int, p: AllocationProblem, loans: np.ndarray, allowed: np.ndarray | None = None
) -> _Piece:
    m = p.n_channels
    cols = (loans[:, None] * m + np.arange(m)).ravel()
    return _Piece(
        index=index,
        loans=loans,
        **loan_arrays(p, loans),
        matrix=p.rows.matrix[:, cols].tocsr(),
        allowed=None if allowed is None else allowed[loans],
    )


def _assemble(
    layout: _Layout,
    pieces: Sequence[_Piece],
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> AllocationProblem:
    """An :class:`AllocationProblem` over the loans of ``pieces`` (on the coordinator)."""
    m = len(layout.channels)

    def cat(attr: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        parts = [getattr(p, attr) for p in pieces]
        return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)

    matrix = (
        sp.hstack([p.matrix for p in pieces], format="csr")
        if pieces
        else sp.csr_matrix((layout.k, 0))
    )
    ids = cat("loan_ids", (0,), object)
    balance = cat("balance", (0,), float)
    branch_index = cat("branch_index", (0,), np.int64)
    inclusive = cat("inclusive", (0,), bool)
    names = np.asarray(layout.branches, dtype=object)
    loans = pd.DataFrame(
        {
            "loan_id": ids,
            "branch": names[branch_index] if names.size else np.full(ids.size, None),
            "balance": balance,
            "inclusive": inclusive,
        }
    )
    return AllocationProblem(
        loan_ids=ids,
        channels=layout.channels,
        balance=balance,
        branch_index=branch_index,
        branches=layout.branches,
        inclusive=inclusive,
        value=cat("value", (0, m), float),
        pnl=cat("pnl", (0, m), float),
        derecognised=cat("derecognised", (0, m), float),
        offered=cat("offered", (0, m), bool),
        eligible=cat("eligible", (0, m), bool),
        rows=layout.rows(matrix, lower, upper),
        blocks=layout.blocks,
        mode=layout.mode,
        portfolio=Portfolio(loans, None, "open loans"),
        policy=layout.policy,
        options=pd.DataFrame(columns=[c.name for c in OPTION_COLUMNS]),
    )

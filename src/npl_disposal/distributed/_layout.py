"""The global row layout, and pieces of partitions assembled on the coordinator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    ResourceRows,
    loan_arrays,
)
from npl_disposal.policy import Policy
from npl_disposal.policy.rules import tolerance_requirement


@dataclass(frozen=True)
class _Shape:
    """A partition problem's channels and rows, before the global layout is known."""

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


@dataclass(frozen=True, eq=False)
class _Layout:
    """The global problem's channels and coupling rows (names, limits, block coefficients)."""

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
    )


def _layout(
    shapes: Sequence[_Shape], policy: Policy, mode: str, inclusive_loans: np.ndarray | None
) -> _Layout:
    """The global rows: the union of the partitions' rows, tolerance limits from global totals.

    Each partition problem is built with a branch table of zero inclusive loans,
    so that it has a tolerance row for every branch it holds inclusive NPL of;
    the limit of that row for the whole portfolio needs the branch's total NPL
    ``N_k`` (summed here over every partition) and ``L_k``.
    """
    channels = channel_order(pd.Series([c for s in shapes for c in s.channels], dtype=object))
    first = shapes[0]
    if any(s.blocks != first.blocks for s in shapes):
        raise NotImplementedError(
            "the partitions' problems have different on/off variables "
            f"({first.blocks} and others); this policy cannot be solved over partitions"
        )
    seen: dict[str, tuple[int, int]] = {}
    for i, s in enumerate(shapes):
        for r, name in enumerate(s.names):
            seen.setdefault(name, (i, r))
    budget = [n for n in seen if shapes[seen[n][0]].rule[seen[n][1]] != "tolerance"]
    names = list(budget)
    lower = [shapes[seen[n][0]].lower[seen[n][1]] for n in budget]
    if policy.tolerance is not None and policy.tolerance.enforce and inclusive_loans is not None:
        npl = np.sum([s.npl for s in shapes], axis=0)
        need = tolerance_requirement(npl, inclusive_loans, policy.tolerance.threshold)
        for b in np.flatnonzero(need > 0):
            name = f"tolerance[{first.branches[b]}]"
            if name in seen:
                names.append(name)
                lower.append(float(need[b]))
    where = [seen[n] for n in names]
    pick = lambda attr: tuple(getattr(shapes[i], attr)[r] for i, r in where)  # noqa: E731
    stated = [shapes[i].stated for i, _ in where]
    # A tolerance row's own number is the global requirement, as its lower limit.
    limit = [
        low if rule == "tolerance" else float(st[0][r]) if st is not None else low
        for low, rule, st, (_, r) in zip(lower, pick("rule"), stated, where, strict=True)
    ]
    nb = len(first.blocks)
    coef = np.array([shapes[i].blocks_coef[r] for i, r in where]).reshape(len(names), nb)
    branches = tuple(pd.unique(pd.Series([b for s in shapes for b in s.branches], dtype=object)))
    return _Layout(
        channels=channels,
        branches=branches,
        names=tuple(names),
        rule=pick("rule"),
        unit=pick("unit"),
        branch=pick("branch"),
        blocks_coef=coef,
        lower=np.array(lower, dtype=float),
        upper=np.array(pick("upper"), dtype=float),
        blocks=first.blocks,
        policy=policy,
        mode=mode,
        short=pick("short"),
        limit=np.array(limit, dtype=float),
        negate=np.array([bool(st[1][r]) if st else False for st, (_, r) in zip(stated, where,
                                                                              strict=True)]),
        switch=tuple(st[2][r] if st else None for st, (_, r) in zip(stated, where, strict=True)),
    )


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

"""The rows of the allocation problem: on/off blocks, resource rows, and how limits become rows.

Every limit of :meth:`~npl_disposal.policy.rules.Rules.limits` becomes one row (or,
for a per-branch measure, one row per branch) through :func:`add_limits`: the
measure's coefficients on the eligible options it selects, its bound, and its
coefficients on the on/off blocks. Rows are kept in their natural unit (CNY yuan or
loans) and assembled into one column-stored matrix.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal._threads import for_each, thread_count
from npl_disposal.policy._values import millions
from npl_disposal.policy.budgets import Limit
from npl_disposal.policy.measures import MONEY, Measure

__all__ = ["BLOCK_KINDS", "Block", "ResourceRows", "RowBuilder", "add_limits"]


#: Stored coefficients up to which :meth:`ResourceRows.weighed` keeps copies of the rows it
#: weighs: about 1.3 million loans of the benchmarks' portfolio, whose copies then hold at
#: most 120 MB (usually a third of that: two or three rows carry prices). Beyond, the
#: product over every column, which holds nothing.
ROW_COPY_LIMIT = 10_000_000

#: Kinds of block variable: an on/off switch of a channel (enumerated by the
#: whole-loan solver), a yes/no flag, or a continuous level in [0, 1].
BLOCK_KINDS = ("switch", "binary", "continuous")


@dataclass(frozen=True)
class Block:
    """A variable ``y`` in [0, 1] beside the loans' shares, with rows and a cost.

    A ``"switch"`` turns a semi-continuous channel (bulk transfer,
    securitisation) on; its ``fixed_cost`` (CNY yuan) lowers both the objective
    and this year's profit. The wage-pool model adds per-branch ``"continuous"``
    levels and ``"binary"`` within-tolerance flags whose ``fixed_cost`` is a
    weight in the objective only.
    """

    name: str
    fixed_cost: float = 0.0
    kind: str = "switch"

    @property
    def integer(self) -> bool:
        """Whether the variable is 0 or 1 in whole-loan mode."""
        return self.kind != "continuous"


@dataclass(frozen=True, eq=False)
class ResourceRows:
    """Linear rows ``lower <= matrix @ x + blocks @ y <= upper`` in natural units.

    ``rule`` is the policy key a row implements (``write_off.quota``...), ``unit``
    is ``"CNY"`` (yuan) or ``"loans"``; ``branch`` names the branch of a
    tolerance row; ``short`` words a miss of each row (see
    :meth:`~npl_disposal.policy.budgets.Limit.miss`). How the policy states each row,
    for the constraints table: ``limit`` its own number (a capacity, not the capacity
    times an on/off level), ``negate`` whether it bounds the row's negation (a profit
    floor of ``-max_loss`` is a fall of at most ``max_loss``), ``switch`` the on/off
    block that scales it.
    """

    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    matrix: sp.csc_matrix
    blocks: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    short: tuple[str, ...] = ()
    limit: np.ndarray | None = None
    negate: np.ndarray | None = None
    switch: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def stated(self) -> tuple[np.ndarray, np.ndarray, tuple[str | None, ...]]:
        """Each row as the policy states it: its number, whether negated, its switch."""
        k = len(self.names)
        bound = np.where(np.isfinite(self.lower), self.lower, self.upper)
        limit = self.limit if self.limit is not None else bound
        negate = self.negate if self.negate is not None else np.zeros(k, dtype=bool)
        switch = self.switch if len(self.switch) == k else (None,) * k
        return limit, negate, switch

    def words(self, row: int, amount: float) -> str:
        """The words for missing ``row`` by ``amount`` (its unit), for the diagnosis."""
        short = self.short[row] if row < len(self.short) and self.short[row] else ""
        text = short or self.names[row] + " misses by {x}"
        unit = self.unit[row]
        shown = millions(amount) if unit == MONEY else f"{amount:,.1f} loans"
        channel = self.rule[row].split(".")[1] if self.rule[row].startswith("channels.") else ""
        worded = text.format(x=shown, branch=self.branch[row], channel=channel)
        return _when(self.names[row], worded)

    @cached_property
    def reach(self) -> np.ndarray:
        """Each row's sum of absolute coefficients over every option, computed once.

        :func:`build_problem` records it row by row as the rows are built, sparing a
        pass over every stored coefficient (benchmarks/README.md, design measurements).
        """
        m = self.matrix
        return np.bincount(m.indices, weights=np.abs(m.data), minlength=m.shape[0])

    def weighed(self, weights: np.ndarray) -> np.ndarray:
        """``matrix.T @ weights``: every option's coefficients weighed by its rows' ``weights``.

        Pricing weighs only the few rows whose limits bind, and the rows with no weight
        add nothing: the weighed rows' own entries are added up, row by row in order
        (the same sums, in the same order, as the product), from a copy of those rows
        kept the first time each is weighed. A portfolio's ten or so pricing passes
        then read a row or two each instead of every column of the matrix. Matrices
        past :data:`ROW_COPY_LIMIT` entries take the product as it is.
        """
        m = self.matrix
        weighed = np.flatnonzero(weights)
        if m.nnz > ROW_COPY_LIMIT:
            return np.asarray(m.T @ weights)
        out = np.zeros(m.shape[1])
        for r, (cols, vals) in zip(weighed, self._row_entries(weighed), strict=True):
            np.add.at(out, cols, weights[r] * vals)
        return out

    def _row_entries(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Columns and coefficients of each row of ``rows``, copied out of the matrix once."""
        kept: dict[int, tuple[np.ndarray, np.ndarray]] = self.__dict__.setdefault("_by_row", {})
        missing = [int(r) for r in rows if int(r) not in kept]
        if missing:  # the rows' entries from one conversion to rows, kept without the rest
            by_row = self.matrix.tocsr()
            for r in missing:
                at = slice(by_row.indptr[r], by_row.indptr[r + 1])
                kept[r] = by_row.indices[at].copy(), by_row.data[at].copy()
        return [kept[int(r)] for r in rows]

    def frame(self) -> pd.DataFrame:
        """The rows as a table (without coefficients)."""
        return pd.DataFrame(
            {
                "name": self.names,
                "rule": self.rule,
                "unit": self.unit,
                "branch": self.branch,
                "lower": self.lower,
                "upper": self.upper,
            }
        )


class RowBuilder:
    """Accumulates rows in compressed row form; one call adds one row.

    A row is kept as its column positions (32-bit where the grid allows) and values,
    with no row index per entry; the matrix is then converted once to columns: a third
    of the memory of row, column and value triplets (benchmarks/README.md, design
    measurements).
    """

    def __init__(self, n: int, m: int, blocks: Sequence[Block]) -> None:
        self.n, self.m, self.blocks = n, m, [b.name for b in blocks]
        self._block_at = {name: j for j, name in enumerate(self.blocks)}
        self.index = np.int32 if n * m < 2**31 else np.int64
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.meta: list[tuple[str, str, str, str | None, float, float, str]] = []
        self.stated: list[tuple[float, bool, str | None]] = []
        self.block_coef: list[np.ndarray] = []
        self.reach: list[float] = []

    def add(
        self,
        name: str,
        rule: str,
        unit: str,
        cols: np.ndarray,
        vals: np.ndarray,
        lower: float = -np.inf,
        upper: float = np.inf,
        branch: str | None = None,
        block: dict[str, float] | np.ndarray | None = None,
        short: str = "",
        stated: tuple[float, bool, str | None] | None = None,
    ) -> None:
        """Add one row with coefficients ``vals`` on flattened options ``cols``.

        ``cols`` ascend; ``block`` gives the row's coefficients on on/off variables
        (by name, or as an array over every block in order);
        ``short`` words a miss (see :meth:`ResourceRows.words`); ``stated`` is how
        the policy states the row (its number, negated, its switch; default: the
        row's finite bound, as is).
        """
        self.c.append(np.asarray(cols, dtype=self.index))
        self.v.append(np.asarray(vals, dtype=np.float64))
        self.reach.append(float(np.abs(self.v[-1]).sum()))
        if isinstance(block, np.ndarray):
            coef = np.asarray(block, dtype=np.float64).copy()
        else:
            coef = np.zeros(len(self.blocks))
            for key, val in (block or {}).items():
                coef[self._block_at[key]] = val
        self.block_coef.append(coef)
        self.meta.append((name, rule, unit, branch, lower, upper, short))
        bound = lower if np.isfinite(lower) else upper
        self.stated.append(stated if stated is not None else (float(bound), False, None))

    def build(self) -> ResourceRows:
        """The rows as a :class:`ResourceRows`; their names must be unique."""
        _check_unique([m[0] for m in self.meta])
        k = len(self.meta)
        matrix = self._by_column()
        self.c.clear()
        self.v.clear()
        names, rule, unit, branch, lower, upper, short = (
            zip(*self.meta, strict=True) if k else ((),) * 7
        )
        rows = ResourceRows(
            names=tuple(names),
            rule=tuple(rule),
            unit=tuple(unit),
            branch=tuple(branch),
            matrix=matrix,
            blocks=np.array(self.block_coef).reshape(k, len(self.blocks)),
            lower=np.array(lower, dtype=float),
            upper=np.array(upper, dtype=float),
            short=tuple(short),
            limit=np.array([s[0] for s in self.stated], dtype=float),
            negate=np.array([s[1] for s in self.stated], dtype=bool),
            switch=tuple(s[2] for s in self.stated),
        )
        rows.__dict__["reach"] = np.array(self.reach)  # as ResourceRows.reach, known already
        return rows

    def _by_column(self) -> sp.csc_matrix:
        """The rows as one matrix by column (the solvers take the columns of chosen loans).

        Each row's entries are counted into their columns and then placed there,
        rows in order, so every column lists its rows ascending. Column ranges run
        on threads. This takes half the time of joining the rows by row and
        converting, and never holds the matrix twice (benchmarks/README.md, design measurements).
        """
        k, width = len(self.c), self.n * self.m
        nnz = sum(c.size for c in self.c)
        index = self.index if nnz < 2**31 and width < 2**31 else np.int64
        indptr = np.zeros(width + 1, dtype=index)
        ranges = _column_ranges(width, thread_count())
        bounds = [np.searchsorted(c, [r.start for r in ranges] + [width]) for c in self.c]

        def count(t: int) -> None:
            for c, b in zip(self.c, bounds, strict=True):
                indptr[1:][c[b[t] : b[t + 1]]] += 1  # a row's columns are distinct

        for_each(count, range(len(ranges)))
        np.cumsum(indptr, out=indptr)
        if int(indptr[-1]) != nnz:
            raise AssertionError("a constraint row lists an option twice")
        indices = np.empty(nnz, dtype=np.int32 if k < 2**31 else np.int64)
        data = np.empty(nnz)
        place = indptr[:-1].copy()

        def fill(t: int) -> None:
            for r, (c, v, b) in enumerate(zip(self.c, self.v, bounds, strict=True)):
                cols, vals = c[b[t] : b[t + 1]], v[b[t] : b[t + 1]]
                at = place[cols]
                indices[at] = r
                data[at] = vals
                place[cols] = at + 1

        for_each(fill, range(len(ranges)))
        return sp.csc_matrix((data, indices, indptr), shape=(k, width))


def _check_unique(names: Sequence[str]) -> None:
    """Raise when two rows share a name (results are keyed by it, e.g. summary.json)."""
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise RuntimeError(
            f"internal error: constraint name(s) {', '.join(twice)} given to more than one "
            "row of the problem; each row needs its own name"
        )


def _column_ranges(width: int, parts: int) -> list[range]:
    """``range(width)`` cut into ``parts`` consecutive pieces."""
    cuts = np.linspace(0, width, max(parts, 1) + 1).astype(np.int64)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(cuts)]


def _loans_by_branch(branch_of: np.ndarray) -> Callable[[int], np.ndarray]:
    """A lookup of each branch's loan positions (ascending), from one stable sort.

    Branch codes fit 16 bits, for which numpy's stable sort is a radix sort.
    """
    small = branch_of.size == 0 or (branch_of.min() >= -1 and branch_of.max() < 2**15)
    order = np.argsort(branch_of.astype(np.int16) if small else branch_of, kind="stable")
    counts = np.bincount(branch_of[branch_of >= 0]) if small else None
    if counts is None:
        starts = np.searchsorted(branch_of[order], np.arange(int(branch_of.max(initial=-1)) + 2))
    else:  # codes -1 (no branch) sort first
        starts = np.concatenate([[0], np.cumsum(counts)]) + int((branch_of < 0).sum())
    none = order[:0]
    # A branch above every code present (a branch of the table without loans) has none.
    return lambda b: order[starts[b] : starts[b + 1]] if b + 1 < starts.size else none

class _Picked:
    """The options a measure selected on the grid, their arrays computed when read."""

    def __init__(self, cells: Cells, cols: np.ndarray) -> None:
        self._cells, self.cols = cells, cols

    @cached_property
    def loans(self) -> np.ndarray:
        """Each option's loan (row of the grid)."""
        return self.cols // self._cells.m

    @cached_property
    def balance(self) -> np.ndarray:
        """The balance each option takes off the book, CNY yuan."""
        cells = self._cells
        if cells.disposal is not None:
            return cells.disposal.ravel()[self.cols]
        return cells.balance[self.loans]

    def kept(self, period: int) -> np.ndarray:
        """Each option's loan's expected NPL balance at the end of ``period`` if kept, CNY."""
        if self._cells.path is None:
            raise ValueError("a one-period problem has no NPL path")
        return self._cells.path[self.loans, period - 1]

    @cached_property
    def pnl(self) -> np.ndarray:
        """Each option's profit impact, CNY yuan."""
        return self._cells.pnl.ravel()[self.cols]

    @cached_property
    def derecognised(self) -> np.ndarray:
        """Each option's derecognised share."""
        return self._cells.derecognised.ravel()[self.cols]


@dataclass(eq=False)
class Cells:
    """The problem's eligible options as a measure sees them (grid positions, ascending).

    A channel's eligible loans and each branch's loans are listed once, for every
    row that needs them.
    """

    channels: tuple[str, ...]
    eligible: np.ndarray
    balance: np.ndarray
    pnl: np.ndarray
    derecognised: np.ndarray
    inclusive: np.ndarray
    branch_of: np.ndarray
    index: type = np.int64
    small_micro: np.ndarray | None = None
    column_channel: tuple[str, ...] | None = None
    column_period: np.ndarray | None = None
    disposal: np.ndarray | None = None
    path: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.m = len(self.channels)
        self._channel_loans: dict[int, np.ndarray] = {}
        self._by_branch: Callable[[int], np.ndarray] | None = None

    def branch_loans(self, branch: int) -> np.ndarray:
        """Positions (ascending) of the loans of branch code ``branch``."""
        if self._by_branch is None:
            self._by_branch = _loans_by_branch(self.branch_of)
        return self._by_branch(branch)

    def has(self, measure: Measure) -> bool:
        """Whether any column of the grid is the measure's channel."""
        return measure.channel is None or measure.channel in self._column_channel

    def columns(self, measure: Measure) -> np.ndarray | None:
        """The grid columns the measure counts (None: every column)."""
        if measure.channel is None and measure.periods is None:
            return None
        keep = np.ones(self.m, dtype=bool)
        if measure.channel is not None:
            keep &= np.array([c == measure.channel for c in self._column_channel], dtype=bool)
        if measure.periods is not None:
            if self.column_period is None:
                raise ValueError("a one-period problem has no periods")
            keep &= np.isin(self.column_period, measure.periods)
        return np.flatnonzero(keep)

    @property
    def _column_channel(self) -> tuple[str, ...]:
        return self.column_channel if self.column_channel is not None else self.channels

    def pick(self, measure: Measure, branch: int | None = None) -> _Picked:
        """The eligible options ``measure`` counts (of branch code ``branch`` when given)."""
        m = self.m
        columns = self.columns(measure)
        flag = self.segment(measure)
        if branch is None and columns is not None and columns.size == 1 and flag is None:
            channel = int(columns[0])
            if channel not in self._channel_loans:  # several rows share a channel's loans
                self._channel_loans[channel] = np.flatnonzero(self.eligible[:, channel])
            loans = self._channel_loans[channel]
            cols = loans.astype(self.index) * self.index(m) + self.index(channel)
            return _Picked(self, cols)
        wanted = np.ones(m, dtype=bool)
        if columns is not None:
            wanted = np.zeros(m, dtype=bool)
            wanted[columns] = True
        if branch is None:
            keep = self.eligible & wanted
            if flag is not None:
                keep = keep & flag[:, None]
            return _Picked(self, np.flatnonzero(keep.ravel()))
        loans = self.branch_loans(branch)
        if flag is not None:
            loans = loans[flag[loans]]
        keep = self.eligible[loans] & wanted
        return _Picked(self, (loans[:, None] * m + np.arange(m))[keep])

    def segment(self, measure: Measure) -> np.ndarray | None:
        """The loans the measure keeps by their flag (a mask), or None for all."""
        if measure.segment == "small_micro":
            if self.small_micro is None:
                raise ValueError("this problem was built without the loans' small_micro flags")
            return self.small_micro
        return self.inclusive if measure.segment == "inclusive" else None


def add_limits(
    rows: RowBuilder,
    cells: Cells,
    limits: Sequence[Limit],
    branches: Sequence[str],
    blocks: Sequence[str],
) -> None:
    """Add one row per limit (rows of channels no loan is offered are left out).

    A limit on a per-branch measure is the row of its branch. A switched limit is
    ``measure - amount * y`` against 0, so the switched-off channel takes nothing; an
    infinite amount is then replaced by all the channel is offered. Fixed costs of
    on/off channels that exist (``blocks``) enter the row on their blocks.
    """
    code = {name: b for b, name in enumerate(branches)}
    for limit in limits:
        measure = limit.measure
        if not cells.has(measure):
            continue
        picked = cells.pick(measure, code[str(limit.branch)] if measure.by_branch else None)
        coef = measure.coefficients(picked)
        nonzero = coef != 0
        cols = picked.cols
        if not nonzero.all():
            cols, coef = cols[nonzero], coef[nonzero]
        block = {name: -cost for name, cost in limit.costs if name in blocks}
        amount = limit.amount
        if limit.switch is not None:
            block[limit.switch] = -(amount if math.isfinite(amount) else float(coef.sum()))
            amount = 0.0
        lower, upper = (amount, np.inf) if limit.sense == ">=" else (-np.inf, amount)
        stated = (-limit.amount if limit.negate else limit.amount, limit.negate, limit.switch)
        rows.add(limit.name, limit.rule, measure.unit, cols, coef, lower=lower, upper=upper,
                 branch=limit.branch, block=block or None, short=limit.short,
                 stated=stated)  # fmt: skip


def _when(name: str, text: str) -> str:
    """``text`` led by the period or year a schedule's row ``name@t`` / ``name@yearY`` is for.

    Rows whose words already say when (a tolerance checked at a period) are left as they are.
    """
    _, at, when = name.rpartition("@")
    if not at or "period" in text or "year" in text:
        return text
    if when.isdigit():
        return f"in period {when}, {text}"
    if when.startswith("year") and when[4:].isdigit():
        return f"in year {when[4:]}, {text}"
    return text

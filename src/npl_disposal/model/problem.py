"""The allocation problem as data (DESIGN section 4), built vectorised.

Loans × channels live on a dense grid of shape ``(n_loans, n_channels)``:
``value``, ``pnl`` and ``derecognised`` per option and an ``eligible`` mask that
already applies the per-loan rules (long ageing, write-off priority). Every
other rule is a row of :class:`ResourceRows`: a sparse row over the grid's
flattened options (index ``loan * n_channels + channel``) plus coefficients on
the on/off variables of the two semi-continuous :class:`Block` s, with a lower
and an upper limit. Rows are in their natural unit (CNY yuan or loans).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal._memory import release_unused
from npl_disposal._threads import for_each, thread_count
from npl_disposal.io._ids import positions_in
from npl_disposal.io.options import channel_order, read_options
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.tables import (
    TableSource,
)
from npl_disposal.policy import ChannelLimits, Policy, load_policy

__all__ = ["AllocationProblem", "Block", "ResourceRows", "build_problem"]

MONEY, LOANS = "CNY", "loans"


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
    tolerance row.
    """

    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    matrix: sp.csc_matrix
    blocks: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def reach(self) -> np.ndarray:
        """Each row's sum of absolute coefficients over every option, computed once.

        :func:`build_problem` records it row by row as the rows are built (at 10M
        loans a pass over the 150M stored coefficients takes 1.4 s).
        """
        m = self.matrix
        return np.bincount(m.indices, weights=np.abs(m.data), minlength=m.shape[0])

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


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Everything the solver needs, as arrays. Build it with :func:`build_problem`."""

    loan_ids: np.ndarray
    channels: tuple[str, ...]
    balance: np.ndarray
    branch_index: np.ndarray
    branches: tuple[str, ...]
    inclusive: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    derecognised: np.ndarray
    offered: np.ndarray
    eligible: np.ndarray
    rows: ResourceRows
    blocks: tuple[Block, ...]
    mode: str
    portfolio: Portfolio = field(repr=False)
    policy: Policy = field(repr=False)
    options: pd.DataFrame = field(repr=False)

    @property
    def n_loans(self) -> int:
        """Number of loans."""
        return len(self.loan_ids)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    def channel(self, name: str) -> int:
        """Column of channel ``name`` in the grid, or -1 if no loan is offered it."""
        return self.channels.index(name) if name in self.channels else -1

    @property
    def block_cost(self) -> np.ndarray:
        """Objective coefficient (CNY yuan) of each block's on/off variable."""
        return -np.array([b.fixed_cost for b in self.blocks], dtype=float)

    @cached_property
    def eligible_value(self) -> np.ndarray:
        """``value`` where eligible, -inf elsewhere (CNY yuan), computed once.

        The pricing loop adds the rows' prices to it a dozen times; adding
        beats masking the ineligible options each time (at 1M loans 21 ms
        against 32 ms a pass).
        """
        return np.where(self.eligible, self.value, -np.inf)

    @property
    def switches(self) -> np.ndarray:
        """Mask of the blocks that switch a channel on or off."""
        return np.array([b.kind == "switch" for b in self.blocks], dtype=bool)

    @property
    def forced_out(self) -> np.ndarray:
        """Loans whose retain option the long-age or write-off-priority rule removed."""
        r = self.channel("retain")
        return self.offered[:, r] & ~self.eligible[:, r]

    def summary(self) -> str:
        """Size of the problem and the rules in force."""
        return (
            f"{self.n_loans:,} loans x {self.n_channels} channels "
            f"({int(self.eligible.sum()):,} eligible options), {len(self.rows)} rows, "
            f"{len(self.blocks)} on/off blocks, mode {self.mode}; "
            f"{int(self.forced_out.sum()):,} loans must leave the book"
        )


#: The per-loan arrays of :class:`AllocationProblem` (one row per loan, in portfolio order).
LOAN_ARRAYS = ("loan_ids", "balance", "branch_index", "inclusive", "value", "pnl",
               "derecognised", "offered", "eligible")  # fmt: skip


def loan_arrays(problem: AllocationProblem, loans: np.ndarray) -> dict[str, Any]:
    """The per-loan arrays of ``problem`` at ``loans`` (a mask or positions)."""
    return {name: getattr(problem, name)[loans] for name in LOAN_ARRAYS}


def build_problem(
    portfolio: Portfolio | TableSource,
    policy: Policy | TableSource | dict[str, object],
    options: pd.DataFrame | TableSource,
    branches: TableSource | None = None,
) -> AllocationProblem:
    """Build the allocation problem of DESIGN section 4 from tables, vectorised.

    ``portfolio`` is a :class:`Portfolio` or a loans table; ``options`` the
    options table (``loan_id, channel, value, pnl, derecognised``).
    """
    pf = read_portfolio(portfolio, branches)
    pol = load_policy(policy)
    if isinstance(options, pd.DataFrame) and "_loan" in options.columns:
        opts = options
    else:
        opts = read_options(options, pf)
    channels = channel_order(opts["channel"])
    n, m = pf.n_loans, len(channels)
    # Each option's cell in the (loan, channel) grids, computed once for the four scatters.
    cell = opts["_loan"].to_numpy().astype(np.int64) * m + positions_in(opts["channel"], channels)
    grids = {col: np.zeros((n, m)) for col in ("value", "pnl", "derecognised")}
    offered = np.zeros((n, m), dtype=bool)

    def scatter(col: str) -> None:  # NumPy's scatter releases the interpreter lock
        if col == "offered":
            offered.ravel()[cell] = True
        else:
            grids[col].ravel()[cell] = opts[col].to_numpy(dtype=float)

    for_each(scatter, [*grids, "offered"])
    loans = pf.loans
    eligible = _apply_loan_rules(offered, channels, loans, pol)
    branch_names = _branch_names(pf)
    branch_index = positions_in(loans["branch"], branch_names)
    balance = loans["balance"].to_numpy(dtype=float)
    inclusive = loans["inclusive"].to_numpy(dtype=bool)
    wage = WagePoolTerms.of(pf, pol, channels, balance, grids, eligible, branch_index,
                            branch_names)  # fmt: skip
    blocks = _blocks(pol, channels) + wage.blocks()
    rows = _rows(
        pf, pol, channels, balance, grids, eligible, branch_index, branch_names, blocks, wage
    )
    release_unused()
    return AllocationProblem(
        loan_ids=loans["loan_id"].to_numpy(dtype=object),
        channels=channels,
        balance=balance,
        branch_index=branch_index,
        branches=branch_names,
        inclusive=inclusive,
        value=grids["value"],
        pnl=grids["pnl"],
        derecognised=grids["derecognised"],
        offered=offered,
        eligible=eligible,
        rows=rows,
        blocks=blocks,
        mode=pol.mode,
        portfolio=pf,
        policy=pol,
        options=opts,
    )


def _branch_names(pf: Portfolio) -> tuple[str, ...]:
    if pf.branches is not None:
        return tuple(str(b) for b in pf.branches["branch"])
    return tuple(str(b) for b in pd.unique(pf.loans["branch"].astype(object)))


def _apply_loan_rules(
    offered: np.ndarray, channels: tuple[str, ...], loans: pd.DataFrame, policy: Policy
) -> np.ndarray:
    """Eligibility after rules 2 (long ageing) and 3 (write-off priority)."""
    eligible = offered.copy()
    retain = channels.index("retain")
    if policy.long_age is not None:
        long_aged = loans["npl_age_months"].to_numpy() >= policy.long_age.months
        others = np.delete(offered, retain, axis=1).any(axis=1)
        eligible[long_aged & others, retain] = False
    if "write_off" in channels:
        priority = (
            loans["small_micro"].to_numpy(dtype=bool) & offered[:, channels.index("write_off")]
        )
        eligible[priority, retain] = False
        if "restructure" in channels:
            eligible[priority, channels.index("restructure")] = False
    return eligible


def _blocks(policy: Policy, channels: tuple[str, ...]) -> tuple[Block, ...]:
    blocks = []
    if policy.bulk_transfer is not None:
        blocks.append(Block("bulk_transfer", 0.0))
    if policy.securitisation is not None:
        blocks.append(Block("securitisation", float(policy.securitisation.fixed_cost)))
    for name, limits in policy.channels.items():
        if limits.switched and name in channels:
            blocks.append(Block(name, float(limits.fixed_cost)))
    return tuple(blocks)


class _RowBuilder:
    """Accumulates rows in compressed row form; one call adds one row.

    A row is kept as its column positions (32-bit where the grid allows) and
    values, with no row index per entry; the matrix is then converted once to
    columns. At 10M loans this holds a third of the memory of row, column and
    value triplets.
    """

    def __init__(
        self,
        n: int,
        m: int,
        blocks: tuple[Block, ...],
        eligible: np.ndarray,
        branch_of: np.ndarray,
    ) -> None:
        self.n, self.m, self.blocks = n, m, [b.name for b in blocks]
        self.eligible, self.branch_of = eligible, branch_of
        self._by_branch: Callable[[int], np.ndarray] | None = None
        self._channel_loans: dict[int, np.ndarray] = {}
        self.index = np.int32 if n * m < 2**31 else np.int64
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.meta: list[tuple[str, str, str, str | None, float, float]] = []
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
        block: dict[str, float] | None = None,
    ) -> None:
        """Add one row with coefficients ``vals`` on flattened options ``cols``."""
        self.c.append(np.asarray(cols, dtype=self.index))
        self.v.append(np.asarray(vals, dtype=np.float64))
        self.reach.append(float(np.abs(self.v[-1]).sum()))
        coef = np.zeros(len(self.blocks))
        for key, val in (block or {}).items():
            coef[self.blocks.index(key)] = val
        self.block_coef.append(coef)
        self.meta.append((name, rule, unit, branch, lower, upper))

    def channel_row(
        self, name: str, rule: str, unit: str, channel: int, weight: np.ndarray, **kw: object
    ) -> None:
        """A row summing ``weight[i] * x[i, channel]`` over the loans eligible for it."""
        if channel not in self._channel_loans:  # several rows share a channel's loans
            self._channel_loans[channel] = np.flatnonzero(self.eligible[:, channel])
        loans = self._channel_loans[channel]
        coef = weight[loans]
        nonzero = coef != 0
        if not nonzero.all():
            loans, coef = loans[nonzero], coef[nonzero]
        cols = loans.astype(self.index) * self.index(self.m) + self.index(channel)
        self.add(name, rule, unit, cols, coef, **kw)  # type: ignore[arg-type]

    def branch_loans(self, branch: int) -> np.ndarray:
        """Positions (ascending) of the loans of branch code ``branch``."""
        if self._by_branch is None:
            self._by_branch = _loans_by_branch(self.branch_of)
        return self._by_branch(branch)

    def build(self) -> ResourceRows:
        """The rows as a :class:`ResourceRows`."""
        k = len(self.meta)
        matrix = self._by_column()
        self.c.clear()
        self.v.clear()
        names, rule, unit, branch, lower, upper = zip(*self.meta, strict=True) if k else ((),) * 6
        rows = ResourceRows(
            names=tuple(names),
            rule=tuple(rule),
            unit=tuple(unit),
            branch=tuple(branch),
            matrix=matrix,
            blocks=np.array(self.block_coef).reshape(k, len(self.blocks)),
            lower=np.array(lower, dtype=float),
            upper=np.array(upper, dtype=float),
        )
        rows.__dict__["reach"] = np.array(self.reach)  # as ResourceRows.reach, known already
        return rows

    def _by_column(self) -> sp.csc_matrix:
        """The rows as one matrix by column (the solvers take the columns of chosen loans).

        Each row's entries are counted into their columns and then placed there,
        rows in order, so every column lists its rows ascending. Column ranges run
        on threads. At 10M loans this takes half the time of joining the rows by
        row and converting (4.3 s), and never holds the matrix twice.
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


def _column_ranges(width: int, parts: int) -> list[range]:
    """``range(width)`` cut into ``parts`` consecutive pieces."""
    cuts = np.linspace(0, width, max(parts, 1) + 1).astype(np.int64)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(cuts)]


def tolerance_requirement(
    npl: np.ndarray, inclusive_loans: np.ndarray, threshold: float
) -> np.ndarray:
    """Inclusive NPL (CNY yuan) each branch must derecognise to meet the threshold.

    From (N - D) <= tau (L - D): D >= (N - tau L) / (1 - tau); negative means none.
    """
    return (npl - threshold * inclusive_loans) / (1.0 - threshold)


def _rows(
    pf: Portfolio,
    pol: Policy,
    channels: tuple[str, ...],
    balance: np.ndarray,
    grids: dict[str, np.ndarray],
    eligible: np.ndarray,
    branch_index: np.ndarray,
    branch_names: tuple[str, ...],
    blocks: tuple[Block, ...],
    wage: WagePoolTerms,
) -> ResourceRows:
    n, m = eligible.shape
    rb = _RowBuilder(n, m, blocks, eligible, branch_index)
    ch = {name: i for i, name in enumerate(channels)}
    ones = np.ones(n)
    if pol.write_off is not None and "write_off" in ch:
        rb.channel_row(
            "write_off_quota",
            "write_off.quota",
            MONEY,
            ch["write_off"],
            balance,
            upper=pol.write_off.quota,
        )
    if pol.bulk_transfer is not None and "bulk_transfer" in ch:
        bt = pol.bulk_transfer
        rb.channel_row(
            "bulk_transfer_capacity",
            "bulk_transfer.capacity",
            MONEY,
            ch["bulk_transfer"],
            balance,
            upper=0.0,
            block={"bulk_transfer": -bt.capacity},
        )
        if bt.min_loans > 0:
            rb.channel_row(
                "bulk_transfer_min_loans",
                "bulk_transfer.min_loans",
                LOANS,
                ch["bulk_transfer"],
                ones,
                lower=0.0,
                block={"bulk_transfer": -float(bt.min_loans)},
            )
    if pol.securitisation is not None and "securitisation" in ch:
        sec = pol.securitisation
        rb.channel_row(
            "securitisation_max_pool",
            "securitisation.max_pool",
            MONEY,
            ch["securitisation"],
            balance,
            upper=0.0,
            block={"securitisation": -sec.max_pool},
        )
        if sec.min_pool > 0:
            rb.channel_row(
                "securitisation_min_pool",
                "securitisation.min_pool",
                MONEY,
                ch["securitisation"],
                balance,
                lower=0.0,
                block={"securitisation": -sec.min_pool},
            )
    if pol.restructure is not None and "restructure" in ch:
        rb.channel_row(
            "restructure_max_loans",
            "restructure.max_loans",
            LOANS,
            ch["restructure"],
            ones,
            upper=float(pol.restructure.max_loans),
        )
    for name, limits in pol.channels.items():
        if name in ch:
            _channel_rows(rb, name, limits, ch[name], balance, eligible)
    if pol.profit is not None:
        cols = np.flatnonzero(eligible.ravel())
        fixed = {b.name: -b.fixed_cost for b in blocks if b.fixed_cost and b.kind == "switch"}
        rb.add(
            "profit_max_loss",
            "profit.max_loss",
            MONEY,
            cols,
            grids["pnl"].ravel()[cols],
            lower=-pol.profit.max_loss,
            block=fixed,
        )
    if pol.tolerance is not None and pol.tolerance.enforce and pf.branches is not None:
        _tolerance_rows(
            rb, pf, pol, balance, grids["derecognised"], eligible, branch_index, branch_names
        )
    wage.add_rows(rb)
    return rb.build()


def _channel_rows(
    rb: _RowBuilder,
    name: str,
    limits: ChannelLimits,
    channel: int,
    balance: np.ndarray,
    eligible: np.ndarray,
) -> None:
    """``[channels.NAME]``: capacity, minimum size and loan counts of a user channel."""
    ones = np.ones(balance.size)
    rule = f"channels.{name}"
    on = limits.switched
    if math.isfinite(limits.capacity) or on:
        # Switched off, the channel takes nothing: its capacity (or all it is offered) times y.
        cap = (
            limits.capacity
            if math.isfinite(limits.capacity)
            else balance[eligible[:, channel]].sum()
        )
        rb.channel_row(f"{name}_capacity", f"{rule}.capacity", MONEY, channel, balance,
                       upper=0.0 if on else cap, block={name: -cap} if on else None)  # fmt: skip
    if limits.min_balance > 0:
        rb.channel_row(f"{name}_min_balance", f"{rule}.min_balance", MONEY, channel, balance,
                       lower=0.0, block={name: -limits.min_balance})  # fmt: skip
    if math.isfinite(limits.max_loans):
        rb.channel_row(f"{name}_max_loans", f"{rule}.max_loans", LOANS, channel, ones,
                       upper=float(limits.max_loans))  # fmt: skip
    if limits.min_loans > 0:
        rb.channel_row(f"{name}_min_loans", f"{rule}.min_loans", LOANS, channel, ones,
                       lower=0.0, block={name: -float(limits.min_loans)})  # fmt: skip


def _tolerance_rows(
    rb: _RowBuilder,
    pf: Portfolio,
    pol: Policy,
    balance: np.ndarray,
    derecognised: np.ndarray,
    eligible: np.ndarray,
    branch_index: np.ndarray,
    branch_names: tuple[str, ...],
) -> None:
    assert pol.tolerance is not None and pf.branches is not None
    inclusive = pf.loans["inclusive"].to_numpy(dtype=bool)
    k = len(branch_names)
    npl = np.bincount(branch_index[inclusive], balance[inclusive], minlength=k)
    total = pf.branches["inclusive_loans"].to_numpy(dtype=float)
    need = tolerance_requirement(npl, total, pol.tolerance.threshold)
    for b in np.flatnonzero(need > 0):
        loans = rb.branch_loans(int(b))
        loans = loans[inclusive[loans]]
        coef = balance[loans, None] * derecognised[loans] * eligible[loans]
        keep = coef != 0
        rb.add(
            f"tolerance[{branch_names[b]}]",
            "tolerance",
            MONEY,
            (loans[:, None] * rb.m + np.arange(rb.m))[keep],
            coef[keep],
            lower=float(need[b]),
            branch=branch_names[b],
        )


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
    return lambda b: order[starts[b] : starts[b + 1]]


_NONE = np.zeros(0, dtype=np.int64)
_NONE_F = np.zeros(0)


@dataclass(frozen=True, eq=False)
class WagePoolTerms:
    """The wage-pool model of ``[wage_pool] weight / max_fall``, per branch with a wage rate.

    For branch k with wage rate r_k, two continuous levels and (where needed) one
    flag, all in [0, 1]: the NPL loss ``U_k * loss_k >= -(branch pnl) + fixed-cost
    share``, the loss counted against the wage pool ``U_k * counted_k`` (at least
    ``consider_share`` of the loss, or all of it unless ``within_k``), and
    ``within_k`` = 1 only if the branch's derecognised inclusive NPL brings it
    within tolerance. ``U_k`` (CNY yuan) is the most the branch can lose. The
    objective loses ``weight * r_k * U_k * counted_k``; ``max_fall`` caps
    ``r_k * U_k * counted_k``. The securitisation fixed cost is charged to a
    branch at ``fixed_cost / min_pool`` per securitised yuan (at least its share
    by balance), or in full when there is no minimum pool; a user channel's fixed
    cost is charged to every branch in full. The model never understates a
    branch's loss, so a plan within ``max_fall`` here is within it
    in :func:`~npl_disposal.model.figures.branch_figures`.
    """

    branches: tuple[str, ...]
    index: np.ndarray
    rate: np.ndarray
    upper: np.ndarray
    flagged: np.ndarray
    margin: np.ndarray
    policy: Policy
    pnl: np.ndarray
    derecognised: np.ndarray
    branch_of: np.ndarray
    balance: np.ndarray
    inclusive: np.ndarray
    sec: int
    channels: tuple[str, ...]

    @classmethod
    def of(
        cls,
        pf: Portfolio,
        pol: Policy,
        channels: tuple[str, ...],
        balance: np.ndarray,
        grids: dict[str, np.ndarray],
        eligible: np.ndarray,
        branch_index: np.ndarray,
        branch_names: tuple[str, ...],
    ) -> WagePoolTerms:
        """The terms for a problem (none unless ``[wage_pool]`` sets a weight or a limit)."""
        wage = pol.wage_pool
        k = len(branch_names)
        empty = np.zeros(0, dtype=np.int64)
        sec = channels.index("securitisation") if "securitisation" in channels else -1
        inclusive = pf.loans["inclusive"].to_numpy(dtype=bool)
        same = (pol, grids["pnl"], grids["derecognised"], branch_index, balance, inclusive, sec,
                channels)  # fmt: skip
        if wage is None or not wage.optimised or pf.branches is None:
            return cls((), empty, np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0),
                       *same)  # fmt: skip
        table = pf.branches.set_index("branch").reindex(list(branch_names))
        rate = np.full(k, wage.rate)
        if "wage_rate" in table:
            given = table["wage_rate"].to_numpy(dtype=float)
            rate = np.where(np.isnan(given), rate, given)
        worst = np.where(eligible, -grids["pnl"], -np.inf).max(axis=1).clip(min=0.0)
        upper = np.bincount(branch_index, worst, minlength=k)
        upper = upper + cls._fixed_cost_bound(pol, balance, eligible, branch_index, k, sec)
        keep = np.flatnonzero((rate > 0) & (upper > 0))
        npl = np.bincount(branch_index[inclusive], balance[inclusive], minlength=k)
        total = table["inclusive_loans"].to_numpy(dtype=float)
        tol = pol.tolerance
        margin = np.zeros(k)
        flagged = np.zeros(k, dtype=bool)
        if tol is not None and not tol.enforce and wage.consider_share < 1.0:
            margin = np.maximum(npl - tol.threshold * total, 0.0)
            flagged = margin > 0
        return cls(
            tuple(branch_names[b] for b in keep), keep, rate[keep], upper[keep], flagged[keep],
            margin[keep], *same,
        )  # fmt: skip

    @staticmethod
    def _fixed_cost_bound(
        pol: Policy,
        balance: np.ndarray,
        eligible: np.ndarray,
        branch_index: np.ndarray,
        k: int,
        sec: int,
    ) -> np.ndarray:
        """Most securitisation fixed cost (CNY) the model can charge each branch."""
        spec = pol.securitisation
        others = sum(lim.fixed_cost for lim in pol.channels.values())  # charged in full
        if spec is None or sec < 0 or spec.fixed_cost <= 0:
            return np.full(k, others)
        if spec.min_pool <= 0:
            return np.full(k, spec.fixed_cost + others)
        pool = np.bincount(branch_index, balance * eligible[:, sec], minlength=k)
        return spec.fixed_cost * np.minimum(pool, spec.max_pool) / spec.min_pool + others

    def blocks(self) -> tuple[Block, ...]:
        """The per-branch variables (loss, counted loss, within-tolerance flag)."""
        wage = self.policy.wage_pool_or_default
        out: list[Block] = []
        for b, name in enumerate(self.branches):
            cost = wage.weight * self.rate[b] * self.upper[b]
            out += [Block(f"wage_pool_loss[{name}]", 0.0, "continuous"),
                    Block(f"wage_pool_counted[{name}]", float(cost), "continuous")]  # fmt: skip
            if self.flagged[b]:
                out.append(Block(f"wage_pool_within[{name}]", 0.0, "binary"))
        return tuple(out)

    def add_rows(self, rb: _RowBuilder) -> None:
        """Add the rows that define each branch's loss, counted loss, flag and limit."""
        wage = self.policy.wage_pool_or_default
        m = self.pnl.shape[1]
        for b, name in enumerate(self.branches):
            loss, counted = f"wage_pool_loss[{name}]", f"wage_pool_counted[{name}]"
            u = float(self.upper[b])
            loans = rb.branch_loans(int(self.index[b]))
            cols = (loans[:, None] * m + np.arange(m)).ravel()
            coef = self.pnl[loans].ravel().copy()
            block = {loss: u}
            self._charge_fixed_cost(coef, loans, block)
            keep = coef != 0
            rb.add(loss, "wage_pool.loss", MONEY, cols[keep], coef[keep], lower=0.0,
                   branch=name, block=block)  # fmt: skip
            if self.flagged[b]:
                flag = f"wage_pool_within[{name}]"
                self._counted_row(rb, counted, name, {counted: u, loss: -wage.consider_share * u})
                outside = {counted: u, loss: -u, flag: (1.0 - wage.consider_share) * u}
                self._counted_row(rb, f"wage_pool_outside[{name}]", name, outside)
                self._within_row(rb, b, name, flag, loans)
            else:
                share = wage.consider_share if self._always_within(b) else 1.0
                self._counted_row(rb, counted, name, {counted: u, loss: -share * u})
            if np.isfinite(wage.max_fall):
                rb.add(f"wage_pool_fall[{name}]", "wage_pool.max_fall", MONEY, _NONE, _NONE_F,
                       upper=wage.max_fall, branch=name,
                       block={counted: float(self.rate[b]) * u})  # fmt: skip

    @staticmethod
    def _counted_row(rb: _RowBuilder, row: str, branch: str, block: dict[str, float]) -> None:
        """A row over block variables only: ``sum(block coefficients x levels) >= 0``."""
        rb.add(row, "wage_pool.consider_share", MONEY, _NONE, _NONE_F, lower=0.0,
               branch=branch, block=block)  # fmt: skip

    def _always_within(self, b: int) -> bool:
        """Whether the branch is within tolerance whatever the plan (enforced, or no excess)."""
        tol = self.policy.tolerance
        return tol is not None and (tol.enforce or self.margin[b] <= 0)

    def _charge_fixed_cost(
        self, coef: np.ndarray, loans: np.ndarray, block: dict[str, float]
    ) -> None:
        for name, limits in self.policy.channels.items():
            if limits.fixed_cost > 0 and name in self.channels:
                block[name] = -limits.fixed_cost  # a user channel's cost, in full
        spec = self.policy.securitisation
        if spec is None or self.sec < 0 or spec.fixed_cost <= 0:
            return
        if spec.min_pool > 0:
            m = self.pnl.shape[1]
            balance = self.balance[loans]
            coef.reshape(-1, m)[:, self.sec] -= spec.fixed_cost * balance / spec.min_pool
        else:
            block["securitisation"] = -spec.fixed_cost

    def _within_row(
        self, rb: _RowBuilder, b: int, name: str, flag: str, branch_loans: np.ndarray
    ) -> None:
        assert self.policy.tolerance is not None
        tau = self.policy.tolerance.threshold
        loans = branch_loans[self.inclusive[branch_loans]]
        m = self.pnl.shape[1]
        cols = (loans[:, None] * m + np.arange(m)).ravel()
        coef = ((1.0 - tau) * self.balance[loans, None] * self.derecognised[loans]).ravel()
        keep = coef != 0
        rb.add(f"wage_pool_within[{name}]", "wage_pool.within", MONEY, cols[keep], coef[keep],
               lower=0.0, branch=name, block={flag: -self.margin[b]})  # fmt: skip

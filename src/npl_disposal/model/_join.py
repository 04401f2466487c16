"""A plan joined to the loan table and the options table, on integer keys.

:mod:`npl_disposal.model.verify` and :mod:`npl_disposal.model.figures` recompute rules and
figures from the tables a plan names (never from the solver's matrix); this is
their one join: every plan row located in the loan table and in the options
table, in a few hashing passes instead of string merges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from npl_disposal.io._ids import equal_values, locate, positions_in
from npl_disposal.policy.measures import Measure

__all__ = ["PlanJoin", "PlanKeys", "PlanMeasures"]


@dataclass(frozen=True, eq=False)
class PlanKeys:
    """Where a plan's rows point, known to whoever wrote the plan from a grid.

    ``loan`` is each plan row's row in the loan table and ``channel`` its code
    in ``names``. :func:`~npl_disposal.solvers.solve.solve` writes a plan's ``loan_id``
    and ``channel`` columns from these same arrays, so the join need not hash a
    million ids again. ``checked`` keeps an options table (the object itself,
    compared by identity) with its loan rows once verified, for the next join on
    the same, unchanged table; ``joined`` the last join made with these keys
    (see :meth:`PlanJoin.of`).
    """

    loan: np.ndarray
    channel: np.ndarray
    names: tuple[str, ...]
    checked: list[tuple[pd.DataFrame, np.ndarray]] = field(default_factory=list, repr=False)
    joined: list[tuple[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], PlanJoin]] = field(
        default_factory=list, repr=False
    )


class PlanJoin:
    """The plan joined to the loan table and the options table on integer keys.

    Every plan row is located in the loan table (``-1`` if absent) and in the
    options table by ``(loan, channel)`` (``-1`` if that option does not exist,
    i.e. the loan is not eligible for the channel). Rows found in both are kept
    as arrays for the group sums.
    """

    def __init__(
        self,
        loans: pd.DataFrame,
        options: pd.DataFrame,
        plan: pd.DataFrame,
        keys: PlanKeys | None = None,
    ) -> None:
        self.loans = loans
        if keys is not None and len(keys.loan) != len(plan):
            raise ValueError(f"plan keys for {len(keys.loan)} rows, but the plan has {len(plan)}")
        opt_loan = _option_rows(loans, options, keys)
        if opt_loan is None:
            opt_loan, plan_loan = _locate(loans["loan_id"], options["loan_id"], plan["loan_id"])
        elif keys is None:
            (plan_loan,) = _locate(loans["loan_id"], plan["loan_id"])
        else:
            plan_loan = keys.loan
        names = _channel_names(options["channel"], plan["channel"] if keys is None else keys.names)
        opt_chan = _narrow(positions_in(options["channel"], names), len(names))
        plan_chan = positions_in(plan["channel"], names) if keys is None else _recode(keys, names)
        self.channels = names
        row = _option_of(opt_loan, opt_chan, plan_loan, plan_chan, len(loans), len(names))
        share = plan["share"].to_numpy(dtype=float)
        self.plan_loan_ids = plan["loan_id"].array  # indexed only where a row is flagged
        self.all_share = share
        self.all_loan = plan_loan
        self.found = (row >= 0) & (plan_loan >= 0)
        self.opt_loan, self.opt_chan = opt_loan, opt_chan
        keep = self.found
        self.loan = plan_loan[keep]
        self.chan = plan_chan[keep]
        self.share = share[keep]
        picked = row[keep]
        self.value = options["value"].to_numpy(dtype=float)[picked]
        self.pnl = options["pnl"].to_numpy(dtype=float)[picked]
        self.derecognised = options["derecognised"].to_numpy(dtype=float)[picked]
        self.amount = loans["balance"].to_numpy(dtype=float)[self.loan] * self.share

    @classmethod
    def of(
        cls,
        loans: pd.DataFrame,
        options: pd.DataFrame,
        plan: pd.DataFrame,
        keys: PlanKeys | None = None,
    ) -> PlanJoin:
        """The join, made once per (loans, options, plan) for the same ``keys``.

        A solve verifies its plan, and its branch figures join the same three tables
        again: with the plan's keys the second asks get the first join. The tables are
        compared by identity; the join is read only.
        """
        if keys is None:
            return cls(loans, options, plan)
        tables = (loans, options, plan)
        for seen, join in keys.joined:
            if all(a is b for a, b in zip(seen, tables, strict=True)):
                return join
        join = cls(loans, options, plan, keys)
        keys.joined[:] = [(tables, join)]
        return join

    def by_channel(self, weights: np.ndarray) -> pd.Series:
        """Sum of ``weights`` per channel used in the plan (channel names as index)."""
        sums = np.bincount(self.chan, weights=weights, minlength=len(self.channels))
        used = np.bincount(self.chan, minlength=len(self.channels)) > 0
        return pd.Series(sums[used], index=self.channels[used], dtype=float)

    def per_loan(self, weights: np.ndarray, channels: list[str] | None = None) -> np.ndarray:
        """Sum of ``weights`` per loan of the loan table, over ``channels`` (all if None)."""
        mask = np.ones(self.chan.size, dtype=bool)
        if channels is not None:
            mask = np.isin(self.chan, self.channels.get_indexer(channels))
        n = len(self.loans)
        return np.bincount(self.loan[mask], weights=weights[mask], minlength=n)

    def option_count(self, mask: np.ndarray) -> np.ndarray:
        """Number of options of each loan among the options rows ``mask``."""
        sel = mask & (self.opt_loan >= 0)
        return np.bincount(self.opt_loan[sel], minlength=len(self.loans))

    def series(self, loans: np.ndarray, amounts: np.ndarray) -> pd.Series:
        """Amounts of the loans at positions ``loans``, indexed by loan_id."""
        return pd.Series(amounts, index=self.loans["loan_id"].to_numpy()[loans], dtype=float)

    @property
    def balance(self) -> np.ndarray:
        """Each joined row's loan balance, CNY yuan."""
        return self.loans["balance"].to_numpy(dtype=float)[self.loan]

    def offered(self, channel: str) -> np.ndarray:
        """Mask of the loan table's loans the options table offers ``channel``."""
        code = self.channels.get_indexer([channel])[0]
        if code < 0:
            return np.zeros(len(self.loans), dtype=bool)
        return self.option_count(self.opt_chan == code) > 0

    def offered_besides(self, channel: str) -> np.ndarray:
        """Mask of the loans the options table offers any channel other than ``channel``."""
        code = self.channels.get_indexer([channel])[0]
        return self.option_count((self.opt_chan != code) & (self.opt_chan >= 0)) > 0

    def measured(
        self, branch_of: np.ndarray, branches: int, levels: Mapping[str, float]
    ) -> PlanMeasures:
        """The plan's measures; ``branch_of`` is each loan's branch (-1: none of ``branches``)."""
        return PlanMeasures(self, branch_of, branches, dict(levels))


class _Selected:
    """The joined rows a measure selected, with the arrays its coefficients read."""

    def __init__(self, join: PlanJoin, keep: np.ndarray | None) -> None:
        self._join, self._keep = join, keep

    def _take(self, values: np.ndarray) -> np.ndarray:
        return values if self._keep is None else values[self._keep]

    @property
    def balance(self) -> np.ndarray:
        """Each row's loan balance, CNY yuan."""
        return self._take(self._join.balance)

    @property
    def pnl(self) -> np.ndarray:
        """Each row's profit impact, CNY yuan."""
        return self._take(self._join.pnl)

    @property
    def derecognised(self) -> np.ndarray:
        """Each row's derecognised share."""
        return self._take(self._join.derecognised)

    @property
    def share(self) -> np.ndarray:
        """Each row's share of its loan."""
        return self._take(self._join.share)

    @property
    def loan(self) -> np.ndarray:
        """Each row's loan (row of the loan table)."""
        return self._take(self._join.loan)

    def kept(self, period: int) -> np.ndarray:
        """A one-period plan has no NPL path (schedules are checked by their own join)."""
        raise ValueError("a one-period plan has no NPL path")


@dataclass(eq=False)
class PlanMeasures:
    """A plan's measures evaluated on its joined rows, never on the solver's matrix.

    Implements :class:`~npl_disposal.policy.measures.Measured`; each measure is
    evaluated once.
    """

    join: PlanJoin
    branch_of: np.ndarray
    branches: int
    levels: dict[str, float]

    def __post_init__(self) -> None:
        self._seen: dict[Measure, float | np.ndarray] = {}

    def evaluate(self, measure: Measure) -> float | np.ndarray:
        """The measure's value (CNY yuan or loans), per branch when ``by_branch``."""
        if measure not in self._seen:
            self._seen[measure] = self._evaluate(measure)
        return self._seen[measure]

    def _evaluate(self, measure: Measure) -> float | np.ndarray:
        join = self.join
        keep = None
        if measure.channel is not None:
            keep = join.chan == join.channels.get_indexer([measure.channel])[0]
        if measure.segment is not None:
            flag = join.loans[measure.segment].to_numpy(dtype=bool)[join.loan]
            keep = flag if keep is None else keep & flag
        rows = _Selected(join, keep)
        amount = measure.coefficients(rows) * rows.share
        if not measure.by_branch:
            return float(amount.sum())
        branch = self.branch_of[rows.loan]
        known = branch >= 0
        return np.bincount(branch[known], amount[known], minlength=self.branches)


def _option_rows(
    loans: pd.DataFrame, options: pd.DataFrame, keys: PlanKeys | None
) -> np.ndarray | None:
    """The options' loan rows, checked once per options table when ``keys`` can keep them."""
    if keys is not None:
        for table, rows in keys.checked:
            if table is options:
                return rows
    pos = _checked_positions(loans, options)
    if keys is not None and pos is not None:
        keys.checked[:] = [(options, pos)]
    return pos


def _option_of(
    opt_loan: np.ndarray,
    opt_chan: np.ndarray,
    plan_loan: np.ndarray,
    plan_chan: np.ndarray,
    n_loans: int,
    n_channels: int,
) -> np.ndarray:
    """Row of the options table holding each plan row's (loan, channel), or -1.

    One dense lookup over loans x channels (four bytes per cell) instead of
    hashing the keys.
    """
    n_ch = max(n_channels, 1)
    small = opt_loan.size < 2**31 - 1
    table = np.full(n_loans * n_ch + 1, -1, dtype=np.int32 if small else np.int64)  # last: none
    if opt_loan.min(initial=0) >= 0 and opt_chan.min(initial=0) >= 0:  # every option known
        table[opt_loan.astype(np.int64) * n_ch + opt_chan] = np.arange(
            opt_loan.size, dtype=table.dtype
        )
    else:
        ok = (opt_loan >= 0) & (opt_chan >= 0)
        table[opt_loan[ok].astype(np.int64) * n_ch + opt_chan[ok]] = np.flatnonzero(ok)
    good = (plan_loan >= 0) & (plan_chan >= 0)
    return table[np.where(good, plan_loan.astype(np.int64) * n_ch + plan_chan, n_loans * n_ch)]


def _checked_positions(loans: pd.DataFrame, options: pd.DataFrame) -> np.ndarray | None:
    """The loan row of every option from its ``_loan`` column, once every id is checked.

    :func:`~npl_disposal.io.options.read_options` records the row; each id it
    points at is compared with the option's own (None, to look them up instead).
    Comparing 3 million ids element by element costs a tenth of hashing them.
    """
    if "_loan" not in options.columns or len(options) == 0:
        return None
    pos = options["_loan"].to_numpy()
    if pos.dtype.kind not in "iu" or pos.min() < 0 or pos.max() >= len(loans):
        return None
    ids = loans["loan_id"].to_numpy(dtype=object)
    if not equal_values(ids, options["loan_id"].to_numpy(dtype=object), pos).all():
        return None
    return pos.astype(np.int64, copy=False)  # the column itself: no second copy per option


def _narrow(codes: np.ndarray, count: int) -> np.ndarray:
    """Codes in ``[-1, count)`` as int8 where they fit: one byte per option, not eight."""
    return codes.astype(np.int8) if count < 127 else codes


def _channel_names(options: pd.Series, plan: pd.Series | tuple[str, ...]) -> pd.Index:
    """Every channel name of the options and the plan, in one index."""
    seen: dict[str, None] = {}
    for column in (options, plan):
        if isinstance(column, tuple):
            values: Iterable[object] = column
        elif _is_categorical(column):
            values = column.cat.categories
        else:
            values = pd.unique(column)
        seen.update((v, None) for v in values if isinstance(v, str))
    return pd.Index(list(seen), dtype=object)


def _recode(keys: PlanKeys, names: pd.Index) -> np.ndarray:
    return names.get_indexer(list(keys.names)).astype(np.int64)[keys.channel]


def _is_categorical(column: pd.Series | tuple[str, ...]) -> bool:
    return isinstance(column, pd.Series) and isinstance(column.dtype, pd.CategoricalDtype)


def _locate(ids: pd.Series, *keys: pd.Series) -> list[np.ndarray]:
    """Row of each key in ``ids`` (unique), or -1 (see :func:`npl_disposal.io._ids.locate`)."""
    return [locate(ids, key) for key in keys]

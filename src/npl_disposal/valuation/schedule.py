"""Options over time: keep a loan until the start of a period, then dispose of it.

>>> from npl_disposal.datasets import make_portfolio
>>> from npl_disposal.valuation import value_schedule
>>> schedule = value_schedule(make_portfolio(200, 4, seed=1).loans, periods=4)
>>> list(schedule.options.columns)
['loan_id', 'channel', 'period', 'value', 'pnl', 'derecognised', 'balance']
>>> list(schedule.path.columns)
['loan_id', 'period', 'balance']

:func:`value_schedule` is the valuation side of a disposal schedule over ``T`` periods of
``P`` months (quarters by default). A row ``(loan, channel m, period t)`` of
:attr:`ScheduleOptions.options`, ``m`` not ``retain``, means: keep the loan until the start
of period ``t`` (month ``s = (t - 1) P``), then dispose of it through ``m``. Period 1 is
disposing now: its rows are exactly those of
:func:`~npl_disposal.valuation.value_options`. Every loan also has one ``retain`` row, at
period ``T + 1`` ("kept through the horizon"), equal to today's retain row.

While kept, the loan follows the workout chain of the valuation (monthly hazards, or the
migration matrix, whose step may be several months: the loan moves at whole steps, so a
disposal between two steps sees the state of the last): after ``k = floor(s / step)``
steps it is still unresolved and in NPL
class ``c'`` with probability ``pi(c') = (Q^k)[c, c']`` (``Q`` the moves among the NPL
classes, ``c`` today's class), and ``u = sum pi`` is the probability that it is still on
the book. With ``V_m`` and ``pnl_m`` the one-period value and profit impact of channel
``m`` for the same loan in class ``c'`` at NPL age ``a + s`` (``channel_values``), ``D(s)
= (1 + discount_rate) ** (-s / 12)`` and ``K(s)`` the discounted collections (recoveries
less collection costs, and cures) of the workouts that end within those ``k`` steps:

* ``value = K(s) + D(s) * sum_c' pi(c') V_m(c', a + s)`` -- CNY yuan, today;
* ``pnl = sum_c' pi(c') pnl_m(c', a + s)`` -- the one-period accounting at the state of
  period ``t``, in the year of period ``t`` (not discounted): the expected net book value
  then is ``u * (balance - provision)`` (the provision of a kept loan is held as it is);
  the results of workouts that end before ``s`` are not in it;
* ``derecognised`` -- as for the one-period channel;
* ``balance = u * balance`` -- the expected book balance that leaves the book at ``s``.

``V_m`` is a fresh valuation at month ``s``: its workout runs ``horizon_months`` from then.

A channel is offered in period ``t`` when the loan, in its expected state then, is eligible
for it (the one-period rule, ``options.eligibility``) and ``u > 0``. The loan counts as
loss class when its probability of being loss class, given that it is unresolved, is at
least :data:`LOSS_CLASS_PROBABILITY` (more likely than not): that opens write-off and
closes restructuring. Legal recourse already started (``recourse_days > 0``) runs on at
:data:`DAYS_PER_MONTH` days a month; none is assumed to start. Eligibility for bulk
transfer and securitisation does not change with time.

:attr:`ScheduleOptions.path` gives ``balance * u`` at the *end* of each period: the
expected NPL balance of the loan if kept until then. The computation is vectorised over
loans (loops run over periods and classes only), in blocks of ``BLOCK_LOANS`` loans.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal._threads import for_blocks
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.schema import NPL_CLASSES, STANDARD_CHANNELS
from npl_disposal.io.tables import TableSource
from npl_disposal.policy import PolicyLike
from npl_disposal.valuation._workout import (
    LOSS,
    RETAIN,
    Chain,
    Kernel,
    Loans,
    MigrationLike,
    workout,
)
from npl_disposal.valuation.assumptions import ValuationAssumptions
from npl_disposal.valuation.options import (
    BLOCK_LOANS,
    _channel_matrices,
    channel_values,
    claim_terms,
    derecognised_shares,
    eligibility,
    eligible_options,
    resolve_inputs,
    workout_kernel,
)

__all__ = [
    "DAYS_PER_MONTH",
    "LOSS_CLASS_PROBABILITY",
    "PATH_COLUMNS",
    "SCHEDULE_COLUMNS",
    "ScheduleOptions",
    "value_schedule",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

#: A kept loan counts as loss class when it is at least this likely to be, given unresolved.
LOSS_CLASS_PROBABILITY = 0.5
#: Days of legal recourse added per month a loan is kept (once recourse has started).
DAYS_PER_MONTH = 365.25 / 12.0
#: Columns of :attr:`ScheduleOptions.options`.
SCHEDULE_COLUMNS: tuple[str, ...] = (
    "loan_id", "channel", "period", "value", "pnl", "derecognised", "balance",
)  # fmt: skip
#: Columns of :attr:`ScheduleOptions.path`.
PATH_COLUMNS: tuple[str, ...] = ("loan_id", "period", "balance")

_K = len(STANDARD_CHANNELS)


@dataclass(frozen=True, eq=False)
class ScheduleOptions:
    """Every (loan, channel, period) option of a disposal schedule, and the kept balances.

    ``options``: ``loan_id, channel, period, value, pnl, derecognised, balance`` sorted by
    loan, period, channel (``retain`` once per loan, at period ``periods + 1``); ``path``:
    ``loan_id, period, balance``, the expected NPL balance at the end of each period if kept.
    Money in CNY yuan (float64). ``period_months`` is the length of a period.
    :meth:`by_period` totals the options per period and channel; :meth:`summary` says it.
    """

    options: pd.DataFrame
    path: pd.DataFrame
    periods: int
    period_months: int

    def by_period(self) -> pd.DataFrame:
        """Per period and channel: loans offered, balance, value and pnl (CNY yuan).

        ``year`` is the year whose profit the rows' pnl falls in: the year of the disposal
        (1 for the first twelve months); 1 for ``retain``, whose pnl is this year's top-up.
        """
        grouped = self.options.groupby(["period", "channel"], observed=True, sort=True)
        out = grouped.agg(
            loans=("loan_id", "size"),
            balance=("balance", "sum"),
            value=("value", "sum"),
            pnl=("pnl", "sum"),
        )
        period = out.index.get_level_values("period").to_numpy()
        retain = out.index.get_level_values("channel") == STANDARD_CHANNELS[RETAIN]
        year = np.where(retain, 1, (period - 1) * self.period_months // 12 + 1)
        out.insert(0, "year", year.astype(np.int64))
        return out

    def summary(self) -> str:
        """A short text a risk officer reads first: what each period's options are worth."""
        n_loans = int((self.options["channel"] == "retain").sum())
        head = (
            f"Options over {self.periods} period(s) of {self.period_months} month(s): "
            f"{n_loans:,} loans, {len(self.options):,} options (retain: period "
            f"{self.periods + 1}, kept through the horizon)"
        )
        table = self.by_period()
        money = ["balance", "value", "pnl"]
        table[money] = (table[money] / 1e6).round(2)
        table = table.rename(columns={m: f"{m} CNY m" for m in money})
        kept = self.path.groupby("period", sort=True)["balance"].sum() / 1e6
        path = ", ".join(f"{p}: {b:,.2f}" for p, b in kept.items())
        return "\n".join(
            [
                head,
                "Value today, pnl in the year of the disposal, balance leaving the book:",
                table.to_string(),
                f"Expected NPL balance if kept to the end of each period (CNY m): {path or '-'}",
            ]
        )


def value_schedule(
    portfolio: Portfolio | TableSource,
    periods: int,
    period_months: int = 3,
    *,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None = None,
    policy: PolicyLike = None,
    migration: MigrationLike | None = None,
) -> ScheduleOptions:
    """Value every channel of every loan at the start of each of ``periods`` periods.

    Args:
        portfolio: a :class:`~npl_disposal.Portfolio`, or a loans table (DataFrame or
            CSV / Parquet path), validated with :func:`~npl_disposal.read_portfolio`.
        periods: number of periods ``T`` (>= 1).
        period_months: months per period (>= 1; 3 for quarters).
        assumptions: :class:`ValuationAssumptions` or a ``[valuation]`` mapping, as for
            :func:`~npl_disposal.valuation.value_options`.
        policy: a policy whose ``[valuation]`` section is used when ``assumptions`` is
            not given.
        migration: optional migration matrix replacing the monthly hazards, as for
            :func:`~npl_disposal.valuation.value_options`; a kept loan moves once per
            period of the matrix (a disposal between two sees the state of the last).

    Returns:
        :class:`ScheduleOptions`; its period-1 rows (and the ``retain`` row, at period
        ``T + 1``) equal :func:`~npl_disposal.valuation.value_options`. The formulas are
        in the module's docstring and ``docs/valuation.md``, "Options over time".

    """
    t_count, months = _whole(periods, "periods"), _whole(period_months, "period_months")
    loans, lo, a, chain = resolve_inputs(portfolio, assumptions, policy, migration)
    n = lo.balance.size
    starts = np.arange(t_count) * months  # disposal month of each period
    start_moves = _moves(chain, starts)
    end_moves = _moves(chain, starts + months)

    row, cell, value, pnl = _option_cells(lo, a, chain, starts, start_moves)
    period_index = cell // _K
    channel = cell % _K
    unresolved = np.vstack([start_moves.sum(axis=2), np.ones((1, len(NPL_CLASSES)))])
    ids = loans["loan_id"].to_numpy(dtype=object)
    options = pd.DataFrame(
        {
            "loan_id": pd.Series(ids[row], dtype=object, copy=False),
            "channel": pd.Categorical.from_codes(channel, categories=list(STANDARD_CHANNELS)),
            "period": period_index.astype(np.int64) + 1,
            "value": value,
            "pnl": pnl,
            "derecognised": derecognised_shares(a)[channel],
            "balance": lo.balance[row] * unresolved[period_index, lo.cls[row]],
        },
        copy=False,
    )
    kept = lo.balance[:, None] * end_moves.sum(axis=2)[:, lo.cls].T  # (loans, periods)
    path = pd.DataFrame(
        {
            "loan_id": pd.Series(np.repeat(ids, t_count), dtype=object, copy=False),
            "period": np.tile(np.arange(1, t_count + 1, dtype=np.int64), n),
            "balance": kept.ravel(),
        },
        copy=False,
    )
    return ScheduleOptions(options, path, t_count, months)


def _option_cells(
    lo: Loans, a: ValuationAssumptions, chain: Chain, starts: IntArray, start_moves: FloatArray
) -> tuple[IntArray, np.ndarray, FloatArray, FloatArray]:
    """The offered cells, listed by loan then cell (period x channel, then retain).

    Cells ``(t - 1) * 5 + channel`` hold period t's channels; the last cell, ``T * 5``,
    is retain through the horizon. Period 1 is :func:`value_options`'s computation, with
    its own kernel, so that its rows are the same to the bit. Returns the loan position,
    cell code, value and pnl of each option.
    """
    n, t_count = lo.balance.size, starts.size
    cells = t_count * _K + 1
    value, pnl = np.empty((cells, n)), np.empty((cells, n))
    eligible = np.zeros((cells, n), dtype=bool)
    value[:_K], pnl[:_K], eligible[:_K] = _channel_matrices(lo, a, workout_kernel(lo, a, chain))
    value[-1], pnl[-1], eligible[-1] = value[RETAIN], pnl[RETAIN], True
    eligible[RETAIN] = False
    if t_count > 1:
        kernel = workout_kernel(lo, a, chain, later_months=int(starts[-1]))

        def work(piece: slice) -> None:
            block = lo.block(piece)
            for t in range(1, t_count):  # periods; each vectorised over the block's loans
                rows = slice(t * _K, (t + 1) * _K)
                value[rows, piece], pnl[rows, piece], eligible[rows, piece] = _later_options(
                    block, a, kernel, start_moves[t], int(starts[t]), _steps(chain, starts[t])
                )

        for_blocks(n, BLOCK_LOANS, work)
    return eligible_options(value, pnl, eligible)


def _later_options(
    lo: Loans,
    a: ValuationAssumptions,
    kernel: Kernel,
    moves: FloatArray,
    months: int,
    steps: int,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """(5, n) value (today), pnl and eligibility of disposing at month ``months`` > 0.

    ``moves[c, c']``: probability that a loan of class c kept ``steps`` steps of the chain
    is unresolved and in class c'. The retain row is "kept until then, then kept": it is
    returned, not offered.
    """
    n = lo.balance.size
    pi = moves[lo.cls]  # (n, 3): class distribution, unresolved
    unresolved = pi.sum(axis=1)
    older = dataclasses.replace(lo, age=lo.age + months)
    value, pnl = np.zeros((_K, n)), np.zeros((_K, n))
    for c in range(len(NPL_CLASSES)):  # three classes, each vectorised over the loans
        weight = pi[:, c]
        if not weight.any():
            continue
        v, p = channel_values(dataclasses.replace(older, cls=np.full(n, c, np.intp)), a, kernel)
        value += weight * v
        pnl += weight * p
    value *= (1.0 + a.discount_rate) ** (-months / 12.0)
    value += _kept_collections(lo, a, kernel, steps)
    loss = pi[:, LOSS] >= LOSS_CLASS_PROBABILITY * unresolved
    recourse = np.where(lo.recourse > 0, lo.recourse + DAYS_PER_MONTH * months, lo.recourse)
    eligible = eligibility(lo, a, loss, recourse)
    eligible &= unresolved > 0
    eligible[RETAIN] = False
    return value, pnl, eligible


def _kept_collections(lo: Loans, a: ValuationAssumptions, kernel: Kernel, steps: int) -> FloatArray:
    """Discounted collections (CNY yuan, today) of the workouts that end within ``steps``."""
    exposure, alpha, beta, cover = claim_terms(lo, a)
    delta = (1.0 + a.discount_rate) ** (-a.guarantee_lag_months / 12.0)
    [(gross, cure)] = workout(kernel, lo, exposure, alpha, beta, cover, [delta], upto=steps)
    return (1.0 - a.collection_cost) * gross + cure


def _steps(chain: Chain, months: float) -> int:
    """Whole steps of the chain within ``months`` (a loan moves only at whole steps)."""
    return math.floor(months / chain.step_months + 1e-9)


def _moves(chain: Chain, months: Sequence[int] | IntArray) -> FloatArray:
    """(len(months), 3, 3): ``Q ** steps`` at each month, as the workout kernel builds them."""
    wanted = [_steps(chain, m) for m in months]
    powers = [np.eye(len(NPL_CLASSES))]
    for _ in range(max(wanted, default=0)):  # steps of the horizon, not loans
        powers.append(powers[-1] @ chain.q)
    return np.stack([powers[k] for k in wanted]) if wanted else np.empty((0, 3, 3))


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1; got {value!r}")
    return int(value)

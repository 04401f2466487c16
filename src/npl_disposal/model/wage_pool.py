"""The wage-pool model of ``[wage_pool] weight`` and ``max_fall``: per-branch levels and rows.

A branch's wage pool, ``rate x max(0, profit - counted loss)``, falls by
``rate x min(profit+, counted)``: its wage rate times the NPL loss it counts (in full,
or at ``consider_share`` when it ends within tolerance), and never by more than the
pool it had. The optimiser sees that fall through a few variables per branch with a
wage rate, defined below; the rule itself (its figures, the ``max_fall`` check and
its words) is :class:`~npl_disposal.policy.rules.WagePoolRule`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npl_disposal.io.portfolio import Branches, Portfolio
from npl_disposal.model.rows import Block, Cells, RowBuilder
from npl_disposal.policy import Policy
from npl_disposal.policy.measures import MONEY
from npl_disposal.policy.rules import WAGE_POOL_SHORT

__all__ = [
    "WagePoolFigures",
    "WagePoolTerms",
    "securitisable",
    "tolerance_margin",
    "upper_bounds",
    "worst_losses",
]

_NONE = np.zeros(0, dtype=np.int64)
_NONE_F = np.zeros(0)


@dataclass(frozen=True, eq=False)
class WagePoolTerms:
    """The wage-pool model of ``[wage_pool] weight / max_fall``, per branch with a wage rate.

    For branch k with wage rate r_k and profit P_k > 0 (a branch without profit has
    no pool to lose), two continuous levels and (where needed) flags, all in [0, 1]:
    the NPL loss ``U_k * loss_k >= -(branch pnl) + fixed-cost share``, the loss
    counted against the wage pool ``U_k * counted_k`` (at least ``consider_share``
    of the loss, or all of it unless ``within_k``), and ``within_k`` = 1 only if the
    branch's derecognised inclusive NPL brings it within tolerance. ``U_k`` (CNY
    yuan) is the most the branch can lose.

    The fall is ``r_k * min(P_k, U_k * counted_k)``. ``max_fall`` caps it with
    ``r_k * U_k * counted_k <= max_fall`` where ``r_k * P_k > max_fall`` (elsewhere
    the pool cannot fall that far): exact. With a weight, the objective loses
    ``weight * r_k * U_k * cut_k``, where ``cut_k >= counted_k`` when the loss can
    never exceed the profit (``U_k <= P_k``); otherwise a flag ``floor_k`` (the pool
    is emptied) gives ``cut_k >= counted_k - floor_k`` and ``U_k * cut_k >= P_k *
    floor_k``, so that in whole-loan mode ``U_k * cut_k`` is ``min(P_k, U_k *
    counted_k)`` exactly (fractional mode relaxes the flag).

    The securitisation fixed cost is charged to a branch at ``fixed_cost / min_pool``
    per securitised yuan (at least its share by balance), or in full when there is no
    minimum pool; a user channel's fixed cost is charged to every branch in full. The
    model never understates a branch's loss, so a plan within ``max_fall`` here is
    within it in :func:`~npl_disposal.model.figures.branch_figures`.
    """

    branches: tuple[str, ...]
    index: np.ndarray
    rate: np.ndarray
    upper: np.ndarray
    flagged: np.ndarray
    margin: np.ndarray
    profit: np.ndarray
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
        *,
        given: WagePoolFigures | None = None,
    ) -> WagePoolTerms:
        """The terms for a problem (none unless ``[wage_pool]`` sets a weight or a limit).

        For part of a portfolio, ``given`` holds the whole portfolio's per-branch
        figures; by default they come from this problem's own loans.
        """
        wage = pol.wage_pool
        k = len(branch_names)
        empty = np.zeros(0, dtype=np.int64)
        sec = channels.index("securitisation") if "securitisation" in channels else -1
        inclusive = pf.loans["inclusive"].to_numpy(dtype=bool)
        same = (pol, grids["pnl"], grids["derecognised"], branch_index, balance, inclusive, sec,
                channels)  # fmt: skip
        if wage is None or not wage.optimised or pf.branches is None:
            return cls((), empty, np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0),
                       np.zeros(0), *same)  # fmt: skip
        table = pf.branch_table
        rate = pol.rules.wage_pool.rates(table)
        if given is None:
            worst = worst_losses(grids["pnl"], eligible, branch_index, k)
            pool = securitisable(balance, eligible, sec, branch_index, k)
            given = WagePoolFigures(upper_bounds(pol, worst, pool, sec >= 0),
                                    tolerance_margin(pol, table))  # fmt: skip
        upper, margin = given.upper, given.margin
        profit = table.profit
        keep = np.flatnonzero((rate > 0) & (upper > 0) & (profit > 0))
        flagged = margin > 0
        return cls(
            tuple(branch_names[b] for b in keep), keep, rate[keep], upper[keep], flagged[keep],
            margin[keep], profit[keep], *same,
        )  # fmt: skip

    def floored(self, b: int) -> bool:
        """Whether branch ``b``'s counted loss can exceed its profit (the floor may bind)."""
        return bool(self.upper[b] > self.profit[b])

    def blocks(self) -> tuple[Block, ...]:
        """The per-branch variables (loss, counted loss, fall, the flags)."""
        wage = self.policy.wage_pool_or_default
        out: list[Block] = []
        for b, name in enumerate(self.branches):
            out += [Block(f"wage_pool_loss[{name}]", 0.0, "continuous"),
                    Block(f"wage_pool_counted[{name}]", 0.0, "continuous")]  # fmt: skip
            if self.flagged[b]:
                out.append(Block(f"wage_pool_within[{name}]", 0.0, "binary"))
            if wage.weight > 0:
                cost = float(wage.weight * self.rate[b] * self.upper[b])
                out.append(Block(f"wage_pool_cut[{name}]", cost, "continuous"))
                if self.floored(b):
                    out.append(Block(f"wage_pool_floor[{name}]", 0.0, "binary"))
        return tuple(out)

    def add_rows(self, rb: RowBuilder, cells: Cells) -> None:
        """Add the rows that define each branch's loss, counted loss, fall, flags and limit."""
        wage = self.policy.wage_pool_or_default
        m = self.pnl.shape[1]
        for b, name in enumerate(self.branches):
            loss, counted = f"wage_pool_loss[{name}]", f"wage_pool_counted[{name}]"
            u = float(self.upper[b])
            loans = cells.branch_loans(int(self.index[b]))
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
            if wage.weight > 0:
                self._cut_rows(rb, b, name)
            if np.isfinite(wage.max_fall) and self.rate[b] * self.profit[b] > wage.max_fall:
                rb.add(f"wage_pool_fall[{name}]", "wage_pool.max_fall", MONEY, _NONE, _NONE_F,
                       upper=wage.max_fall, branch=name, block={counted: float(self.rate[b]) * u},
                       short=WAGE_POOL_SHORT)  # fmt: skip

    def _cut_rows(self, rb: RowBuilder, b: int, name: str) -> None:
        """``U cut`` is the counted loss, or the profit when the pool is emptied."""
        u = float(self.upper[b])
        cut, counted = f"wage_pool_cut[{name}]", f"wage_pool_counted[{name}]"
        if not self.floored(b):
            rb.add(f"wage_pool_cut[{name}]", "wage_pool.floor", MONEY, _NONE, _NONE_F,
                   lower=0.0, branch=name, block={cut: u, counted: -u})  # fmt: skip
            return
        floor = f"wage_pool_floor[{name}]"
        rb.add(f"wage_pool_cut[{name}]", "wage_pool.floor", MONEY, _NONE, _NONE_F, lower=0.0,
               branch=name, block={cut: u, counted: -u, floor: u})  # fmt: skip
        rb.add(f"wage_pool_emptied[{name}]", "wage_pool.floor", MONEY, _NONE, _NONE_F,
               lower=0.0, branch=name, block={cut: u, floor: -float(self.profit[b])})  # fmt: skip

    @staticmethod
    def _counted_row(rb: RowBuilder, row: str, branch: str, block: dict[str, float]) -> None:
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
        self, rb: RowBuilder, b: int, name: str, flag: str, branch_loans: np.ndarray
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


@dataclass(frozen=True, eq=False)
class WagePoolFigures:
    """The wage-pool model's per-branch figures that need the whole portfolio (table order).

    ``upper`` is U_k (CNY yuan), the most branch k can lose: its loans' worst eligible
    losses plus the most fixed cost the model can charge it (:func:`upper_bounds`);
    ``margin`` (CNY yuan) its inclusive NPL above tolerance where the within flag
    applies, else 0 (:func:`tolerance_margin`).
    """

    upper: np.ndarray
    margin: np.ndarray


def worst_losses(
    pnl: np.ndarray, eligible: np.ndarray, branch_index: np.ndarray, k: int
) -> np.ndarray:
    """Per branch, the sum over its loans of their worst eligible loss (CNY yuan, >= 0)."""
    worst = np.where(eligible, -pnl, -np.inf).max(axis=1).clip(min=0.0)
    return np.bincount(branch_index, worst, minlength=k)


def securitisable(
    balance: np.ndarray, eligible: np.ndarray, sec: int, branch_index: np.ndarray, k: int
) -> np.ndarray:
    """Per branch, the balance (CNY yuan) eligible for grid column ``sec`` (none if < 0)."""
    if sec < 0:
        return np.zeros(k)
    return np.bincount(branch_index, balance * eligible[:, sec], minlength=k)


def upper_bounds(
    pol: Policy, worst: np.ndarray, pool: np.ndarray, securitised: bool
) -> np.ndarray:
    """U_k (CNY yuan): the ``worst`` losses plus the most fixed cost charged to branch k.

    ``pool`` is each branch's securitisation-eligible balance (CNY yuan);
    ``securitised`` whether any loan is offered securitisation.
    """
    return worst + _fixed_cost_bound(pol, pool, securitised)


def _fixed_cost_bound(pol: Policy, pool: np.ndarray, securitised: bool) -> np.ndarray:
    """Most fixed cost (CNY yuan) the model can charge each branch."""
    spec = pol.securitisation
    k = pool.size
    others = sum(lim.fixed_cost for lim in pol.channels.values())  # charged in full
    if spec is None or not securitised or spec.fixed_cost <= 0:
        return np.full(k, others)
    if spec.min_pool <= 0:
        return np.full(k, spec.fixed_cost + others)
    return spec.fixed_cost * np.minimum(pool, spec.max_pool) / spec.min_pool + others


def tolerance_margin(pol: Policy, table: Branches) -> np.ndarray:
    """Each branch's inclusive NPL above tolerance, ``max(N_k - tau L_k, 0)`` (CNY yuan).

    Zero everywhere unless the within-tolerance flag applies: the tolerance checked,
    not enforced, and ``consider_share`` below 1.
    """
    tol, wage = pol.tolerance, pol.wage_pool_or_default
    if tol is None or tol.enforce or wage.consider_share >= 1.0:
        return np.zeros(len(table.names))
    return np.maximum(table.inclusive_npl - tol.threshold * table.inclusive_loans, 0.0)

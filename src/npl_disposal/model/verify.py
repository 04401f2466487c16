"""Independent check of a plan against every rule of DESIGN section 4.

:func:`verify_plan` recomputes each rule from the loan table, the options table
and the policy with pandas joins and group sums, never from the solver's matrix,
so a modelling slip in :mod:`npl_disposal.model.problem` cannot hide here. Every
solve runs it before it returns: a violated plan is a bug, never a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model._join import PlanJoin, PlanKeys
from npl_disposal.policy import Policy

__all__ = ["Verification", "verify_plan"]

VIOLATION_COLUMNS = [
    "rule",
    "branch",
    "loan_id",
    "amount",
    "limit",
    "excess",
    "unit",
    "explanation",
]
_CENT = 0.01
_SHARE_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class Verification:
    """Outcome of :func:`verify_plan`.

    ``violations`` has one row per broken rule (``rule, branch, loan_id, amount,
    limit, excess, unit, explanation``); ``objective`` is the plan's value in
    CNY yuan recomputed from the options table; ``usage`` is each rule's usage.
    """

    violations: pd.DataFrame
    objective: float
    usage: Mapping[str, float]

    @property
    def ok(self) -> bool:
        """True when the plan breaks no rule."""
        return self.violations.empty

    def summary(self) -> str:
        """One line per violation, or a confirmation."""
        if self.ok:
            return f"plan verified: every rule holds; value CNY {self.objective / 1e6:,.2f}m"
        return "\n".join(self.violations["explanation"])


class _Log:
    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def over(self, rule: str, amount: float, limit: float, unit: str, text: str,
             branch: str | None = None) -> None:  # fmt: skip
        """Record a violation if ``amount`` exceeds ``limit`` beyond a cent (or 1e-7 loans)."""
        self._check(rule, amount - limit, amount, limit, unit, text, branch)

    def under(self, rule: str, amount: float, limit: float, unit: str, text: str,
              branch: str | None = None) -> None:  # fmt: skip
        """Record a violation if ``amount`` falls short of ``limit`` beyond the tolerance."""
        self._check(rule, limit - amount, amount, limit, unit, text, branch)

    def _check(self, rule: str, excess: float, amount: float, limit: float, unit: str,
               text: str, branch: str | None) -> None:  # fmt: skip
        tol = (_CENT if unit == "CNY" else _SHARE_TOL) + 1e-9 * abs(limit)
        if excess > tol:
            self.rows.append(
                dict(
                    rule=rule,
                    branch=branch,
                    loan_id=None,
                    amount=amount,
                    limit=limit,
                    excess=excess,
                    unit=unit,
                    explanation=text.format(amount=amount, limit=limit),
                )
            )

    def loans(self, rule: str, bad: pd.Series, text: str) -> None:
        for loan_id, amount in bad.head(1000).items():
            self.rows.append(
                dict(
                    rule=rule,
                    branch=None,
                    loan_id=loan_id,
                    amount=float(amount),
                    limit=0.0,
                    excess=float(amount),
                    unit="share",
                    explanation=f"loan {loan_id}: {text}",
                )
            )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=VIOLATION_COLUMNS)


def verify_plan(
    portfolio: Portfolio,
    policy: Policy,
    options: pd.DataFrame,
    plan: pd.DataFrame,
    on: Mapping[str, float] | None = None,
    whole_loan: bool | None = None,
    *,
    keys: PlanKeys | None = None,
) -> Verification:
    """Check ``plan`` (``loan_id, channel, share``) against every rule of the policy.

    ``on`` gives the on/off level of the ``bulk_transfer`` and ``securitisation``
    blocks (default: on exactly when the channel is used). ``whole_loan``
    (default: the policy's mode) also requires every share to be 0 or 1.
    ``keys`` (from :func:`~npl_disposal.solvers.solve.solve`) say where the plan's rows
    point in the loan table, which spares hashing every loan id.
    """
    log = _Log()
    joined = PlanJoin.of(portfolio.loans, options, plan, keys)
    _check_shares(
        log, joined, whole_loan if whole_loan is not None else policy.mode == "whole_loan"
    )
    balance = joined.by_channel(joined.amount)
    count = joined.by_channel(joined.share)
    levels = _block_levels(policy, balance, count, on)
    fixed = sum(cost * levels.get(name, 0.0) for name, cost in policy.fixed_costs.items())
    objective = float(joined.value @ joined.share - fixed)
    profit = float(joined.pnl @ joined.share - fixed)
    _check_loan_rules(log, joined, policy)
    _check_budgets(log, policy, balance, count, profit, levels)
    _check_tolerance(log, portfolio, policy, joined)
    _check_wage_pool(log, portfolio, policy, joined, levels)
    usage = {f"{c}_balance": float(v) for c, v in balance.items()}
    usage.update({f"{c}_loans": float(v) for c, v in count.items()})
    usage["profit"] = profit
    return Verification(log.frame(), objective, usage)


def _check_shares(log: _Log, joined: PlanJoin, whole: bool) -> None:
    share, ids = joined.all_share, joined.plan_loan_ids
    missing = ~joined.found
    log.loans(
        "eligible",
        pd.Series(share[missing], index=ids[missing], dtype=float),
        "share sent to a channel it is not eligible for",
    )
    out = (share < -_SHARE_TOL) | (share > 1 + _SHARE_TOL)
    log.loans(
        "share_range",
        pd.Series(share[out], index=ids[out], dtype=float),
        "share outside [0, 1]",
    )
    if whole:
        frac = np.abs(np.minimum(share, 1 - share)) > _SHARE_TOL
        log.loans(
            "whole_loan",
            pd.Series(share[frac], index=ids[frac], dtype=float),
            "split between channels in whole-loan mode",
        )
    known = joined.all_loan >= 0
    total = np.bincount(joined.all_loan[known], weights=share[known], minlength=len(joined.loans))
    off = np.flatnonzero(np.abs(total - 1.0) > 1e-6)
    log.loans(
        "allocated_once",
        joined.series(off, total[off] - 1.0),
        "shares do not sum to 1 (every loan must be allocated exactly once)",
    )


def _block_levels(
    policy: Policy, balance: pd.Series, count: pd.Series, on: Mapping[str, float] | None
) -> dict[str, float]:
    levels = {}
    for name in ("bulk_transfer", "securitisation", *policy.channels):
        used = float(count.get(name, 0.0)) > _SHARE_TOL
        levels[name] = float(on[name]) if on and name in on else float(used)
    return levels


def _check_loan_rules(log: _Log, joined: PlanJoin, policy: Policy) -> None:
    loans = joined.loans
    chan = joined.opt_chan
    names = joined.channels
    retain, write_off = names.get_indexer(["retain", "write_off"])
    kept = joined.per_loan(joined.share, ["retain"])
    if policy.long_age is not None:
        others = joined.option_count((chan != retain) & (chan >= 0))
        age = loans["npl_age_months"].to_numpy(dtype=float)
        bad = np.flatnonzero((age >= policy.long_age.months) & (others > 0) & (kept > _SHARE_TOL))
        log.loans(
            "long_age.months",
            joined.series(bad, kept[bad]),
            f"aged {policy.long_age.months:g} months or more and disposable, but retained",
        )
    has_wo = joined.option_count(chan == write_off) > 0 if write_off >= 0 else 0
    stay = joined.per_loan(joined.share, ["retain", "restructure"])
    small = loans["small_micro"].to_numpy(dtype=bool)
    bad = np.flatnonzero(has_wo & small & (stay > _SHARE_TOL))
    log.loans(
        "write_off.priority",
        joined.series(bad, stay[bad]),
        "small/micro and eligible for write-off, but retained or restructured",
    )


def _check_budgets(
    log: _Log,
    policy: Policy,
    balance: pd.Series,
    count: pd.Series,
    profit: float,
    levels: dict[str, float],
) -> None:
    m = "CNY {amount:,.2f} against a limit of CNY {limit:,.2f}"
    if policy.write_off is not None:
        log.over(
            "write_off.quota",
            float(balance.get("write_off", 0.0)),
            policy.write_off.quota,
            "CNY",
            "write-off quota exceeded: " + m,
        )
    if policy.bulk_transfer is not None:
        bt, y = policy.bulk_transfer, levels["bulk_transfer"]
        log.over(
            "bulk_transfer.capacity",
            float(balance.get("bulk_transfer", 0.0)),
            bt.capacity * y,
            "CNY",
            "bulk transfer above AMC capacity: " + m,
        )
        log.under(
            "bulk_transfer.min_loans",
            float(count.get("bulk_transfer", 0.0)),
            bt.min_loans * y,
            "loans",
            "bulk transfer package of {amount:g} loans, minimum {limit:g}",
        )
    if policy.securitisation is not None:
        sec, y = policy.securitisation, levels["securitisation"]
        pool = float(balance.get("securitisation", 0.0))
        log.over(
            "securitisation.max_pool",
            pool,
            sec.max_pool * y,
            "CNY",
            "securitisation pool too large: " + m,
        )
        log.under(
            "securitisation.min_pool",
            pool,
            sec.min_pool * y,
            "CNY",
            "securitisation pool too small: " + m,
        )
    if policy.restructure is not None:
        log.over(
            "restructure.max_loans",
            float(count.get("restructure", 0.0)),
            float(policy.restructure.max_loans),
            "loans",
            "{amount:g} loans restructured, at most {limit:g} allowed",
        )
    for name, lim in policy.channels.items():
        y, used = levels[name], float(balance.get(name, 0.0))
        loans = float(count.get(name, 0.0))
        limit = lim.capacity if (y > 0 or not lim.switched) else 0.0
        limit = limit * y if lim.switched and np.isfinite(limit) else limit
        log.over(f"channels.{name}.capacity", used, limit, "CNY",
                 f"{name} takes more than its capacity: " + m)  # fmt: skip
        log.under(f"channels.{name}.min_balance", used, lim.min_balance * y, "CNY",
                  f"{name} takes less than its minimum: " + m)  # fmt: skip
        log.over(f"channels.{name}.max_loans", loans, lim.max_loans, "loans",
                 f"{name} takes {{amount:g}} loans, at most {{limit:g}} allowed")  # fmt: skip
        log.under(f"channels.{name}.min_loans", loans, lim.min_loans * y, "loans",
                  f"{name} takes {{amount:g}} loans, at least {{limit:g}} when used")  # fmt: skip
    if policy.profit is not None:
        log.under(
            "profit.max_loss",
            profit,
            -policy.profit.max_loss,
            "CNY",
            "profit falls by CNY {amount:,.2f}; the limit is CNY {limit:,.2f}",
        )


def _check_tolerance(log: _Log, portfolio: Portfolio, policy: Policy, joined: PlanJoin) -> None:
    tol = policy.tolerance
    if tol is None or not tol.enforce or portfolio.branches is None:
        return
    loans, table = portfolio.loans, portfolio.branches
    where = branch_rows(loans["branch"], table["branch"])
    inclusive = loans["inclusive"].to_numpy(dtype=bool) & (where >= 0)
    k = len(table)
    balance = loans["balance"].to_numpy(dtype=float)
    npl = np.bincount(where[inclusive], balance[inclusive], minlength=k)
    derec_by_loan = joined.per_loan(joined.amount * joined.derecognised)
    derec = np.bincount(where[inclusive], derec_by_loan[inclusive], minlength=k)
    total = table["inclusive_loans"].to_numpy(dtype=float)
    for b, name in enumerate(table["branch"].astype(object)):
        log.over(
            "tolerance",
            float(npl[b] - derec[b]),
            tol.threshold * float(total[b] - derec[b]),
            "CNY",
            f"branch {name}: inclusive NPL after disposal CNY {{amount:,.2f}} is above "
            f"{tol.threshold:.2%} of its inclusive loans (CNY {{limit:,.2f}})",
            branch=str(name),
        )


def branch_rows(branch: pd.Series, names: pd.Series) -> np.ndarray:
    """Row of each loan's branch in the branch table's ``names`` (-1 if absent).

    Categorical branches are mapped by their categories, not text per loan.
    """
    index = pd.Index(names.astype(object))
    if isinstance(branch.dtype, pd.CategoricalDtype):
        lookup = np.append(index.get_indexer(branch.cat.categories.astype(object)), -1)
        return lookup[branch.cat.codes.to_numpy()]
    return index.get_indexer(branch.astype(object))


def _check_wage_pool(
    log: _Log, portfolio: Portfolio, policy: Policy, joined: PlanJoin, levels: dict[str, float]
) -> None:
    """``[wage_pool] max_fall``: each branch's wage pool falls by at most that much (CNY).

    The branch's NPL loss is minus its pnl less its share of the securitisation
    fixed cost (by securitised balance); it counts in full, or at
    ``consider_share`` where the branch ends within tolerance (DESIGN section 4).
    """
    wage = policy.wage_pool
    if wage is None or not np.isfinite(wage.max_fall) or portfolio.branches is None:
        return
    loans = portfolio.loans
    table = portfolio.branches.set_index("branch")
    names = table.index.astype(object)
    where = branch_rows(loans["branch"], portfolio.branches["branch"])
    k = len(names)
    branch = where[joined.loan]
    pnl = np.bincount(branch, joined.pnl * joined.share, minlength=k)
    for name, cost in policy.fixed_costs.items():  # shared by each branch's balance in it
        code = joined.channels.get_indexer([name])[0]
        pooled = np.where(joined.chan == code, joined.amount, 0.0) if code >= 0 else 0.0
        by_branch = np.bincount(branch, pooled * np.ones(branch.size), minlength=k)
        if by_branch.sum() > 0:
            pnl = pnl - cost * levels.get(name, 1.0) * by_branch / by_branch.sum()
    loss = np.maximum(-pnl, 0.0)
    counted = loss
    tol = policy.tolerance
    if tol is not None:
        inclusive = loans["inclusive"].to_numpy(dtype=bool)
        npl = np.bincount(where[inclusive], loans["balance"].to_numpy(dtype=float)[inclusive],
                          minlength=k)  # fmt: skip
        derec = np.bincount(
            where, joined.per_loan(joined.amount * joined.derecognised) * inclusive, minlength=k
        )
        total = table["inclusive_loans"].to_numpy(dtype=float)
        within = (npl - derec) <= tol.threshold * (total - derec) + _CENT
        counted = np.where(within, wage.consider_share * loss, loss)
    rate = np.full(k, wage.rate)
    if "wage_rate" in table:
        rate = table["wage_rate"].astype(float).fillna(wage.rate).to_numpy()
    profit = table["profit"].to_numpy(dtype=float)
    fall = rate * (np.maximum(profit, 0.0) - np.maximum(profit - counted, 0.0))
    for b in range(k):
        log.over(
            "wage_pool.max_fall",
            float(fall[b]),
            wage.max_fall,
            "CNY",
            f"branch {names[b]}: the plan's NPL losses cut its wage pool by CNY "
            "{amount:,.2f}; the limit is CNY {limit:,.2f}",
            branch=str(names[b]),
        )

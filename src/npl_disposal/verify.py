"""Independent check of a plan against every rule of DESIGN section 4.

:func:`verify_plan` recomputes each rule from the loan table, the options table
and the policy with pandas joins and group sums, never from the solver's matrix,
so a modelling slip in :mod:`npl_disposal.problem` cannot hide here. Every
solve runs it before it returns: a violated plan is a bug, never a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.policy import Policy
from npl_disposal.portfolio import Portfolio

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
) -> Verification:
    """Check ``plan`` (``loan_id, channel, share``) against every rule of the policy.

    ``on`` gives the on/off level of the ``bulk_transfer`` and ``securitisation``
    blocks (default: on exactly when the channel is used). ``whole_loan``
    (default: the policy's mode) also requires every share to be 0 or 1.
    """
    log = _Log()
    loans = portfolio.loans.set_index("loan_id")
    opts = options[["loan_id", "channel", "value", "pnl", "derecognised"]]
    joined = plan.merge(opts, on=["loan_id", "channel"], how="left", indicator=True)
    _check_shares(
        log, loans, joined, whole_loan if whole_loan is not None else policy.mode == "whole_loan"
    )
    joined = joined[joined["_merge"] == "both"]
    joined = joined.assign(balance=joined["loan_id"].map(loans["balance"]))
    joined["amount"] = joined["balance"] * joined["share"]
    by_channel = joined.groupby("channel")
    balance = by_channel["amount"].sum()
    count = by_channel["share"].sum()
    levels = _block_levels(policy, balance, count, on)
    fixed = (
        policy.securitisation.fixed_cost * levels.get("securitisation", 0.0)
        if (policy.securitisation is not None)
        else 0.0
    )
    objective = float((joined["value"] * joined["share"]).sum() - fixed)
    profit = float((joined["pnl"] * joined["share"]).sum() - fixed)
    _check_loan_rules(log, loans, opts, joined, policy)
    _check_budgets(log, policy, balance, count, profit, levels)
    _check_tolerance(log, portfolio, policy, joined)
    usage = {f"{c}_balance": float(v) for c, v in balance.items()}
    usage.update({f"{c}_loans": float(v) for c, v in count.items()})
    usage["profit"] = profit
    return Verification(log.frame(), objective, usage)


def _check_shares(log: _Log, loans: pd.DataFrame, joined: pd.DataFrame, whole: bool) -> None:
    ineligible = joined[joined["_merge"] != "both"]
    log.loans(
        "eligible",
        ineligible.set_index("loan_id")["share"],
        "share sent to a channel it is not eligible for",
    )
    share = joined["share"]
    log.loans(
        "share_range",
        joined.loc[
            (share < -_SHARE_TOL) | (share > 1 + _SHARE_TOL), ["loan_id", "share"]
        ].set_index("loan_id")["share"],
        "share outside [0, 1]",
    )
    if whole:
        frac = joined.loc[np.minimum(share, 1 - share).abs() > _SHARE_TOL]
        log.loans(
            "whole_loan",
            frac.set_index("loan_id")["share"],
            "split between channels in whole-loan mode",
        )
    total = joined.groupby("loan_id")["share"].sum().reindex(loans.index, fill_value=0.0)
    log.loans(
        "allocated_once",
        (total - 1.0)[(total - 1.0).abs() > 1e-6],
        "shares do not sum to 1 (every loan must be allocated exactly once)",
    )


def _block_levels(
    policy: Policy, balance: pd.Series, count: pd.Series, on: Mapping[str, float] | None
) -> dict[str, float]:
    levels = {}
    for name in ("bulk_transfer", "securitisation"):
        used = float(count.get(name, 0.0)) > _SHARE_TOL
        levels[name] = float(on[name]) if on and name in on else float(used)
    return levels


def _check_loan_rules(
    log: _Log, loans: pd.DataFrame, opts: pd.DataFrame, joined: pd.DataFrame, policy: Policy
) -> None:
    n_other = opts[opts["channel"] != "retain"].groupby("loan_id").size()
    has_wo = set(opts.loc[opts["channel"] == "write_off", "loan_id"])
    kept = joined[joined["channel"] == "retain"].groupby("loan_id")["share"].sum()
    if policy.long_age is not None:
        age = loans["npl_age_months"].reindex(kept.index)
        others = n_other.reindex(kept.index, fill_value=0)
        bad = kept[(age >= policy.long_age.months) & (others > 0) & (kept > _SHARE_TOL)]
        log.loans(
            "long_age.months",
            bad,
            f"aged {policy.long_age.months:g} months or more and disposable, but retained",
        )
    small = loans["small_micro"]
    stay = joined[joined["channel"].isin(["retain", "restructure"])]
    stay = stay[stay["loan_id"].isin(has_wo)]
    stay = stay[stay["loan_id"].map(small).astype(bool) & (stay["share"] > _SHARE_TOL)]
    log.loans(
        "write_off.priority",
        stay.groupby("loan_id")["share"].sum(),
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
    if policy.profit is not None:
        log.under(
            "profit.max_loss",
            profit,
            -policy.profit.max_loss,
            "CNY",
            "profit falls by CNY {amount:,.2f}; the limit is CNY {limit:,.2f}",
        )


def _check_tolerance(log: _Log, portfolio: Portfolio, policy: Policy, joined: pd.DataFrame) -> None:
    tol = policy.tolerance
    if tol is None or not tol.enforce or portfolio.branches is None:
        return
    loans = portfolio.loans
    inclusive = loans[loans["inclusive"]]
    npl = inclusive.groupby("branch", observed=True)["balance"].sum()
    incl = joined[joined["loan_id"].isin(inclusive["loan_id"])]
    branch = incl["loan_id"].map(loans.set_index("loan_id")["branch"])
    derec = (incl["amount"] * incl["derecognised"]).groupby(branch.astype(object)).sum()
    for rec in portfolio.branches.itertuples(index=False):
        n_k = float(npl.get(rec.branch, 0.0))
        d_k = float(derec.get(rec.branch, 0.0))
        l_k = float(rec.inclusive_loans)
        log.over(
            "tolerance",
            n_k - d_k,
            tol.threshold * (l_k - d_k),
            "CNY",
            f"branch {rec.branch}: inclusive NPL after disposal CNY {{amount:,.2f}} is above "
            f"{tol.threshold:.2%} of its inclusive loans (CNY {{limit:,.2f}})",
            branch=str(rec.branch),
        )

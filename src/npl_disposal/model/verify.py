"""Independent check of a plan against every rule of the policy.

:func:`verify_plan` joins the plan to the loan table and the options table and
measures it there, rule by rule, never from the solver's matrix, so a slip in the
model's rows cannot hide here. Each rule comes from the policy's one definition
(:mod:`npl_disposal.policy.rules`): the loan rules' barred options, the limits on the
plan's measures, the wage-pool fall. Every solve runs it before it returns: a
violated plan is a bug, never a result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from npl_disposal.io._ids import positions_in
from npl_disposal.io.portfolio import Branches, Portfolio
from npl_disposal.model._join import PlanJoin, PlanKeys
from npl_disposal.policy import Policy
from npl_disposal.policy.budgets import Limit
from npl_disposal.policy.measures import Measured
from npl_disposal.policy.risk import FLOOR_RULE
from npl_disposal.policy.rules import Rules

if TYPE_CHECKING:
    from npl_disposal.io.scenarios import Scenarios
    from npl_disposal.model.risk_verify import RiskFigures

__all__ = [
    "VIOLATION_COLUMNS",
    "Verification",
    "check_limits",
    "check_loans",
    "check_wage_pool",
    "levels_of",
    "verify_plan",
]

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
    CNY yuan recomputed from the options table (with scenarios: its expected value);
    ``usage`` is each rule's usage; ``risk`` the plan's value in each scenario, its
    expected value and tail mean (with scenarios only).
    """

    violations: pd.DataFrame
    objective: float
    usage: Mapping[str, float]
    risk: RiskFigures | None = None

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
    scenarios: Scenarios | None = None,
) -> Verification:
    """Check ``plan`` (``loan_id, channel, share``) against every rule of the policy.

    ``on`` gives the on/off level of the on/off channels (bulk transfer,
    securitisation, ``[channels.NAME]`` with minimums or a fixed cost; default: on
    exactly when the channel is used). ``whole_loan`` (default: the policy's mode)
    also requires every share to be 0 or 1. ``keys`` (from
    :func:`~npl_disposal.solve`) say where the plan's rows point in the loan table,
    which spares hashing every loan id. With ``scenarios`` the plan is valued in
    each of them (:func:`~npl_disposal.model.risk_verify.risk_figures`), its value is
    the expected value and the ``[risk] min_tail_value`` floor is checked.
    """
    log = _Log()
    rules = policy.rules
    joined = PlanJoin.of(portfolio.loans, options, plan, keys)
    whole = whole_loan if whole_loan is not None else policy.mode == "whole_loan"
    check_loans(log, joined, rules, whole)
    balance = joined.by_channel(joined.amount)
    count = joined.by_channel(joined.share)
    levels = levels_of(rules, count, on)
    fixed = sum(cost * levels.get(name, 0.0) for name, cost in rules.fixed_costs.items())
    objective = float(joined.value @ joined.share - fixed)
    table = portfolio.branch_table if portfolio.branches is not None else None
    names = table.names if table is not None else ()
    measured = joined.measured(positions_in(portfolio.loans["branch"], names), len(names), levels)
    required = rules.required_write_off(joined, joined.loans)
    check_limits(log, rules.limits(table, required), measured, names)
    if table is not None and rules.wage_pool.checked():
        check_wage_pool(log, rules, measured, table)
    usage = {f"{c}_balance": float(v) for c, v in balance.items()}
    usage.update({f"{c}_loans": float(v) for c, v in count.items()})
    usage["profit"] = float(joined.pnl @ joined.share - fixed)
    risk = None
    if scenarios is not None:
        risk = _check_risk(log, joined, portfolio, policy, scenarios, fixed)
        objective = risk.expected_value
    return Verification(log.frame(), objective, usage, risk)


def _check_risk(
    log: _Log,
    joined: PlanJoin,
    portfolio: Portfolio,
    policy: Policy,
    scenarios: Scenarios,
    fixed: float,
) -> RiskFigures:
    """The plan's value in each scenario; the tail mean against ``[risk] min_tail_value``."""
    from npl_disposal.model.risk_verify import floor_miss, risk_figures

    figures = risk_figures(joined, portfolio.loans, scenarios, policy.risk, fixed)
    miss = floor_miss(figures, policy.risk)
    if miss is not None:
        tail, floor, words = miss
        log.under(FLOOR_RULE, tail, floor, "CNY", words.replace("{", "{{").replace("}", "}}"))
    return figures


def check_loans(log: _Log, joined: PlanJoin, rules: Rules, whole: bool) -> None:
    """The plan's rows one by one: eligible options, shares, whole loans, the loan rules."""
    _check_shares(log, joined, whole)
    _check_loan_rules(log, joined, rules)


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


def levels_of(
    rules: Rules, count: Mapping[str, float], on: Mapping[str, float] | None
) -> dict[str, float]:
    """On/off level of each on/off channel: ``on`` when given, else 1 exactly when used."""
    levels = {}
    for budget in rules.budgets:
        if budget.on_off:
            name = budget.channel
            used = float(count.get(name, 0.0)) > _SHARE_TOL
            levels[name] = float(on[name]) if on and name in on else float(used)
    return levels


def _check_loan_rules(log: _Log, joined: PlanJoin, rules: Rules) -> None:
    """No share on an option a loan rule bars (the loan rules read the options table)."""
    for rule in rules.loan_rules:
        barred, channels = rule.barred(joined, joined.loans)
        if not channels:
            continue
        used = joined.per_loan(joined.share, list(channels))
        bad = np.flatnonzero(barred & (used > _SHARE_TOL))
        log.loans(rule.rule, joined.series(bad, used[bad]), rule.broken())


def check_limits(
    log: _Log, limits: Sequence[Limit], measured: Measured, branches: Sequence[str]
) -> None:
    """Each limit against the plan's measure, at the plan's on/off levels.

    A per-branch measure is read at the limit's branch, a position in ``branches``.
    """
    code = {name: b for b, name in enumerate(branches)}
    for limit in limits:
        value = measured.evaluate(limit.measure)
        if limit.measure.by_branch:
            value = np.asarray(value)[code[str(limit.branch)]]
        amount = float(value) - limit.fixed(measured.levels)
        if limit.restate is not None:
            shown, bound = limit.restate(amount)
            log.over(limit.rule, shown, bound, limit.unit, limit.broken, branch=limit.branch)
            continue
        bound = limit.bound(measured.levels)
        check = log.over if limit.sense == "<=" else log.under
        check(limit.rule, amount, bound, limit.unit, limit.broken, branch=limit.branch)


def check_wage_pool(log: _Log, rules: Rules, measured: Measured, table: Branches) -> None:
    """``[wage_pool] max_fall``: each branch's wage pool falls by at most that much (CNY)."""
    wage = rules.wage_pool
    fall = wage.falls(measured, table, rules.fixed_costs)
    for b, name in enumerate(table.names):
        log.over("wage_pool.max_fall", float(fall[b]), wage.section.max_fall, "CNY",
                 wage.broken(name), branch=name)  # fmt: skip

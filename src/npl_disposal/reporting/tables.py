"""The report's tables: what went where, what the rules forced, the budgets, the branches.

:func:`report_tables` gives every table of the HTML report and the workbook, unformatted
(money in CNY yuan, ratios as fractions); :func:`disposal_summary` and
:func:`compliance_table` are its detailed pieces.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.io.portfolio import age_bucket
from npl_disposal.io.schema import AGE_LABELS
from npl_disposal.model.problem import GridOffers

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult

__all__ = [
    "BUDGETS_GUIDE",
    "COLUMNS",
    "PRICE_DECIMALS",
    "SUMMARY_KINDS",
    "TABLE_IDS",
    "compliance_table",
    "disposal_summary",
    "gap_text",
    "isnan",
    "price_text",
    "report_tables",
]

#: The ``id`` of every table the report can hold (``add-back`` only where the branch
#: table gives ``inclusive_loans_start``).
TABLE_IDS = (
    "summary", "channel-mix", "budgets", "tolerance", "wage-pool", "add-back", "compliance",
    "disposal",
)  # fmt: skip


_SUMMARY_COLUMNS = ["loans", "balance", "value", "pnl"]


def disposal_summary(result: AllocationResult) -> pd.DataFrame:
    """Loans, balance, value and pnl (CNY yuan) by channel x branch x class x age bucket.

    One row per non-empty group; ``loans`` counts loan shares (fractional plans
    give fractional counts). The ``balance`` column sums to the portfolio balance.
    """
    p = result.problem
    loans = p.portfolio.loans
    loan, chan = np.nonzero(result.shares > 1e-12)
    share = result.shares[loan, chan]
    channels = pd.Categorical.from_codes(chan, categories=list(p.channels))
    branch_order = list(dict.fromkeys([*p.branches, *loans["branch"].astype(str).unique()]))
    frame = pd.DataFrame(
        {
            "channel": channels,
            "branch": pd.Categorical(
                loans["branch"].astype(str).to_numpy()[loan], categories=branch_order
            ),
            "classification": loans["classification"].to_numpy()[loan],
            "age_bucket": pd.Categorical(
                age_bucket(loans["npl_age_months"]).to_numpy()[loan], categories=list(AGE_LABELS)
            ),
            "loans": share,
            "balance": share * p.balance[loan],
            "value": share * p.value[loan, chan],
            "pnl": share * p.pnl[loan, chan],
        }
    )
    keys = ["channel", "branch", "classification", "age_bucket"]
    out = frame.groupby(keys, observed=True, sort=True)[_SUMMARY_COLUMNS].sum()
    return out.reset_index()


def compliance_table(result: AllocationResult) -> pd.DataFrame:
    """Loans the loan rules forced out of the book, by rule and channel.

    Columns ``rule, channel, loans, balance`` (CNY yuan); ``rule`` is ``long_age``,
    ``write_off_priority`` or both joined by ``+``. Loans a rule concerns that no other
    channel can take (so stay) appear as, e.g., ``long_age (no other channel)``; under
    ``[write_off] priority = "quota_first"`` the small/micro loans offered write-off
    appear as ``write_off_priority (quota_first)``, wherever the plan sends them.
    """
    p = result.problem
    loans = p.portfolio.loans
    forced = p.forced_out
    offers = GridOffers(p.offered, p.channels)
    rule = np.full(len(loans), "", dtype=object)
    for loan_rule in p.policy.rules.loan_rules:
        hit = forced & loan_rule.barred(offers, loans)[0]
        rule[hit] = np.where(rule[hit] == "", loan_rule.label, rule[hit] + " + " + loan_rule.label)
    for loan_rule in p.policy.rules.loan_rules:
        stuck = loan_rule.concerns(offers, loans) & ~forced & (rule == "")
        bars = bool(loan_rule.barred(offers, loans)[1])
        rule[stuck] = f"{loan_rule.label} ({'no other channel' if bars else 'quota_first'})"
    picked = rule != ""
    columns = ["rule", "channel", "loans", "balance"]
    if not picked.any():
        return pd.DataFrame({c: [] for c in columns})
    loan, chan = np.nonzero(result.shares[picked] > 1e-12)
    idx = np.flatnonzero(picked)[loan]
    share = result.shares[idx, chan]
    frame = pd.DataFrame(
        {
            "rule": rule[idx],
            "channel": pd.Categorical.from_codes(chan, categories=list(p.channels)),
            "loans": share,
            "balance": share * p.balance[idx],
        }
    )
    out = frame.groupby(["rule", "channel"], observed=True, sort=True)[["loans", "balance"]].sum()
    return out.reset_index()[columns]



#: Decimals a shadow price is shown to at most: a millionth of a yuan.
PRICE_DECIMALS = 6


def price_text(value: float) -> str:
    """A shadow price (CNY per CNY or per loan) as read: to 4 significant digits.

    From 1,000 up in whole yuan with separators (``105,352``); below, to 4 significant
    digits without trailing zeros (``1.054``, ``0.02339``, ``0.005``), at most
    :data:`PRICE_DECIMALS` decimals, so a price under a millionth of a yuan is ``0``.
    """
    v = float(value)
    if not math.isfinite(v):
        return f"{v:g}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if round(v, PRICE_DECIMALS) == 0:
        return "0"
    decimals = min(PRICE_DECIMALS, 3 - math.floor(math.log10(abs(v))))
    return f"{v:,.{decimals}f}".rstrip("0").rstrip(".")


def gap_text(gap: float) -> str:
    """The optimality gap (a ratio) in percent: ``1.23%``, ``0.012%``, ``< 0.0001%``.

    From 1% up to 2 decimals, below to 2 significant digits down to 0.0001%.
    """
    pct = abs(float(gap)) * 100
    if pct == 0.0:
        return "0%"
    if pct < 1e-4:
        return "< 0.0001%"
    return f"{pct:.2f}%" if pct >= 1 else f"{pct:.2g}%"


def isnan(x: Any) -> bool:
    """Whether ``x`` is a missing number (NaN, None, NA); False for anything else."""
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False



# --------------------------------------------------------------------------- tables

#: Columns of every report table, in order, and how each is shown: ``money`` (CNY),
#: ``pct`` (a ratio), ``count`` (loans, possibly fractional), ``amount`` (CNY or loans
#: as the row's ``unit`` says), ``price`` (a shadow price), ``share`` (of a loan),
#: ``flag`` / ``check`` (yes / no), ``text``. ``summary`` is described by
#: :data:`SUMMARY_KINDS` instead (its ``value`` column mixes kinds).
COLUMNS: dict[str, dict[str, str]] = {
    "summary": {"item": "text", "value": "value"},
    "channel-mix": {"channel": "text", "loans": "count", "balance": "money", "value": "money",
                    "pnl": "money", "balance_share": "pct"},
    "budgets": {"name": "text", "branch": "text", "unit": "text", "sense": "text",
                "usage": "amount", "limit": "amount", "level": "share", "slack": "amount",
                "binding": "flag", "usage_lp": "amount", "binding_lp": "flag",
                "shadow_price": "price", "fixed_costs": "text", "note": "text"},
    "tolerance": {"branch": "text", "inclusive_npl": "money", "inclusive_loans": "money",
                  "derecognised": "money", "ratio_before": "pct", "ratio_after": "pct",
                  "threshold": "pct", "within": "check", "headroom": "money"},
    "wage-pool": {"branch": "text", "npl_loss": "money", "profit_after": "money",
                  "relief": "money", "wage_pool": "money"},
    "add-back": {"branch": "text", "written_off": "money", "growth": "pct",
                 "growth_restored": "pct", "increment": "money", "increment_restored": "money"},
    "compliance": {"rule": "text", "channel": "text", "loans": "count", "balance": "money"},
    "disposal": {"channel": "text", "branch": "text", "loans": "count", "balance": "money",
                 "value": "money", "pnl": "money"},
    "plan": {"loan_id": "text", "channel": "text", "share": "share"},
}  # fmt: skip

#: How to read the budgets table (the report shows it above the table; README repeats it).
BUDGETS_GUIDE = (
    "Each rule is shown as policy.toml states it: limit is the policy's own number, usage "
    "the plan's amount in the same sense (the profit rule shows how far this year's profit "
    "falls, the fixed costs of channels used included and named). An on/off channel (bulk "
    "transfer, securitisation, a channel with a minimum or a fixed cost) has a level: 1 used, "
    "0 not; its limits apply times the level, and a channel not used is marked off, not "
    "binding. A rule is binding when its slack is within a millionth of its limit (or a cent). "
    "The shadow price, from the LP relaxation (loans may be split), is the CNY of value one "
    "more unit of the limit would add (CNY per CNY, or per loan); a binding rule can show a "
    "price of 0 when another binding rule already holds the plan there. The LP's usage and "
    "binding flag stand beside the plan's, since a whole-loan plan rarely fills a budget "
    "exactly."
)

#: The rows of the ``summary`` table that are not text, and their kind.
SUMMARY_KINDS = {"objective": "money", "bound": "money", "gap": "num", "seconds": "seconds"}


def _summary(result: AllocationResult) -> pd.DataFrame:
    values = [result.status.value, result.mode, result.objective, result.bound, result.gap,
              f"{result.solver.backend}/{result.solver.method}", result.solver.seconds]  # fmt: skip
    return pd.DataFrame(
        {
            "item": ["status", "mode", "objective", "bound", "gap", "solver", "seconds"],
            "value": pd.Series(values, dtype=object),
        }
    )


def _budgets(result: AllocationResult, priced: AllocationResult | None) -> pd.DataFrame:
    """The rules and budgets of the plan, without the tail model's rows.

    Those (one per scenario, and per channel and segment) are not budgets; the report's
    recovery-risk section shows what they hold.
    """
    from npl_disposal.policy.risk import MODEL_RULES

    table = result.constraints
    table = table[~table["rule"].isin(MODEL_RULES)].reset_index(drop=True)
    if priced is not None:
        by_name = priced.constraints.set_index("name")
        table["shadow_price"] = table["name"].map(by_name["shadow_price"])
        table["usage_lp"] = table["name"].map(by_name["usage"])
        table["binding_lp"] = table["name"].map(by_name["binding"])
    table["unit"] = table["unit"].astype(str)
    return table


def _by_channel_branch(result: AllocationResult) -> pd.DataFrame:
    detail = disposal_summary(result)
    by_cb = detail.groupby(["channel", "branch"], observed=True, sort=True)[_SUMMARY_COLUMNS]
    return by_cb.sum().reset_index()


def report_tables(
    result: AllocationResult, priced: AllocationResult | None = None
) -> dict[str, pd.DataFrame]:
    """The report's tables by id (the ids of :data:`TABLE_IDS`, in that order), unformatted.

    Money is CNY yuan, ratios are fractions, ``loans`` counts loan shares; each
    table has the columns the report shows. ``add-back`` is absent when the branch
    table gives no ``inclusive_loans_start``. ``priced`` (a fractional result of the
    same problem) supplies the budgets' ``shadow_price`` and ``binding_lp``.
    """
    figures = result.branch_figures()
    tables = {
        "summary": _summary(result),
        "channel-mix": result.channel_mix().reset_index(),
        "budgets": _budgets(result, priced),
        "tolerance": figures,
        "wage-pool": figures,
        "add-back": figures,
        "compliance": compliance_table(result),
        "disposal": _by_channel_branch(result),
    }
    if "growth" not in figures:
        del tables["add-back"]
    return {
        tid: frame[[c for c in COLUMNS[tid] if c in frame.columns]].reset_index(drop=True)
        for tid, frame in tables.items()
    }


"""The explicit regulatory checks per branch (DESIGN section 4, "Branch figures").

:func:`branch_figures` gives, for every branch, the inclusive small/micro NPL
ratio before and after a plan against the tolerance threshold, the wage-pool
profit adjustment and the write-off add-back growth figures. Without a plan it
describes the position today (before disposal). Everything is recomputed from
the tables with pandas, independently of the optimiser's matrices.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from npl_disposal.policy import Policy
from npl_disposal.portfolio import Portfolio

__all__ = ["BRANCH_FIGURES", "branch_figures"]

#: The columns of DESIGN section 5's ``branches.csv``, in order.
BRANCH_FIGURES = [
    "ratio_before", "ratio_after", "threshold", "within", "npl_loss", "profit_after", "relief",
    "wage_pool",
]  # fmt: skip


def branch_figures(
    portfolio: Portfolio,
    policy: Policy,
    plan: pd.DataFrame | None = None,
    options: pd.DataFrame | None = None,
    blocks: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Per-branch tolerance, wage-pool and add-back figures for ``plan`` (CNY yuan).

    ``plan`` has ``loan_id, channel, share``; ``options`` gives each option's
    ``pnl`` and ``derecognised``; ``blocks`` the on/off level of securitisation
    (its fixed cost is shared by securitised balance). With no plan the figures
    are those before disposal.

    Columns: ``branch``, the figures of DESIGN section 4 (``ratio_before,
    ratio_after, threshold, within, npl_loss, profit_after, relief, wage_pool``),
    then ``inclusive_npl, inclusive_loans, derecognised, written_off, headroom``
    and, where the branch table has ``inclusive_loans_start``, ``growth,
    growth_restored, increment, increment_restored``. ``headroom`` is the
    inclusive NPL (CNY) the branch may still keep within tolerance; negative,
    what it must still derecognise.
    """
    if portfolio.branches is None:
        raise ValueError("branch figures need the branch table: read_portfolio(..., branches=)")
    branches = portfolio.branches.set_index("branch")
    moved = _disposals(portfolio, plan, options, policy, blocks)
    names = branches.index
    npl = _inclusive_npl(portfolio).reindex(names, fill_value=0.0)
    total = branches["inclusive_loans"].astype(float)
    derec = moved["derecognised"].reindex(names, fill_value=0.0)
    written = moved["written_off"].reindex(names, fill_value=0.0)
    pnl = moved["pnl"].reindex(names, fill_value=0.0)
    tau = policy.tolerance.threshold if policy.tolerance is not None else np.nan
    after = (npl - derec) / (total - derec)
    within = after <= tau + 1e-12
    npl_loss = np.maximum(0.0, -pnl) + 0.0  # no "-0.0" in reports
    profit_after = branches["profit"].astype(float) - npl_loss
    wage = policy.wage_pool_or_default
    relief = np.where(within, (1.0 - wage.consider_share) * npl_loss, 0.0) + 0.0
    rate = (
        branches["wage_rate"].astype(float).fillna(wage.rate)
        if "wage_rate" in branches
        else pd.Series(wage.rate, index=names)
    )
    out = pd.DataFrame(
        {
            "ratio_before": npl / total,
            "ratio_after": after,
            "threshold": tau,
            "within": within,
            "npl_loss": npl_loss,
            "profit_after": profit_after,
            "relief": relief,
            "wage_pool": rate * np.maximum(0.0, profit_after + relief),
            "inclusive_npl": npl,
            "inclusive_loans": total,
            "derecognised": derec,
            "written_off": written,
            "headroom": (tau * (total - derec) - (npl - derec)) / (1.0 - tau),
        },
        index=names,
    )
    if "inclusive_loans_start" in branches:
        start = branches["inclusive_loans_start"].astype(float)
        end = total - derec
        out["growth"] = (end - start) / start
        out["growth_restored"] = (end + written - start) / start
        out["increment"] = end - start
        out["increment_restored"] = end + written - start
    return out.reset_index()


def _inclusive_npl(portfolio: Portfolio) -> pd.Series:
    loans = portfolio.loans
    inclusive = loans[loans["inclusive"]]
    return inclusive.groupby(inclusive["branch"].astype(object))["balance"].sum()


def _disposals(
    portfolio: Portfolio,
    plan: pd.DataFrame | None,
    options: pd.DataFrame | None,
    policy: Policy,
    blocks: Mapping[str, float] | None,
) -> pd.DataFrame:
    """Per branch: derecognised and written-off inclusive balance, and plan pnl (CNY)."""
    empty = pd.DataFrame({"derecognised": [], "written_off": [], "pnl": []}, dtype=float)
    if plan is None or plan.empty:
        return empty
    if options is None:
        raise ValueError("branch figures for a plan need its options table (pnl, derecognised)")
    loans = portfolio.loans.set_index("loan_id")
    rows = plan.merge(
        options[["loan_id", "channel", "pnl", "derecognised"]], on=["loan_id", "channel"]
    )
    branch = rows["loan_id"].map(loans["branch"]).astype(object)
    amount = rows["loan_id"].map(loans["balance"]) * rows["share"]
    inclusive = rows["loan_id"].map(loans["inclusive"]).astype(bool)
    fixed = _fixed_cost_share(policy, rows, amount, branch, blocks)
    frame = pd.DataFrame(
        {
            "branch": branch,
            "derecognised": np.where(inclusive, amount * rows["derecognised"], 0.0),
            "written_off": np.where(inclusive & (rows["channel"] == "write_off"), amount, 0.0),
            "pnl": rows["pnl"] * rows["share"],
        }
    )
    out = frame.groupby("branch")[["derecognised", "written_off", "pnl"]].sum()
    return out.assign(pnl=out["pnl"] - fixed.reindex(out.index, fill_value=0.0))


def _fixed_cost_share(
    policy: Policy,
    rows: pd.DataFrame,
    amount: pd.Series,
    branch: pd.Series,
    blocks: Mapping[str, float] | None,
) -> pd.Series:
    """Each branch's share of the fixed costs (CNY), by its balance in each costly channel.

    Securitisation's issuance cost (DESIGN section 4), and likewise the fixed cost
    of a user channel of ``[channels.NAME]``.
    """
    costs = {name: lim.fixed_cost for name, lim in policy.channels.items() if lim.fixed_cost}
    if policy.securitisation is not None:
        costs["securitisation"] = policy.securitisation.fixed_cost
    total = pd.Series(dtype=float)
    for name, cost in costs.items():
        pooled = amount.where(rows["channel"] == name, 0.0)
        if pooled.sum() <= 0:
            continue
        level = float(blocks.get(name, 1.0)) if blocks else 1.0
        by_branch = pooled.groupby(branch).sum()
        total = total.add(cost * level * by_branch / by_branch.sum(), fill_value=0.0)
    return total

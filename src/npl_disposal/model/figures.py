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

from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model._join import PlanJoin, PlanKeys
from npl_disposal.policy import Policy

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
    *,
    keys: PlanKeys | None = None,
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
    moved = _disposals(portfolio, plan, options, policy, blocks, keys)
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
    keys: PlanKeys | None = None,
) -> pd.DataFrame:
    """Per branch: derecognised and written-off inclusive balance, and plan pnl (CNY)."""
    empty = pd.DataFrame({"derecognised": [], "written_off": [], "pnl": []}, dtype=float)
    if plan is None or plan.empty:
        return empty
    if options is None:
        raise ValueError("branch figures for a plan need its options table (pnl, derecognised)")
    join = PlanJoin.of(portfolio.loans, options, plan, keys)
    loans = portfolio.loans
    column = loans["branch"]
    if isinstance(column.dtype, pd.CategoricalDtype):  # as read_portfolio leaves it
        codes, names = column.cat.codes.to_numpy(), column.cat.categories.astype(object)
    else:
        codes, names = pd.factorize(column.astype(object))
    branch = codes[join.loan]
    k = len(names)
    inclusive = loans["inclusive"].to_numpy(dtype=bool)[join.loan]
    written = join.chan == join.channels.get_indexer(["write_off"])[0]
    pnl = np.bincount(branch, join.pnl * join.share, minlength=k)
    for name, cost in policy.fixed_costs.items():  # shared by balance in the channel
        code = join.channels.get_indexer([name])[0]
        pooled = np.bincount(branch, np.where(join.chan == code, join.amount, 0.0), minlength=k)
        if code >= 0 and pooled.sum() > 0:
            level = float(blocks.get(name, 1.0)) if blocks else 1.0
            pnl = pnl - cost * level * pooled / pooled.sum()
    out = pd.DataFrame(
        {
            "derecognised": np.bincount(
                branch, np.where(inclusive, join.amount * join.derecognised, 0.0), minlength=k
            ),
            "written_off": np.bincount(
                branch, np.where(inclusive & written, join.amount, 0.0), minlength=k
            ),
            "pnl": pnl,
        },
        index=pd.Index(np.asarray(names, dtype=object), name="branch"),
    )
    return out + 0.0

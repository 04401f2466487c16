"""The explicit regulatory checks per branch: tolerance, wage pool, write-off add-back.

:func:`branch_figures` gives, for every branch, the inclusive small/micro NPL ratio
before and after a plan against the tolerance threshold, the wage-pool profit
adjustment and the write-off add-back growth figures (``docs/model.md`` states each).
Without a plan it describes the position today (before disposal). The plan is
measured on the tables it names (:class:`~npl_disposal.policy.measures.Measure`),
independently of the optimiser's matrices.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from npl_disposal.io._ids import positions_in
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model._join import PlanJoin, PlanKeys
from npl_disposal.policy import Policy
from npl_disposal.policy.measures import DERECOGNISED, WRITTEN_OFF, npl_loss

__all__ = ["BRANCH_FIGURES", "branch_figures"]

#: The columns of ``branches.csv``, in order.
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
    ``pnl`` and ``derecognised``; ``blocks`` the on/off level of each on/off channel
    (a fixed cost is shared by balance in the channel). With no plan the figures are
    those before disposal.

    Columns: ``branch``, the figures of ``branches.csv`` (``ratio_before,
    ratio_after, threshold, within, npl_loss, profit_after, relief, wage_pool``),
    then ``inclusive_npl, inclusive_loans, derecognised, written_off, headroom``
    and, where the branch table has ``inclusive_loans_start``, ``growth,
    growth_restored, increment, increment_restored``. ``headroom`` is the
    inclusive NPL (CNY) the branch may still keep within tolerance; negative,
    what it must still derecognise.
    """
    table = portfolio.branch_table
    rules = policy.rules
    k = len(table)
    derec = written = loss = np.zeros(k)
    if plan is not None and not plan.empty:
        if options is None:
            raise ValueError("branch figures for a plan need its options table (pnl, derecognised)")
        join = PlanJoin.of(portfolio.loans, options, plan, keys)
        branch_of = positions_in(portfolio.loans["branch"], table.names)
        measured = join.measured(branch_of, k, dict(blocks) if blocks else {})
        derec = np.asarray(measured.evaluate(DERECOGNISED)) + 0.0
        written = np.asarray(measured.evaluate(WRITTEN_OFF)) + 0.0
        loss = npl_loss(measured, rules.fixed_costs)
    npl, total = table.inclusive_npl, table.inclusive_loans
    tau = rules.tolerance.threshold if rules.tolerance is not None else np.nan
    after = (npl - derec) / (total - derec)
    within = after <= tau + 1e-12
    profit_after = table.profit - loss
    wage = rules.wage_pool
    relief = np.where(within, (1.0 - wage.section.consider_share) * loss, 0.0) + 0.0
    out = pd.DataFrame(
        {
            "ratio_before": npl / total,
            "ratio_after": after,
            "threshold": tau,
            "within": within,
            "npl_loss": loss,
            "profit_after": profit_after,
            "relief": relief,
            "wage_pool": wage.rates(table) * np.maximum(0.0, profit_after + relief),
            "inclusive_npl": npl,
            "inclusive_loans": total,
            "derecognised": derec,
            "written_off": written,
            "headroom": (tau * (total - derec) - (npl - derec)) / (1.0 - tau),
        },
        index=pd.Index(portfolio.branches["branch"], name="branch"),  # type: ignore[index]
    )
    if table.inclusive_loans_start is not None:
        start = table.inclusive_loans_start
        end = total - derec
        out["growth"] = (end - start) / start
        out["growth_restored"] = (end + written - start) / start
        out["increment"] = end - start
        out["increment_restored"] = end + written - start
    return out.reset_index()

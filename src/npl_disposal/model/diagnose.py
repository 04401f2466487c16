"""Why a policy cannot be met, in the bank's words and with amounts.

:func:`precheck` runs cheap necessary conditions before any solve: the loans the loan
rules force out of the book against the room the budgeted channels have for them;
each branch's tolerance requirement against the inclusive NPL it can derecognise;
the least profit loss possible against the limit. :func:`explain` words the rows an
elastic relaxation had to miss (the solvers run it:
:func:`~npl_disposal.solvers.solve.explain_infeasibility`), each in its rule's words.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from npl_disposal._grid import row_max
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.rows import ResourceRows
from npl_disposal.policy._values import millions
from npl_disposal.policy.rules import Rules

__all__ = ["CONFLICT_COLUMNS", "conflict", "explain", "precheck"]

CONFLICT_COLUMNS = ["rule", "branch", "needed", "available", "shortfall", "unit", "explanation"]


def conflict(
    rule: str, needed: float, available: float, unit: str, text: str, branch: str | None = None
) -> dict[str, object]:
    """One row of the conflicts table of :class:`~npl_disposal.InfeasiblePolicyError`."""
    return dict(rule=rule, branch=branch, needed=needed, available=available,
                shortfall=needed - available, unit=unit, explanation=text)  # fmt: skip


def precheck(problem: AllocationProblem) -> pd.DataFrame:
    """Necessary conditions the policy fails, if any (empty table when none fails)."""
    rules = problem.policy.rules
    found = [*_forced_out(problem, rules), *_tolerance(problem, rules), *_profit(problem, rules)]
    return pd.DataFrame(found, columns=CONFLICT_COLUMNS)


def _forced_out(problem: AllocationProblem, rules: Rules) -> list[dict[str, object]]:
    """The loans the loan rules force out of the book against the room budgets leave them."""
    forced = problem.forced_out
    if not forced.any():
        return []
    room = {b.channel: b.room() for b in rules.budgets}
    budgeted = [
        c in room and (math.isfinite(room[c][0]) or math.isfinite(room[c][2]))
        for c in problem.channels
    ]
    # A loan that a channel without a budget may take can always leave the book.
    for free_exit in np.flatnonzero(~np.array(budgeted, dtype=bool)):
        forced &= ~problem.eligible[:, free_exit]
    if not forced.any():
        return []
    balance = problem.balance[forced]
    eligible = problem.eligible[forced]
    available, parts = 0.0, []
    for j, channel in enumerate(problem.channels):
        takes = eligible[:, j]
        if not takes.any():
            continue
        reach = float(balance[takes].sum())
        capacity, label, most, loans_label = room.get(channel, (math.inf, "", math.inf, ""))
        limit, label = capacity, (label if math.isfinite(capacity) else "") or channel
        if math.isfinite(most):
            top = float(np.sort(balance[takes])[::-1][: int(most)].sum())
            limit, label = min(limit, top), f"{loans_label} (largest loans within the loan limit)"
        available += min(limit, reach)
        parts.append(f"{label} {millions(min(limit, reach))}")
    needed = float(balance.sum())
    if needed <= available + 0.01:
        return []
    text = (
        f"the long-age and write-off-priority rules force {int(forced.sum()):,} loans "
        f"({millions(needed)}) out of the book, but the channels that may take them have room "
        f"for only {millions(available)} ({'; '.join(parts)}); "
        f"raise those budgets by {millions(needed - available)}"
    )
    return [conflict("long_age / write_off.priority", needed, available, "CNY", text)]


def _tolerance(problem: AllocationProblem, rules: Rules) -> list[dict[str, object]]:
    pf = problem.portfolio
    if rules.tolerance is None or pf.branches is None:
        return []
    inc = problem.inclusive
    best = row_max(problem.derecognised, where=problem.eligible, fill=0.0) * problem.balance
    can = np.bincount(problem.branch_index[inc], best[inc], minlength=len(problem.branches))
    return [
        conflict("tolerance", need, float(can[b]), "CNY", text, problem.branches[b])
        for b, need, text in rules.tolerance.shortfalls(pf.branch_table, can)
    ]


def _profit(problem: AllocationProblem, rules: Rules) -> list[dict[str, object]]:
    if rules.profit is None:
        return []
    least = -float(row_max(problem.pnl, where=problem.eligible).sum())
    text = rules.profit.shortfall(least)
    if text is None:
        return []
    return [conflict("profit.max_loss", least, rules.profit.section.max_loss, "CNY", text)]


def explain(rows: ResourceRows, shortfall: np.ndarray) -> pd.DataFrame:
    """The ``rows`` an elastic relaxation missed by ``shortfall`` (natural units), in words.

    No row missed while the relaxation was feasible means only whole loans fail: the
    conflict is named ``whole_loan``.
    """
    short = np.abs(shortfall)
    found = []
    for r in np.flatnonzero(short > np.where(np.array(rows.unit) == "CNY", 0.01, 1e-6)):
        limit = rows.lower[r] if math.isfinite(rows.lower[r]) else rows.upper[r]
        found.append(conflict(rows.rule[r], abs(limit) + short[r], abs(limit), rows.unit[r],
                              rows.words(int(r), float(short[r])), rows.branch[r]))  # fmt: skip
    if not found:
        found.append(conflict(
            "whole_loan", math.nan, math.nan, "",
            "a fractional plan meets every rule but no whole-loan plan does: the minimum sizes "
            "(bulk_transfer.min_loans, securitisation.min_pool) or the budgets cannot be met "
            "with whole loans; try mode = 'fractional' or relax those minimums",
        ))  # fmt: skip
    return pd.DataFrame(found, columns=CONFLICT_COLUMNS)

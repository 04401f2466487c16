"""Why a policy cannot be met, in the bank's words and with amounts.

:func:`precheck` runs cheap necessary conditions before any solve (the loans
the rules force out of the book against the capacity that may take them; each
branch's tolerance requirement against its eligible inclusive NPL; the least
profit loss possible against the limit). :func:`explain_infeasibility` solves
the elastic relaxation, which lets every rule be missed at a price, and names
each rule it had to miss and by how much.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from npl_disposal._grid import row_max
from npl_disposal.model.problem import AllocationProblem, tolerance_requirement

__all__ = ["CONFLICT_COLUMNS", "explain_infeasibility", "precheck"]

CONFLICT_COLUMNS = ["rule", "branch", "needed", "available", "shortfall", "unit", "explanation"]


def _m(amount: float) -> str:
    """CNY in millions, or in yuan where millions would round a miss to 0.00m."""
    return f"CNY {amount:,.2f}" if 0 < abs(amount) < 5e3 else f"CNY {amount / 1e6:,.2f}m"


def _conflict(rule: str, needed: float, available: float, unit: str, text: str,
              branch: str | None = None) -> dict[str, object]:  # fmt: skip
    return dict(rule=rule, branch=branch, needed=needed, available=available,
                shortfall=needed - available, unit=unit, explanation=text)  # fmt: skip


def precheck(problem: AllocationProblem) -> pd.DataFrame:
    """Necessary conditions the policy fails, if any (empty table when none fails)."""
    found = [*_forced_out(problem), *_tolerance(problem), *_profit(problem)]
    return pd.DataFrame(found, columns=CONFLICT_COLUMNS)


def _channel_capacity(problem: AllocationProblem) -> dict[str, tuple[float, str]]:
    """Balance (CNY yuan) each budgeted channel can take at most, with the rule naming it."""
    pol = problem.policy
    cap: dict[str, tuple[float, str]] = {}
    if pol.write_off is not None:
        cap["write_off"] = (pol.write_off.quota, "write-off quota")
    if pol.bulk_transfer is not None:
        cap["bulk_transfer"] = (pol.bulk_transfer.capacity, "bulk transfer capacity")
    if pol.securitisation is not None:
        cap["securitisation"] = (pol.securitisation.max_pool, "securitisation max pool")
    for name, lim in pol.channels.items():
        if math.isfinite(lim.capacity):
            cap[name] = (lim.capacity, f"{name} capacity")
    return cap


def _loan_limits(problem: AllocationProblem) -> dict[str, tuple[int, str]]:
    """Loans each channel with a loan-count budget can take at most, with the rule naming it."""
    pol = problem.policy
    out: dict[str, tuple[int, str]] = {}
    if pol.restructure is not None:
        out["restructure"] = (pol.restructure.max_loans, "restructuring")
    for name, lim in pol.channels.items():
        if math.isfinite(lim.max_loans):
            out[name] = (int(lim.max_loans), name)
    return out


def _forced_out(problem: AllocationProblem) -> list[dict[str, object]]:
    forced = problem.forced_out
    if not forced.any():
        return []
    cap, counted = _channel_capacity(problem), _loan_limits(problem)
    budgeted = [c in cap or c in counted for c in problem.channels]
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
        limit = cap.get(channel, (math.inf, channel))[0]
        label = cap.get(channel, (0.0, channel))[1]
        if channel in counted:
            most, what = counted[channel]
            top = float(np.sort(balance[takes])[::-1][:most].sum())
            limit, label = min(limit, top), f"{what} (largest loans within the loan limit)"
        available += min(limit, reach)
        parts.append(f"{label} {_m(min(limit, reach))}")
    needed = float(balance.sum())
    if needed <= available + 0.01:
        return []
    text = (
        f"the long-age and write-off-priority rules force {int(forced.sum()):,} loans "
        f"({_m(needed)}) out of the book, but the channels that may take them have room for "
        f"only {_m(available)} ({'; '.join(parts)}); "
        f"raise those budgets by {_m(needed - available)}"
    )
    return [_conflict("long_age / write_off.priority", needed, available, "CNY", text)]


def _tolerance(problem: AllocationProblem) -> list[dict[str, object]]:
    pol, pf = problem.policy, problem.portfolio
    if pol.tolerance is None or not pol.tolerance.enforce or pf.branches is None:
        return []
    k = len(problem.branches)
    inc = problem.inclusive
    npl = np.bincount(problem.branch_index[inc], problem.balance[inc], minlength=k)
    total = pf.branches["inclusive_loans"].to_numpy(dtype=float)
    need = tolerance_requirement(npl, total, pol.tolerance.threshold)
    best = row_max(problem.derecognised, where=problem.eligible, fill=0.0) * problem.balance
    can = np.bincount(problem.branch_index[inc], best[inc], minlength=k)
    out = []
    for b in np.flatnonzero(need > can + 0.01):
        text = (
            f"branch {problem.branches[b]} must derecognise {_m(need[b])} of inclusive NPL to "
            f"bring its ratio from {npl[b] / total[b]:.2%} to the threshold "
            f"{pol.tolerance.threshold:.2%}; only {_m(can[b])} is eligible for a channel that "
            "derecognises it"
        )
        out.append(_conflict("tolerance", float(need[b]), float(can[b]), "CNY", text,
                             problem.branches[b]))  # fmt: skip
    return out


def _profit(problem: AllocationProblem) -> list[dict[str, object]]:
    pol = problem.policy
    if pol.profit is None:
        return []
    best = float(row_max(problem.pnl, where=problem.eligible).sum())
    if best >= -pol.profit.max_loss - 0.01:
        return []
    loss = -best
    text = (
        f"even the plan that costs the least profit loses {_m(loss)} this year; the policy "
        f"allows a loss of {_m(pol.profit.max_loss)} (profit.max_loss)"
    )
    return [_conflict("profit.max_loss", loss, pol.profit.max_loss, "CNY", text)]


_WORDS = {
    "write_off.quota": "the write-off quota is {x} short",
    "bulk_transfer.capacity": "AMCs would have to buy {x} more than the bulk transfer capacity",
    "bulk_transfer.min_loans": "the bulk transfer package is {x} short of its minimum size",
    "securitisation.max_pool": "the securitisation pool would exceed its maximum by {x}",
    "securitisation.min_pool": "the securitisation pool is {x} short of its minimum",
    "restructure.max_loans": "{x} more restructurings than restructure.max_loans allows",
    "profit.max_loss": "profit would fall {x} more than profit.max_loss allows",
    "tolerance": "branch {branch} needs {x} more derecognised inclusive NPL to be within tolerance",
    "wage_pool.max_fall": "branch {branch}'s wage pool would fall {x} more than "
    "wage_pool.max_fall allows",
    "capacity": "{channel} would have to take {x} more than its capacity",
    "min_balance": "{channel} is {x} short of its minimum",
    "max_loans": "{x} more loans to {channel} than its max_loans allows",
    "min_loans": "{channel} is {x} short of its minimum number of loans",
}


def explain_infeasibility(problem: AllocationProblem) -> pd.DataFrame:
    """Rules the elastic relaxation had to miss, with the amounts (least total miss)."""
    from npl_disposal.solvers.decomposition import solve_fractional

    outcome = solve_fractional(problem, phase_one=True)
    short = np.abs(outcome.shortfall)
    rows = problem.rows
    found = []
    for r in np.flatnonzero(short > np.where(np.array(rows.unit) == "CNY", 0.01, 1e-6)):
        unit = rows.unit[r]
        amount = _m(short[r]) if unit == "CNY" else f"{short[r]:,.1f} loans"
        rule = rows.rule[r]
        channel, key = "", rule
        if rule.startswith("channels."):
            channel, key = rule[len("channels.") : rule.rfind(".")], rule[rule.rfind(".") + 1 :]
        text = _WORDS.get(key, rows.names[r] + " misses by {x}").format(
            x=amount, branch=rows.branch[r], channel=channel
        )
        limit = rows.lower[r] if math.isfinite(rows.lower[r]) else rows.upper[r]
        found.append(_conflict(rows.rule[r], abs(limit) + short[r], abs(limit), unit, text,
                               rows.branch[r]))  # fmt: skip
    if not found:
        found.append(_conflict(
            "whole_loan", math.nan, math.nan, "",
            "a fractional plan meets every rule but no whole-loan plan does: the minimum sizes "
            "(bulk_transfer.min_loans, securitisation.min_pool) or the budgets cannot be met "
            "with whole loans; try mode = 'fractional' or relax those minimums",
        ))  # fmt: skip
    return pd.DataFrame(found, columns=CONFLICT_COLUMNS)

"""Small schedules as tables, and a plain model of all periods built straight from them.

:func:`schedule_cases` draws a few loans over 1-4 periods: options over time whose
value and balance fall as a loan waits, an NPL path, branch periods with new NPL, and
a policy with windows, per-period lists, a profit floor per year and the tolerance at
year ends or every period. :func:`reference_optimum` writes docs/model.md section 8 as
one PuLP model from those tables, one variable per option row, and solves it with
HiGHS: an independent check of the library's schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pulp
from hypothesis import strategies as st

from npl_disposal.model.schedule import build_schedule

#: Channels a loan may be offered in each period, with their derecognised share.
CHANNELS = {"write_off": 1.0, "bulk_transfer": 1.0, "securitisation": 0.95, "restructure": 0.0}


@dataclass(frozen=True, eq=False)
class ScheduleCase:
    """A schedule as tables: loans, branches, options over time, path, branch periods."""

    loans: pd.DataFrame
    branches: pd.DataFrame
    options: pd.DataFrame
    path: pd.DataFrame
    branch_periods: pd.DataFrame
    policy: dict[str, Any]

    @property
    def periods(self) -> int:
        return int(self.policy["schedule"]["periods"])

    def build(self, policy: dict[str, Any] | None = None) -> Any:
        return build_schedule(self.loans, self.policy if policy is None else policy,
                              self.options, self.branches, path=self.path,
                              branch_periods=self.branch_periods)  # fmt: skip


def _money(draw: st.DrawFn, low: float, high: float) -> float:
    return draw(st.integers(round(low * 100), round(high * 100))) / 100.0


@st.composite
def schedule_tables(draw: st.DrawFn, max_loans: int = 5, max_periods: int = 4) -> ScheduleCase:
    periods = draw(st.sampled_from([2, 3, 4, 1][:max_periods]), label="periods")
    n = draw(st.integers(1, max_loans), label="loans")
    names = ["B1", "B2"][: draw(st.integers(1, 2))]
    loans, options, path = [], [], []
    for i in range(n):
        loan_id = f"S{i + 1:02d}"
        balance = _money(draw, 10_000.0, 1_000_000.0)
        small = draw(st.booleans())
        loans.append({"loan_id": loan_id, "branch": draw(st.sampled_from(names)),
                      "balance": balance, "provision": round(balance * 0.5, 2),
                      "classification": draw(st.sampled_from(["substandard", "doubtful", "loss"])),
                      "npl_age_months": float(draw(st.integers(0, 60))), "small_micro": small,
                      "inclusive": small and draw(st.booleans())})  # fmt: skip
        kept = balance
        for t in range(1, periods + 1):
            kept = round(kept * draw(st.floats(0.6, 1.0)), 2)
            path.append({"loan_id": loan_id, "period": t, "balance": kept})
        options.append({"loan_id": loan_id, "channel": "retain", "period": periods + 1,
                        "value": _money(draw, 0.0, balance), "pnl": 0.0, "derecognised": 0.0,
                        "balance": balance})  # fmt: skip
        at = balance
        for t in range(1, periods + 1):
            at = round(at * draw(st.floats(0.7, 1.0)), 2)
            for channel in draw(st.lists(st.sampled_from(list(CHANNELS)), unique=True,
                                         max_size=3)):  # fmt: skip
                value = _money(draw, 0.0, at)
                options.append({"loan_id": loan_id, "channel": channel, "period": t,
                                "value": value,
                                "pnl": round(value - at * draw(st.floats(0.0, 1.0)), 2),
                                "derecognised": CHANNELS[channel], "balance": at})  # fmt: skip
    loan_frame = pd.DataFrame(loans)
    branches, branch_periods = _branches(draw, loan_frame, names, periods)
    policy = draw(schedule_policies(loan_frame, periods))
    return ScheduleCase(loan_frame, branches, pd.DataFrame(options), pd.DataFrame(path),
                        branch_periods, policy)  # fmt: skip


def _branches(
    draw: st.DrawFn, loans: pd.DataFrame, names: list[str], periods: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, per = [], []
    for name in names:
        npl = float(loans.loc[loans["inclusive"] & (loans["branch"] == name), "balance"].sum())
        total = round(max(npl / draw(st.floats(0.02, 0.4)), npl + 1_000_000.0 * (npl == 0)), 2)
        rows.append({"branch": name, "inclusive_loans": total, "profit": 5_000_000.0})
        for t in range(1, periods + 1):
            per.append({"branch": name, "period": t, "inclusive_loans": total,
                        "new_npl": _money(draw, 0.0, 0.01 * total)})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(per)


@st.composite
def schedule_policies(draw: st.DrawFn, loans: pd.DataFrame, periods: int) -> dict[str, Any]:
    total = float(loans["balance"].sum())
    policy: dict[str, Any] = {"mode": {"mode": "whole_loan"}, "schedule": {"periods": periods}}
    coin = st.booleans()
    share = st.floats(0.0, 1.2)
    every = list(range(1, periods + 1))
    if draw(coin):
        policy["long_age"] = {"months": draw(st.sampled_from([24, 36, 48]))}
    if draw(coin):
        policy["write_off"] = {"quota": round(total * draw(share), 2)}
        if draw(coin):
            policy["write_off"]["quota_by_period"] = [round(total * draw(share) / 2, 2)
                                                      for _ in every]  # fmt: skip
        if draw(coin):
            policy["write_off"]["priority"] = "none"
    if draw(coin):
        policy["bulk_transfer"] = {"capacity": round(total * draw(share), 2),
                                   "min_loans": draw(st.integers(0, 2))}  # fmt: skip
        if draw(coin):
            policy["bulk_transfer"]["windows"] = draw(_windows_of(every))
    if draw(coin):
        top = round(total * draw(share), 2)
        policy["securitisation"] = {"max_pool": top, "min_pool": round(top * draw(
            st.sampled_from([0.0, 0.3])), 2), "fixed_cost": draw(st.sampled_from([0.0, 5_000.0]))}
        if draw(coin):
            policy["securitisation"]["windows"] = draw(_windows_of(every))
    if draw(coin):
        policy["restructure"] = {"max_loans": draw(st.integers(0, 3))}
    if draw(coin):
        policy["profit"] = {"max_loss": round(total * draw(st.floats(0.0, 0.6)), 2)}
    if draw(coin):
        at = draw(st.sampled_from(["year_end", "every_period"]))
        ratio = draw(st.sampled_from([0.01, 0.05, 0.15]))
        policy["tolerance"] = {"bank_npl_ratio": ratio, "margin": 0.03, "at": at}
    if draw(coin):
        policy["schedule"]["period_months"] = draw(st.sampled_from([3, 6]))
    return policy


def _windows_of(every: list[int]) -> st.SearchStrategy[list[int]]:
    return st.lists(st.sampled_from(every), min_size=1, unique=True)


# --------------------------------------------------------------------------- reference


def reference_optimum(case: ScheduleCase, whole_loan: bool) -> float | None:
    """docs/model.md section 8 as one plain PuLP model of the tables; None if infeasible."""
    pol = case.policy
    periods, months = case.periods, int(pol["schedule"].get("period_months", 3))
    year = {t: (t - 1) * months // 12 + 1 for t in range(1, periods + 1)}
    year[periods + 1] = 1
    loans = case.loans.set_index("loan_id")
    opts = case.options.reset_index(drop=True)
    cat = pulp.LpBinary if whole_loan else pulp.LpContinuous
    prob = pulp.LpProblem("schedule", pulp.LpMaximize)
    x = {r: _variable(prob, f"x{r}", cat) for r in opts.index}
    windows = _windows(pol, periods)
    blocks = {}
    for channel in ("bulk_transfer", "securitisation"):
        if channel in pol:
            for t in windows[channel]:
                if ((opts["channel"] == channel) & (opts["period"] == t)).any():
                    blocks[(channel, t)] = _variable(prob, f"y_{channel}_{t}", cat)
    fixed = {k: pol["securitisation"].get("fixed_cost", 0.0) if k[0] == "securitisation" else 0.0
             for k in blocks}  # fmt: skip
    prob += pulp.lpSum(opts.at[r, "value"] * x[r] for r in opts.index) - pulp.lpSum(
        fixed[k] * y for k, y in blocks.items())
    for rows in opts.groupby("loan_id").groups.values():
        prob += pulp.lpSum(x[r] for r in rows) == 1
    _forbid(prob, x, opts, loans, pol, windows)
    _budgets(prob, x, opts, pol, blocks, periods)
    if "profit" in pol:
        for y in sorted(set(year.values())):
            rows = [r for r in opts.index if year[int(opts.at[r, "period"])] == y]
            costs = [fixed[k] * v for k, v in blocks.items() if year[k[1]] == y]
            prob += (pulp.lpSum(opts.at[r, "pnl"] * x[r] for r in rows) - pulp.lpSum(costs)
                     >= -pol["profit"]["max_loss"])  # fmt: skip
    if "tolerance" in pol and pol["tolerance"].get("enforce", True):
        _tolerance(prob, x, opts, case, year)
    status = prob.solve(pulp.HiGHS(msg=False) if "HiGHS" in pulp.listSolvers(onlyAvailable=True)
                        else pulp.PULP_CBC_CMD(msg=False))  # fmt: skip
    if pulp.LpStatus[status] != "Optimal":
        return None
    return float(pulp.value(prob.objective) or 0.0)


def _variable(prob: Any, name: str, cat: str) -> Any:
    """A variable in [0, 1] (PuLP 4's way where it exists, PuLP 3's otherwise)."""
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, 0, 1, cat=cat)
    return pulp.LpVariable(name, 0, 1, cat)


def _windows(pol: dict[str, Any], periods: int) -> dict[str, list[int]]:
    every = list(range(1, periods + 1))
    return {c: list(pol.get(c, {}).get("windows") or every)
            for c in ("bulk_transfer", "securitisation")}  # fmt: skip


def _forbid(prob: Any, x: dict, opts: pd.DataFrame, loans: pd.DataFrame, pol: dict,
            windows: dict[str, list[int]]) -> None:  # fmt: skip
    for r in opts.index:
        c, t = opts.at[r, "channel"], int(opts.at[r, "period"])
        if c in windows and t not in windows[c]:
            prob += x[r] == 0
    reading = pol.get("write_off", {}).get("priority", "leave_book")
    for loan_id, rows in opts.groupby("loan_id").groups.items():
        rec = loans.loc[loan_id]
        usable = [r for r in rows if opts.at[r, "channel"] != "retain" and not (
            opts.at[r, "channel"] in windows
            and int(opts.at[r, "period"]) not in windows[opts.at[r, "channel"]])]
        retain = [r for r in rows if opts.at[r, "channel"] == "retain"]
        aged = "long_age" in pol and rec["npl_age_months"] >= pol["long_age"]["months"]
        first_wo = any(opts.at[r, "channel"] == "write_off" and int(opts.at[r, "period"]) == 1
                       for r in usable)  # fmt: skip
        priority = reading == "leave_book" and bool(rec["small_micro"]) and first_wo
        if (aged and usable) or priority:
            prob += pulp.lpSum(x[r] for r in retain) == 0
        if priority:
            prob += pulp.lpSum(x[r] for r in rows if opts.at[r, "channel"] == "restructure") == 0


def _budgets(prob: Any, x: dict, opts: pd.DataFrame, pol: dict, blocks: dict,
             periods: int) -> None:  # fmt: skip
    def bal(channel: str, period: int | None = None) -> Any:
        return pulp.lpSum(opts.at[r, "balance"] * x[r] for r in opts.index
                          if opts.at[r, "channel"] == channel
                          and (period is None or int(opts.at[r, "period"]) == period))  # fmt: skip

    def count(channel: str, period: int | None = None) -> Any:
        return pulp.lpSum(x[r] for r in opts.index if opts.at[r, "channel"] == channel
                          and (period is None or int(opts.at[r, "period"]) == period))  # fmt: skip

    if "write_off" in pol:
        prob += bal("write_off") <= pol["write_off"]["quota"]
        for t, q in enumerate(pol["write_off"].get("quota_by_period") or [], start=1):
            prob += bal("write_off", t) <= q
    if "bulk_transfer" in pol:
        body = pol["bulk_transfer"]
        prob += bal("bulk_transfer") <= body["capacity"]
        for t in range(1, periods + 1):
            y = blocks.get(("bulk_transfer", t))
            if y is None:
                prob += count("bulk_transfer", t) == 0
                continue
            prob += bal("bulk_transfer", t) <= body["capacity"] * y
            prob += count("bulk_transfer", t) >= body.get("min_loans", 0) * y
    if "securitisation" in pol:
        body = pol["securitisation"]
        for t in range(1, periods + 1):
            y = blocks.get(("securitisation", t))
            if y is None:
                prob += count("securitisation", t) == 0
                continue
            prob += bal("securitisation", t) <= body["max_pool"] * y
            prob += bal("securitisation", t) >= body.get("min_pool", 0.0) * y
    if "restructure" in pol:
        prob += count("restructure") <= pol["restructure"]["max_loans"]


def _tolerance(prob: Any, x: dict, opts: pd.DataFrame, case: ScheduleCase,
               year: dict[int, int]) -> None:  # fmt: skip
    pol, periods = case.policy, case.periods
    tau = pol["tolerance"]["bank_npl_ratio"] + pol["tolerance"].get("margin", 0.03)
    if pol["tolerance"].get("at", "year_end") == "every_period":
        checked = list(range(1, periods + 1))
    else:
        checked = [max(t for t in range(1, periods + 1) if year[t] == y)
                   for y in sorted({year[t] for t in range(1, periods + 1)})]  # fmt: skip
    path = case.path.set_index(["loan_id", "period"])["balance"]
    per = case.branch_periods.set_index(["branch", "period"])
    loans = case.loans.set_index("loan_id")
    for branch in case.branches["branch"]:
        mine = loans.index[loans["inclusive"] & (loans["branch"] == branch)]
        for t in checked:
            npl = sum(path[(i, t)] for i in mine) + sum(
                per.at[(branch, s), "new_npl"] for s in range(1, t + 1))
            total = per.at[(branch, t), "inclusive_loans"]
            d = pulp.lpSum(path[(opts.at[r, "loan_id"], t)] * opts.at[r, "derecognised"] * x[r]
                           for r in opts.index if opts.at[r, "loan_id"] in set(mine)
                           and int(opts.at[r, "period"]) <= t)  # fmt: skip
            if (npl - tau * total) / (1 - tau) > 0:
                prob += npl - d <= tau * (total - d)
    return None


def two_window_tables(branches: tuple[str, str, str], unit: float) -> tuple[pd.DataFrame,
                                                                             pd.DataFrame]:
    """Six loans, two to a branch, and their options over two periods (money in ``unit``).

    Half the loans sell best by bulk transfer now, half later; write-off is open in both
    periods and retaining keeps a loan to the end. The loans and the options tables.
    """
    ids = [f"L{i}" for i in range(6)]
    loans = pd.DataFrame({
        "loan_id": ids, "branch": [b for b in branches for _ in range(2)],
        "balance": [unit * 100.0 * (k + 1) for k in range(6)], "provision": [unit * 50.0] * 6,
        "classification": ["loss"] * 6, "npl_age_months": [6.0] * 6,
        "small_micro": [True] * 6, "inclusive": [True] * 6,
    })  # fmt: skip
    rows = [(i, "retain", 3, unit * 1.0, 0.0, 0.0) for i in ids]
    for t in (1, 2):
        rows += [(i, "bulk_transfer", t, unit * (40.0 + (10.0 if k % 2 == t - 1 else 0.0)),
                  -unit, 1.0) for k, i in enumerate(ids)]  # fmt: skip
        rows += [(i, "write_off", t, unit * 5.0, unit * -20.0, 1.0) for i in ids]
    options = pd.DataFrame(rows, columns=["loan_id", "channel", "period", "value", "pnl",
                                          "derecognised"])  # fmt: skip
    return loans, options

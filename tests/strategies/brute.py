"""Every whole-loan plan of a tiny case enumerated and checked rule by rule in plain numpy."""


from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.cases import Case, tolerance_threshold


@dataclass(frozen=True)
class BruteForce:
    """Optimum of the enumeration (None when no whole-loan plan meets the policy)."""

    objective: float | None
    plans: int
    feasible: int
    best: dict[str, str] | None


def priority_of(policy: Mapping[str, Any]) -> str:
    """The reading of the write-off priority: ``leave_book`` unless ``[write_off]`` says."""
    return str(policy.get("write_off", {}).get("priority", "leave_book"))


def eligible_channels(case: Case, policy: Mapping[str, Any]) -> list[list[str]]:
    """Per loan, its channels after the long-age (rule 2) and write-off-priority (rule 3) rules."""
    leave_book = priority_of(policy) == "leave_book"
    out = []
    offered = case.options.groupby("loan_id")["channel"].apply(list)
    for rec in case.loans.itertuples(index=False):
        channels = list(offered[rec.loan_id])
        others = [c for c in channels if c != "retain"]
        if "long_age" in policy and rec.npl_age_months >= policy["long_age"]["months"] and others:
            channels.remove("retain")
        if leave_book and rec.small_micro and "write_off" in channels:
            channels = [c for c in channels if c not in ("retain", "restructure")]
        out.append(channels)
    return out


def quota_first(policy: Mapping[str, Any], balance: np.ndarray, first: np.ndarray) -> float:
    """The small/micro balance ``quota_first`` requires written off (docs/model.md 4.2).

    The quota filled with the loans of ``first``, largest first, each taken if it fits.
    """
    room = policy["write_off"]["quota"]
    for b in sorted(balance[first], reverse=True):
        if b <= room:
            room -= b
    return float(policy["write_off"]["quota"] - room)


def brute_force(
    case: Case, policy: Mapping[str, Any] | None = None, eps: float = 1e-6
) -> BruteForce:
    """Enumerate every whole-loan plan; check docs/model.md directly; return the best.

    The on/off variable of a block is on exactly when its channel is used (on with the
    channel unused only costs, off with it used breaks its capacity). Limits are met
    to ``eps`` yuan (default a millionth: float sums of cents; a negative ``eps`` asks
    for that much room); nothing here reads the library's matrix.
    """
    policy = case.policy if policy is None else policy
    loans = case.loans.reset_index(drop=True)
    opts = case.options.set_index(["loan_id", "channel"])
    choices = eligible_channels(case, policy)
    n = len(loans)
    count = math.prod(len(c) for c in choices)
    # Columns: one per loan; rows: one per plan (the cartesian product of the choices).
    idx = np.array(list(itertools.product(*[range(len(c)) for c in choices])), dtype=np.int64)
    idx = idx.reshape(count, n)

    def per_loan(fn: Any) -> np.ndarray:
        cols = []
        for i, chans in enumerate(choices):
            table = np.array([fn(i, c) for c in chans])
            cols.append(table[idx[:, i]])
        return np.stack(cols, axis=1) if cols else np.zeros((count, 0))

    ids = loans["loan_id"].tolist()
    bal = loans["balance"].to_numpy(dtype=float)
    offered_wo = set(case.options.loc[case.options["channel"] == "write_off", "loan_id"])
    first = loans["small_micro"].to_numpy(dtype=bool) & loans["loan_id"].isin(offered_wo).to_numpy()
    value = per_loan(lambda i, c: opts.loc[(ids[i], c), "value"])
    pnl = per_loan(lambda i, c: opts.loc[(ids[i], c), "pnl"])
    derec = per_loan(lambda i, c: opts.loc[(ids[i], c), "derecognised"])

    def is_(channel: str) -> np.ndarray:
        return per_loan(lambda i, c: c == channel).astype(bool)

    ok = np.ones(count, dtype=bool)
    fixed = np.zeros(count)
    wo, bt, sec, rs = (
        is_("write_off"),
        is_("bulk_transfer"),
        is_("securitisation"),
        is_("restructure"),
    )
    if "write_off" in policy:
        ok &= (wo * bal).sum(axis=1) <= policy["write_off"]["quota"] + eps
    if priority_of(policy) == "quota_first":
        ok &= (wo * bal * first).sum(axis=1) >= quota_first(policy, bal, first) - eps
    if "bulk_transfer" in policy:
        body = policy["bulk_transfer"]
        used = bt.any(axis=1)
        ok &= (bt * bal).sum(axis=1) <= body["capacity"] * used + eps
        ok &= bt.sum(axis=1) >= body.get("min_loans", 0) * used - eps
    if "securitisation" in policy:
        body = policy["securitisation"]
        used = sec.any(axis=1)
        pool = (sec * bal).sum(axis=1)
        ok &= pool <= body["max_pool"] * used + eps
        ok &= pool >= body.get("min_pool", 0.0) * used - eps
        fixed = body.get("fixed_cost", 0.0) * used
    if "restructure" in policy:
        ok &= rs.sum(axis=1) <= policy["restructure"]["max_loans"] + eps
    for name, lim in policy.get("channels", {}).items():
        use = is_(name)
        used = use.any(axis=1)
        taken, loans_in = (use * bal).sum(axis=1), use.sum(axis=1)
        ok &= taken <= lim.get("capacity", math.inf) + eps
        ok &= taken >= lim.get("min_balance", 0.0) * used - eps
        ok &= loans_in <= lim.get("max_loans", math.inf) + eps
        ok &= loans_in >= lim.get("min_loans", 0) * used - eps
        fixed = fixed + lim.get("fixed_cost", 0.0) * used
    if "profit" in policy:
        ok &= pnl.sum(axis=1) - fixed >= -policy["profit"]["max_loss"] - eps
    tau = tolerance_threshold(policy)
    if tau is not None:
        inclusive = loans["inclusive"].to_numpy(dtype=bool)
        branch = loans["branch"].astype(object).to_numpy()
        for rec in case.branches.itertuples(index=False):
            mine = inclusive & (branch == rec.branch)
            npl = float(bal[mine].sum())
            d = (derec * bal * mine).sum(axis=1)
            ok &= npl - d <= tau * (rec.inclusive_loans - d) + eps
    objective = value.sum(axis=1) - fixed
    feasible = int(ok.sum())
    if not feasible:
        return BruteForce(None, count, 0, None)
    best = int(np.flatnonzero(ok)[np.argmax(objective[ok])])
    plan = {ids[i]: choices[i][idx[best, i]] for i in range(n)}
    return BruteForce(float(objective[best]), count, feasible, plan)


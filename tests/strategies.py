"""Shared hypothesis strategies and problem factories for the allocation tests.

Two sources of small allocation problems (docs/model.md):

* :func:`synthetic_cases` -- :func:`npl_disposal.datasets.make_portfolio` with its own
  options and a randomly perturbed ``policy_dict()`` (sections dropped, budgets scaled,
  the tolerance made to bite, securitisation minimums and fixed costs, small bulk packages);
* :func:`tiny_cases` -- hand-built tables of at most 7 loans in the canonical columns of
  the input files, with a custom channel ``amc_b`` and budgets that sometimes sit exactly
  on a sum of balances (ties), small enough to enumerate every whole-loan plan.

:func:`brute_force` enumerates those plans and checks every rule of docs/model.md in
plain numpy from the tables and the policy mapping, independent of the library's matrix.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import assume
from hypothesis import strategies as st

from npl_disposal import InfeasiblePolicyError, build_problem, solve
from npl_disposal.datasets import SyntheticPortfolio, make_portfolio
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers.result import AllocationResult, Status

#: Every section of policy.toml that adds a constraint (docs/model.md).
CONSTRAINT_SECTIONS = (
    "long_age",
    "write_off",
    "bulk_transfer",
    "securitisation",
    "restructure",
    "profit",
    "tolerance",
)
#: The capacities whose tightening may only lower the optimum: (section, key).
CAPACITIES = (
    ("write_off", "quota"),
    ("bulk_transfer", "capacity"),
    ("securitisation", "max_pool"),
    ("restructure", "max_loans"),
    ("profit", "max_loss"),
)
#: Channels a hand-built loan may be offered besides ``retain`` (``amc_b`` is custom).
TINY_CHANNELS = ("write_off", "bulk_transfer", "securitisation", "restructure", "amc_b")
#: Derecognised share of each channel in hand-built tables (custom: drawn).
TINY_DERECOGNISED = {
    "retain": 0.0,
    "write_off": 1.0,
    "bulk_transfer": 1.0,
    "securitisation": 0.95,
    "restructure": 0.0,
}

PolicyDict = dict[str, Any]
#: Seconds a solve may take in these tests (they take milliseconds): a guard, not a budget.
SOLVE_GUARD = 30.0


@dataclass(frozen=True, eq=False)
class Case:
    """One allocation problem as tables: loans, branches, options and a policy mapping."""

    loans: pd.DataFrame
    branches: pd.DataFrame
    options: pd.DataFrame
    policy: PolicyDict
    label: str = ""

    def __repr__(self) -> str:
        return (
            f"Case({self.label}, {len(self.loans)} loans, {len(self.branches)} branches, "
            f"policy={self.policy!r})\nloans=\n{self.loans.to_string()}\n"
            f"branches=\n{self.branches.to_string()}\noptions=\n{self.options.to_string()}"
        )

    @property
    def n_loans(self) -> int:
        """Number of loans."""
        return len(self.loans)

    def build(self, policy: PolicyDict | None = None) -> AllocationProblem:
        """The library's problem for these tables (under ``policy`` if given)."""
        return build_problem(
            self.loans,
            self.policy if policy is None else policy,
            self.options,
            self.branches,
        )


# --------------------------------------------------------------------------- factories

OPTION_FIELDS = ("loan_id", "channel", "value", "pnl", "derecognised")


def loan(loan_id: str, balance: float, **fields: Any) -> dict[str, Any]:
    """One loan row with the canonical columns; defaults: branch B1, young, not small/micro."""
    row: dict[str, Any] = {
        "loan_id": loan_id,
        "branch": "B1",
        "balance": balance,
        "provision": 0.0,
        "classification": "loss",
        "npl_age_months": 0.0,
        "small_micro": False,
        "inclusive": False,
    }
    row.update(fields)
    return row


def make_case(
    loans: list[dict[str, Any]],
    options: list[tuple[str, str, float, float, float]],
    policy: PolicyDict | None = None,
    branches: list[dict[str, Any]] | None = None,
    label: str = "factory",
) -> Case:
    """A case from plain rows; branches default to one roomy row per branch named."""
    frame = pd.DataFrame(loans)
    if branches is None:
        names = list(dict.fromkeys(frame["branch"]))
        branches = [{"branch": b, "inclusive_loans": 1e9, "profit": 1e7} for b in names]
    return Case(
        frame,
        pd.DataFrame(branches),
        pd.DataFrame(options, columns=list(OPTION_FIELDS)),
        {} if policy is None else policy,
        label,
    )


# --------------------------------------------------------------------------- policy edits


def copy_policy(policy: Mapping[str, Any]) -> PolicyDict:
    """A deep copy of a policy mapping (two levels)."""
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in policy.items()}


def without(policy: Mapping[str, Any], *sections: str) -> PolicyDict:
    """The policy without ``sections`` (those constraints become absent)."""
    out = copy_policy(policy)
    for name in sections:
        out.pop(name, None)
    return out


def tightened(policy: Mapping[str, Any], section: str, key: str, factor: float) -> PolicyDict:
    """The policy with one capacity multiplied by ``factor`` in [0, 1] (a tightening).

    Counts are floored. The securitisation pool is kept at or above twice ``min_pool``
    (never above its old size): the policy refuses ``min_pool > max_pool``, lowering
    ``min_pool`` would relax it, and a pool window of a few cents is a subset-sum
    problem that a whole-loan MILP may take hours to prove infeasible.
    """
    out = copy_policy(policy)
    body = out[section]
    old = body[key]
    if key == "max_loans":
        new: float = math.floor(old * factor)
    else:
        new = float(old) * factor
    if section == "securitisation":
        new = min(float(old), max(new, 2.0 * float(body.get("min_pool", 0.0))))
    body[key] = new
    return out


def relaxed(policy: Mapping[str, Any], section: str, key: str, delta: float) -> PolicyDict:
    """The policy with one capacity raised by ``delta``."""
    out = copy_policy(policy)
    out[section][key] = out[section][key] + delta
    return out


def tolerance_threshold(policy: Mapping[str, Any]) -> float | None:
    """τ = bank_npl_ratio + margin when the tolerance is enforced, else None."""
    tol = policy.get("tolerance")
    if tol is None or not tol.get("enforce", True):
        return None
    return float(tol["bank_npl_ratio"]) + float(tol.get("margin", 0.03))


# --------------------------------------------------------------------------- solving helpers


def try_solve(problem: AllocationProblem, **kwargs: Any) -> AllocationResult | None:
    """``solve`` or None when the policy cannot be met.

    A time limit of :data:`SOLVE_GUARD` seconds applies unless one is given; a run that
    finds no plan within it says nothing, so the example is discarded (``assume``).
    """
    kwargs.setdefault("time_limit", SOLVE_GUARD)
    try:
        result = solve(problem, **kwargs)
    except InfeasiblePolicyError:
        return None
    assume(result.status is not Status.NO_SOLUTION)
    return result


def solve_feasible(problem: AllocationProblem, **kwargs: Any) -> AllocationResult:
    """``solve``, discarding the example (hypothesis ``assume``) when it is infeasible."""
    result = try_solve(problem, **kwargs)
    assume(result is not None)
    assert result is not None
    return result


def rel_tol(*values: float, rel: float = 1e-6, floor: float = 1e-2) -> float:
    """``rel`` times the largest magnitude among ``values`` plus an absolute ``floor``."""
    return rel * max([1.0, *(abs(v) for v in values if math.isfinite(v))]) + floor


# --------------------------------------------------------------------------- synthetic source


@functools.lru_cache(maxsize=256)
def _synthetic(n_loans: int, n_branches: int, seed: int) -> tuple[SyntheticPortfolio, PolicyDict]:
    sp = make_portfolio(n_loans, n_branches, seed)
    return sp, sp.policy_dict()


def _inclusive_ratios(loans: pd.DataFrame, branches: pd.DataFrame) -> np.ndarray:
    inclusive = loans[loans["inclusive"].astype(bool)]
    npl = inclusive.groupby(inclusive["branch"].astype(object))["balance"].sum()
    have = branches["branch"].astype(object).map(npl).fillna(0.0).to_numpy(dtype=float)
    return have / branches["inclusive_loans"].to_numpy(dtype=float)


@st.composite
def tolerance_sections(
    draw: st.DrawFn, loans: pd.DataFrame, branches: pd.DataFrame
) -> dict[str, Any]:
    """A ``[tolerance]`` section; when enforced, τ sits below the worst branch's ratio."""
    ratios = _inclusive_ratios(loans, branches)
    top = float(ratios.max()) if ratios.size else 0.0
    enforce = draw(st.booleans())
    # With no inclusive NPL anywhere, any threshold; else one the worst branch is above.
    tau = draw(st.floats(0.01, 0.2)) if top <= 0.0 else top * draw(st.floats(0.6, 0.999))
    margin = min(0.03, tau / 2.0)
    return {"bank_npl_ratio": tau - margin, "margin": margin, "enforce": enforce}


@st.composite
def synthetic_cases(
    draw: st.DrawFn,
    min_loans: int = 3,
    max_loans: int = 60,
    max_branches: int = 4,
    require: tuple[str, ...] = (),
) -> Case:
    """``make_portfolio`` tables with a randomly perturbed ``policy_dict()``.

    Sections named in ``require`` are always present; the others are present at random.
    """
    n = draw(st.integers(min_loans, max_loans), label="n_loans")
    k = draw(st.integers(1, max_branches), label="n_branches")
    seed = draw(st.integers(0, 10_000), label="seed")
    sp, base = _synthetic(n, k, seed)
    policy: PolicyDict = {"mode": {"mode": "whole_loan"}}
    for name in CONSTRAINT_SECTIONS:
        if name not in require and not draw(st.booleans(), label=f"has {name}"):
            continue
        body = dict(base[name])
        scale = lambda: draw(st.floats(0.3, 2.0))  # noqa: E731
        if name == "write_off":
            body["quota"] = round(body["quota"] * scale(), 2)
        elif name == "bulk_transfer":
            body["capacity"] = round(body["capacity"] * scale(), 2)
            body["min_loans"] = draw(st.integers(0, 3))
        elif name == "securitisation":
            body["max_pool"] = round(body["max_pool"] * scale(), 2)
            body["min_pool"] = round(body["max_pool"] * draw(st.sampled_from([0.0, 0.1, 0.3])), 2)
            body["fixed_cost"] = round(body["fixed_cost"] * draw(st.floats(0.0, 2.0)), 2)
        elif name == "restructure":
            body["max_loans"] = round(max(body["max_loans"], 1) * scale())
        elif name == "profit":
            body["max_loss"] = round(body["max_loss"] * scale(), 2)
        elif name == "long_age":
            body["months"] = draw(st.sampled_from([12, 24, 36, 60]))
        elif name == "tolerance":
            body = draw(tolerance_sections(sp.loans, sp.branches))
        policy[name] = body
    return Case(
        sp.loans,
        sp.branches,
        sp.options,
        policy,
        f"synthetic(n={n}, branches={k}, seed={seed})",
    )


# --------------------------------------------------------------------------- hand-built source


def _cents(draw: st.DrawFn, low: float, high: float) -> float:
    return draw(st.integers(round(low * 100), round(high * 100))) / 100.0


@st.composite
def _budget(draw: st.DrawFn, balances: list[float], total: float, tight: bool = False) -> float:
    """A money budget: an exact sum of some balances (a tie) or a share of ``total``."""
    if draw(st.booleans()):
        mask = draw(st.lists(st.booleans(), min_size=len(balances), max_size=len(balances)))
        return float(round(sum(b for b, m in zip(balances, mask, strict=True) if m), 2))
    return round(total * draw(st.floats(0.0, 0.5 if tight else 1.2)), 2)


@st.composite
def tiny_tables(
    draw: st.DrawFn, min_loans: int = 1, max_loans: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Loans, branches and options tables (canonical columns) of at most ``max_loans`` loans."""
    n = draw(st.integers(min_loans, max_loans), label="n_loans")
    n_branches = draw(st.integers(1, 2))
    branch_names = [f"B{b + 1}" for b in range(n_branches)]
    loans, options = [], []
    for i in range(n):
        loan_id = f"T{i + 1:02d}"
        balance = draw(st.sampled_from([100_000.0, 250_000.0, 500_000.0, 1_000_000.0]))
        if draw(st.booleans()):
            balance = _cents(draw, 1_000.0, 2_000_000.0)
        small = draw(st.booleans())
        inclusive = small and draw(st.booleans())
        loans.append(
            {
                "loan_id": loan_id,
                "branch": draw(st.sampled_from(branch_names)),
                "balance": balance,
                "provision": round(balance * draw(st.floats(0.0, 1.0)), 2),
                "classification": draw(st.sampled_from(["substandard", "doubtful", "loss"])),
                "npl_age_months": float(draw(st.integers(0, 72))),
                "small_micro": small,
                "inclusive": inclusive,
            }
        )
        channels = ["retain", *draw(st.lists(st.sampled_from(TINY_CHANNELS), unique=True))]
        for channel in channels:
            value = _cents(draw, 0.0, balance)
            derec = TINY_DERECOGNISED.get(channel)
            if derec is None:
                derec = draw(st.sampled_from([0.0, 0.5, 1.0]))
            options.append(
                {
                    "loan_id": loan_id,
                    "channel": channel,
                    "value": value,
                    "pnl": round(value - balance * draw(st.floats(0.0, 1.0)), 2),
                    "derecognised": derec,
                }
            )
    loan_frame = pd.DataFrame(loans)
    incl = loan_frame[loan_frame["inclusive"]]
    rows = []
    for name in branch_names:
        npl = float(incl.loc[incl["branch"] == name, "balance"].sum())
        ratio = draw(st.floats(0.02, 0.5))
        rows.append(
            {
                "branch": name,
                "inclusive_loans": round(max(npl / ratio, npl + 1_000_000.0 * (npl == 0)), 2),
                "profit": 10_000_000.0,
            }
        )
    return loan_frame, pd.DataFrame(rows), pd.DataFrame(options)


@st.composite
def tiny_policies(
    draw: st.DrawFn,
    loans: pd.DataFrame,
    branches: pd.DataFrame,
    options: pd.DataFrame,
    tight: bool = False,
    require: tuple[str, ...] = (),
) -> PolicyDict:
    """A policy over hand-built tables: each section present or absent, budgets near use.

    ``tight`` makes sections likelier and budgets smaller (more infeasible policies);
    sections named in ``require`` are always present.
    """
    balances = loans["balance"].tolist()
    total = float(sum(balances))
    policy: PolicyDict = {"mode": {"mode": "whole_loan"}}
    coin = st.sampled_from([True, True, True, False]) if tight else st.booleans()

    def present(name: str) -> bool:
        return name in require or draw(coin)

    if present("long_age"):
        policy["long_age"] = {"months": draw(st.sampled_from([12, 24, 36, 48]))}
    if present("write_off"):
        policy["write_off"] = {"quota": draw(_budget(balances, total, tight))}
    if present("bulk_transfer"):
        policy["bulk_transfer"] = {
            "capacity": draw(_budget(balances, total, tight)),
            "min_loans": draw(st.integers(0, 3)),
        }
    if present("securitisation"):
        top = draw(_budget(balances, total, tight))
        low = draw(st.sampled_from([0.0, top, round(top * 0.5, 2)]))
        policy["securitisation"] = {
            "max_pool": top,
            "min_pool": low,
            "fixed_cost": draw(st.sampled_from([0.0, 5_000.0, 50_000.0])),
        }
    if present("restructure"):
        policy["restructure"] = {"max_loans": draw(st.integers(0, 3))}
    if present("profit"):
        worst = float(options["pnl"].clip(upper=0).abs().sum())
        policy["profit"] = {"max_loss": round(worst * draw(st.floats(0.0, 1.0)), 2)}
    if present("tolerance"):
        policy["tolerance"] = draw(tolerance_sections(loans, branches))
    if present("channels"):
        policy["channels"] = {"amc_b": draw(_channel_limits(balances, total, tight))}
    return policy


@st.composite
def _channel_limits(
    draw: st.DrawFn, balances: list[float], total: float, tight: bool
) -> dict[str, Any]:
    """``[channels.amc_b]``: any of capacity, minimum size, loan limits, fixed cost."""
    limits: dict[str, Any] = {}
    if draw(st.booleans()):
        limits["capacity"] = draw(_budget(balances, total, tight))
    if draw(st.booleans()):
        top = limits.get("capacity", total)
        limits["min_balance"] = draw(st.sampled_from([0.0, round(top * 0.5, 2), top]))
    if draw(st.booleans()):
        limits["max_loans"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        limits["min_loans"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        limits["fixed_cost"] = draw(st.sampled_from([0.0, 5_000.0]))
    return limits


@st.composite
def tiny_cases(
    draw: st.DrawFn,
    min_loans: int = 1,
    max_loans: int = 7,
    tight: bool = False,
    require: tuple[str, ...] = (),
) -> Case:
    """Hand-built tables of at most ``max_loans`` loans with a random policy."""
    loans, branches, options = draw(tiny_tables(min_loans, max_loans))
    policy = draw(tiny_policies(loans, branches, options, tight, require))
    return Case(loans, branches, options, policy, "tight" if tight else "tiny")


def cases(max_synthetic: int = 60, require: tuple[str, ...] = ()) -> st.SearchStrategy[Case]:
    """Either source (sections in ``require`` always present)."""
    return st.one_of(
        tiny_cases(require=require), synthetic_cases(max_loans=max_synthetic, require=require)
    )


# --------------------------------------------------------------------------- brute force


@dataclass(frozen=True)
class BruteForce:
    """Optimum of the enumeration (None when no whole-loan plan meets the policy)."""

    objective: float | None
    plans: int
    feasible: int
    best: dict[str, str] | None


def eligible_channels(case: Case, policy: Mapping[str, Any]) -> list[list[str]]:
    """Per loan, its channels after the long-age (rule 2) and write-off-priority (rule 3) rules."""
    out = []
    offered = case.options.groupby("loan_id")["channel"].apply(list)
    for rec in case.loans.itertuples(index=False):
        channels = list(offered[rec.loan_id])
        others = [c for c in channels if c != "retain"]
        if "long_age" in policy and rec.npl_age_months >= policy["long_age"]["months"] and others:
            channels.remove("retain")
        if rec.small_micro and "write_off" in channels:
            channels = [c for c in channels if c not in ("retain", "restructure")]
        out.append(channels)
    return out


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

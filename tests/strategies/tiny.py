"""Hand-built cases of a few loans, small enough to enumerate every whole-loan plan."""


from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import strategies as st

from strategies.cases import TINY_CHANNELS, TINY_DERECOGNISED, Case, PolicyDict
from strategies.synthetic import synthetic_cases, tolerance_sections


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
        priority = draw(st.sampled_from(["default", "leave_book", "quota_first", "none"]))
        if priority != "default":
            policy["write_off"]["priority"] = priority
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



"""What the command line prints: the portfolio, the plan and the branches, as tables."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from npl_disposal.cli._numbers import count, money, readable
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model.figures import BRANCH_FIGURES
from npl_disposal.solvers.result import AllocationResult, branches_table

__all__ = ["print_plan", "print_portfolio", "print_table"]


def print_table(title: str, frame: pd.DataFrame, money: Sequence[str] = ()) -> None:
    """Print ``frame`` under ``title``, the ``money`` columns in CNY millions.

    Ratios show in percent and loan counts as whole numbers (:mod:`._numbers`).
    """
    shown = frame.copy()
    for col in money:
        if col in shown:
            shown[col] = shown[col] / 1e6
    shown = readable(shown, money)  # ratios in percent, loan counts whole
    shown = shown.rename(columns={c: f"{c} (CNY m)" for c in money if c in shown})
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(shown.to_string(justify="right"))


def print_portfolio(portfolio: Portfolio) -> None:
    """Print the summaries a risk officer wants first."""
    print(portfolio.summary())
    money = ("balance", "provision")
    print_table("By class", portfolio.by_class(), money)
    print_table("By NPL age", portfolio.by_age(), money)
    print_table("By branch", portfolio.by_branch(), money)
    if portfolio.branches is not None:
        print_table(
            "Inclusive small/micro NPL ratio by branch (before disposal)",
            portfolio.branch_ratios(),
            ("inclusive_npl", "inclusive_loans"),
        )



def print_plan(result: AllocationResult, priced: AllocationResult | None = None) -> None:
    """Print the channel mix, the binding budgets and the branch tolerance table."""
    print(result.summary())
    print_table("Channel mix", result.channel_mix(), ("balance", "value", "pnl"))
    if priced is not None:
        binding = priced.binding()[["name", "unit", "usage", "limit", "level", "shadow_price"]]
        print(
            "\nBinding budgets in the LP relaxation (usage and limit as policy.toml states "
            "them; level: an on/off channel's; shadow price: CNY of value per CNY or per loan "
            "of extra budget)"
        )
        print(_amounts(binding).to_string(index=False, float_format=lambda x: f"{x:,.4f}",
                                          na_rep=""))  # fmt: skip
    figures = branches_table(result)[["branch", *BRANCH_FIGURES]]
    print_table(
        "Branch tolerance and wage pool after the plan",
        figures.set_index("branch"),
        ("npl_loss", "profit_after", "relief", "wage_pool"),
    )



def _amounts(binding: pd.DataFrame) -> pd.DataFrame:
    """Usage and limit as text: loans whole (:func:`count`), CNY to the fen."""
    shown = binding.copy()
    in_loans = shown["unit"].eq("loans")
    for column in ("usage", "limit"):
        shown[column] = [
            count(v) if loans else money(v, 2)
            for v, loans in zip(shown[column], in_loans, strict=True)
        ]
    return shown

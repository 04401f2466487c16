"""What the command line prints: the portfolio, the plan and the branches, as tables.

``lang="zh"`` prints the same tables with Chinese headings, channels and column names,
money in 万元 (headline totals in 亿元); see :mod:`npl_disposal.reporting.labels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from npl_disposal.cli._numbers import count, money, readable
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model.figures import BRANCH_FIGURES
from npl_disposal.reporting.labels import Labels, labels
from npl_disposal.solvers.result import AllocationResult, branches_table

__all__ = ["print_plan", "print_portfolio", "print_table"]




def print_table(
    title: str, frame: pd.DataFrame, money: Sequence[str] = (), lang: str = "en"
) -> None:
    """Print ``frame`` under ``title``, the ``money`` columns in CNY millions (zh: 万元).

    Ratios show in percent and loan counts as whole numbers (:mod:`._numbers`); money
    with three decimals (zh: two, to the hundred yuan).
    """
    lab = labels(lang)
    shown = frame.copy()
    for col in money:
        if col in shown:
            shown[col] = shown[col] / lab.money_scale
    if lab.zh:
        shown = _translated(shown, lab)
        shown.index.name = lab.column(str(shown.index.name)) if shown.index.name else None
    shown = readable(shown, money, digits=2 if lab.zh else 3)
    shown = shown.rename(columns={c: lab.column(c, lab.money_unit if c in money else "")
                                  for c in shown.columns})  # fmt: skip
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20,
                           "display.unicode.east_asian_width", lab.zh):  # fmt: skip
        print(shown.to_string(justify="right"))


def _translated(frame: pd.DataFrame, lab: Labels) -> pd.DataFrame:
    """Channels, classes and yes/no of ``frame`` (index and columns) in ``lab``'s words."""
    index_name = str(frame.index.name)
    if index_name == "channel":
        frame.index = frame.index.map(lab.channel)
    elif index_name == "classification":
        frame.index = frame.index.map(lab.classification)
    elif index_name == "age_bucket":
        frame.index = frame.index.map(lab.age)
    for col in frame.columns:
        if frame[col].dtype == bool:
            frame[col] = frame[col].map(lab.flag)
        elif col == "channel":
            frame[col] = frame[col].map(lab.channel)
    return frame


def print_portfolio(portfolio: Portfolio, lang: str = "en") -> None:
    """Print the summaries a risk officer wants first."""
    lab = labels(lang)
    if lab.zh:
        loans = portfolio.loans
        print(lab.t("cli_portfolio", source=portfolio.source, n=f"{portfolio.n_loans:,}",
                    balance=lab.money(portfolio.total_balance, total=True),
                    provision=lab.money(loans["provision"].sum(), total=True),
                    small=f"{loans['small_micro'].mean():.1%}",
                    inclusive=f"{loans['inclusive'].mean():.1%}",
                    old=f"{int((loans['npl_age_months'] >= 36).sum()):,}"))  # fmt: skip
        if portfolio.branches is not None:
            print(lab.t("cli_branches", n=len(portfolio.branches)))
    else:
        print(portfolio.summary())
    money = ("balance", "provision")
    print_table(lab.t("by_class"), portfolio.by_class(), money, lang)
    print_table(lab.t("by_age"), portfolio.by_age(), money, lang)
    print_table(lab.t("by_branch"), portfolio.by_branch(), money, lang)
    if portfolio.branches is not None:
        print_table(lab.t("ratio_before_title"), portfolio.branch_ratios(),
                    ("inclusive_npl", "inclusive_loans"), lang)  # fmt: skip


def plan_headline(result: AllocationResult, lang: str = "en") -> str:
    """The plan's first lines: ``result.summary()``, or its Chinese counterpart."""
    lab = labels(lang)
    if not lab.zh:
        return result.summary()
    return lab.t("cli_plan", status=lab.item(result.status.value), mode=lab.item(result.mode),
                 n=f"{result.problem.n_loans:,}", value=lab.money(result.objective, total=True),
                 bound=lab.money(result.bound, total=True), gap=f"{result.gap:.2e}",
                 solver=f"{result.solver.backend}/{result.solver.method}",
                 seconds=f"{result.solver.seconds:.2f}")  # fmt: skip


def print_plan(
    result: AllocationResult, priced: AllocationResult | None = None, lang: str = "en"
) -> None:
    """Print the channel mix, the binding budgets and the branch tolerance table."""
    lab = labels(lang)
    print(plan_headline(result, lang))
    print_table(lab.t("channel_mix"), result.channel_mix(), ("balance", "value", "pnl"), lang)
    if priced is not None:
        binding = priced.binding()[["name", "unit", "usage", "limit", "level", "shadow_price"]]
        print("\n" + lab.t("cli_binding"))
        shown = _amounts(binding)
        if lab.zh:
            rules = priced.binding()["rule"].tolist()
            branches = priced.binding()["branch"].tolist()
            shown = shown.assign(
                name=[lab.constraint(n, r, b)
                      for n, r, b in zip(shown["name"], rules, branches, strict=True)],
                unit=[lab.item(u) for u in shown["unit"]],
            ).rename(columns={c: lab.column(c) for c in shown.columns})  # fmt: skip
        with pd.option_context("display.unicode.east_asian_width", lab.zh):
            print(shown.to_string(index=False, float_format=lambda x: f"{x:,.4f}",
                                  na_rep=""))  # fmt: skip
    figures = branches_table(result)[["branch", *BRANCH_FIGURES]]
    print_table(
        lab.t("cli_branches_after"),
        figures.set_index("branch"),
        ("npl_loss", "profit_after", "relief", "wage_pool"),
        lang,
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

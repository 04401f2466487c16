"""What the command line prints: the portfolio, the plan and the branches, as tables.

``lang="zh"`` prints the same tables with Chinese headings, channels and column names,
money in 万元 (headline totals in 亿元); see :mod:`npl_disposal.reporting.labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from npl_disposal.io.portfolio import Portfolio
from npl_disposal.model.figures import BRANCH_FIGURES
from npl_disposal.reporting.console import amounts, table_text
from npl_disposal.reporting.labels import labels
from npl_disposal.solvers.result import (
    MODEL_RULES,
    RISK_MODEL_RULES,
    AllocationResult,
    branches_table,
)

if TYPE_CHECKING:
    from npl_disposal.solvers.schedule_result import ScheduleResult
    from npl_disposal.valuation.migration import MigrationMatrix

__all__ = [
    "migration_text",
    "print_outcome",
    "print_plan",
    "print_portfolio",
    "print_schedule",
    "print_table",
]




def print_table(
    title: str, frame: pd.DataFrame, money: Sequence[str] = (), lang: str = "en"
) -> None:
    """Print ``frame`` under ``title`` (:func:`~npl_disposal.reporting.console.table_text`)."""
    print(f"\n{title}")
    print(table_text(frame, money, lang))


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


def print_outcome(result: AllocationResult, lang: str = "en") -> None:
    """What ``plan`` prints: ``result.summary()``, or the same in Chinese.

    In Chinese: the headline, the balance per channel (a schedule's: per channel and
    period), the tail figures and the binding budgets' names.
    """
    lab = labels(lang)
    if not lab.zh:
        print(result.summary())
        return
    if result.problem.schedule is not None:  # a schedule's result (its module not imported)
        print_schedule(result, lang)  # type: ignore[arg-type]
    else:
        print(plan_headline(result, lang))
        print_table(lab.t("channel_mix"), result.channel_mix(), ("balance", "value", "pnl"), lang)
    if result.risk is not None:
        risk = result.risk
        print("\n" + lab.t("risk_summary", expected=lab.money(risk.expected_value, total=True),
                           tail=lab.money(risk.tail_mean, total=True),
                           worst=f"{1 - risk.alpha:.0%}", n=f"{len(risk.values):,}"))  # fmt: skip
    binding = result.binding()
    binding = binding[~binding["rule"].isin(MODEL_RULES + RISK_MODEL_RULES)]
    if len(binding):
        names = [lab.constraint(n, r, b) for n, r, b in
                 zip(binding["name"], binding["rule"], binding["branch"], strict=True)]  # fmt: skip
        print("\n" + lab.t("cli_binding_names", names=lab.joined(names)))


def print_schedule(result: ScheduleResult, lang: str = "en") -> None:
    """A schedule's headline and its balance at disposal per channel and period."""
    lab = labels(lang)
    print(plan_headline(result, lang))
    table = result.balance_by_period()
    periods = int(table.columns[-1]) - 1  # the last column, T + 1, is kept through the horizon
    table.columns = [lab.period(int(t), periods) for t in table.columns]
    print_table(lab.t("schedule_mix"), table, tuple(table.columns), lang)


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
        shown = amounts(binding)
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


def migration_text(matrix: MigrationMatrix, lang: str = "en", horizon_months: float = 12) -> str:
    """What ``migration`` prints: ``matrix.summary()``, or in Chinese the same figures."""
    lab = labels(lang)
    if not lab.zh:
        return matrix.summary(horizon_months)
    def state(name: str) -> str:
        return lab.item(lab.classification(name))

    head = lab.t("cli_migration", months=f"{matrix.months:g}", n=matrix.n_states,
                 absorbing=lab.joined(map(state, matrix.absorbing)) or lab.t("na"))  # fmt: skip
    table = (matrix.frame() * 100).round(2)
    table.index, table.columns = table.index.map(state), table.columns.map(state)
    table.index.name, table.columns.name = lab.t("cli_from_state"), lab.t("cli_to_state")
    lines = [head, lab.t("cli_migration_matrix"), _east_asian(table)]
    if matrix.absorbing and matrix.transient:
        h = f"{horizon_months:g}"
        out = matrix.outcomes(horizon_months).loc[list(matrix.transient)].drop(columns="stay")
        names = {f"{s}_{h}m": lab.t("cli_within", state=state(s), h=h) for s in matrix.absorbing}
        names |= {f"{s}_eventually": lab.t("cli_eventually", state=state(s))
                  for s in matrix.absorbing}  # fmt: skip
        pct = [c for c in out.columns if c in names]
        out[pct] = (out[pct] * 100).round(1)
        out["expected_months"] = out["expected_months"].round(1)
        out = out.rename(columns={**names, "expected_months": lab.t("cli_expected_months")})
        out.index = out.index.map(state)
        out.index.name = lab.t("cli_from_state")
        lines += [lab.t("cli_migration_outcomes", h=h), _east_asian(out)]
    return "\n".join(lines)


def _east_asian(frame: pd.DataFrame) -> str:
    """``frame`` as text, its columns aligned under Chinese headings."""
    with pd.option_context("display.unicode.east_asian_width", True, "display.width", 160):
        return frame.to_string()

"""Quickstart: the whole job on the bundled sample, end to end.

Shows the five steps a risk officer runs every year, on the synthetic sample
shipped with the library (2,000 NPLs, 8 branches; CNY yuan throughout):

1. read and validate the loan and branch tables (``read_portfolio``),
2. read the disposal policy (``load_policy``),
3. value every disposal channel of every loan (``value_options``),
4. plan: allocate every loan to one channel under the budgets and the 2022
   notice's rules (``build_problem`` + ``solve``, whole-loan MILP; about 5 s),
5. print the plan's summary, its channel mix and the per-branch figures
   (tolerance, wage pool, write-off add-back growth).

Run: ``python examples/quickstart.py``.
"""

from __future__ import annotations

import pandas as pd

from npl_disposal import build_problem, load_policy, read_portfolio, solve, value_options
from npl_disposal.datasets import sample_path
from npl_disposal.reporting import table_text

MONEY_COLUMNS = (
    "balance",
    "provision",
    "value",
    "pnl",
    "npl_loss",
    "profit_after",
    "relief",
    "wage_pool",
    "inclusive_npl",
    "derecognised",
    "written_off",
    "headroom",
)


def show(title: str, frame: pd.DataFrame) -> None:
    """Print a table as the command line does: money in CNY millions, ratios in percent."""
    print(f"\n{title}")
    print(table_text(frame, money=[c for c in MONEY_COLUMNS if c in frame]))


def main() -> None:
    # 1. Validate: any bad cell raises one PortfolioValidationError listing every problem.
    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    print("1. Portfolio (validated)")
    print(portfolio.summary())
    show("By class", portfolio.by_class())

    # 2. Policy: budgets and rules.
    policy = load_policy(sample_path("policy.toml"))
    print("\n2. " + policy.summary())

    # 3. Value every channel of every loan (the options table).
    options = value_options(portfolio, policy=policy)
    per_channel = options.groupby("channel", sort=False).agg(
        eligible_loans=("loan_id", "size"), value=("value", "sum"), pnl=("pnl", "sum")
    )
    show(f"3. Valuation: {len(options):,} eligible (loan, channel) options", per_channel)

    # 4. Plan: whole-loan mode, as the policy's [mode] says.
    problem = build_problem(portfolio, policy, options)
    print(f"\n4. Problem: {problem.summary()}")
    result = solve(problem)
    print("\n5. Plan")
    print(result.summary())
    print(f"verified against every rule: {result.verification.ok}")

    show("Channel mix", result.channel_mix())
    figures = result.branch_figures().set_index("branch")
    columns = [
        "ratio_before",
        "ratio_after",
        "threshold",
        "within",
        "headroom",
        "npl_loss",
        "relief",
        "wage_pool",
        "growth",
        "growth_restored",
    ]
    show("Branch figures after the plan", figures[[c for c in columns if c in figures]])

    # Which budgets are worth money? The LP relaxation gives shadow prices (fast: ~0.1 s).
    priced = solve(problem, mode="fractional")
    binding = priced.binding().set_index("name")[["unit", "usage", "limit", "shadow_price"]]
    show("Binding budgets (fractional relaxation; usage and limit in their unit; shadow "
         "price = CNY of value per unit)", binding)


if __name__ == "__main__":
    main()

"""Branch NPL tolerance and the wage-pool relief, before and after the disposal plan.

The 2022 notice lets a branch whose inclusive small/micro NPL ratio stays within
the tolerance (the bank's overall NPL ratio + 3 percentage points) disregard all
or part of its NPL losses when its performance-related wage pool is computed.
This script shows, on the bundled sample (with its bundled options table):

1. per branch, before any disposal: the inclusive NPL ratio, the threshold,
   whether it is within, and the headroom in CNY (negative = the inclusive NPL
   the branch must still derecognise to get back within tolerance);
2. the same after the whole-loan plan (the optimiser enforces the tolerance);
3. the wage-pool relief with ``[wage_pool] consider_share`` = 0, 0.5 and 1
   (0: NPL loss disregarded, 1: counted in full). The share does not enter the
   optimisation, so the plan stays the same and only the branch figures change;
4. what a stricter threshold would do: a branch above it loses its relief.

Money is CNY yuan, printed in CNY millions. Runs in about 3 s.
"""

from __future__ import annotations

import pandas as pd

from npl_disposal import (
    AllocationResult,
    build_problem,
    load_policy,
    read_options,
    read_portfolio,
    solve,
)
from npl_disposal.datasets import sample_path
from npl_disposal.model.figures import branch_figures
from npl_disposal.reporting import table_text

SHARES = (0.0, 0.5, 1.0)


def tolerance_table(figures: pd.DataFrame, ratio: str) -> pd.DataFrame:
    """Ratio, threshold, within and headroom (CNY yuan) per branch."""
    table = figures.set_index("branch")[[ratio, "threshold", "within", "headroom"]]
    return table.rename(columns={ratio: "npl_ratio"})


def print_table(title: str, frame: pd.DataFrame, money: tuple[str, ...]) -> None:
    """Print a titled table as the command line does: ``money`` columns in CNY m."""
    print(f"\n{title}")
    print(table_text(frame, money=money))


def relief_by_share(result: AllocationResult, shares: tuple[float, ...] = SHARES) -> pd.DataFrame:
    """Relief and wage pool per branch (CNY) for each ``consider_share``, same plan."""
    problem = result.problem
    columns = {}
    for share in shares:
        policy = problem.policy.with_section("wage_pool", consider_share=share)
        figures = branch_figures(
            problem.portfolio, policy, result.plan, problem.options, result.blocks
        ).set_index("branch")
        columns[("relief", share)] = figures["relief"]
        columns[("wage_pool", share)] = figures["wage_pool"]
    out = pd.DataFrame(columns)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["figure", "consider_share"])
    return out


def main() -> None:
    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    policy = load_policy(sample_path("policy.toml"))
    options = read_options(sample_path("options.csv"), portfolio)
    tol = policy.tolerance
    assert tol is not None
    print(
        f"Tolerance threshold: bank NPL ratio {tol.bank_npl_ratio:.2%} + margin {tol.margin:.2%}"
        f" = {tol.threshold:.2%} (enforced in the optimiser: {tol.enforce})"
    )

    before = branch_figures(portfolio, policy)
    print_table(
        "1. Before disposal: inclusive small/micro NPL ratio and headroom "
        "(negative headroom = NPL the branch must still derecognise)",
        tolerance_table(before, "ratio_before"),
        ("headroom",),
    )
    out = before.loc[~before["within"], ["branch", "headroom"]]
    for row in out.itertuples():
        print(
            f"   {row.branch} is outside tolerance: it must derecognise at least "
            f"CNY {-row.headroom / 1e6:,.2f}m of inclusive NPL"
        )

    result = solve(build_problem(portfolio, policy, options))
    print("\n" + result.summary())
    after = result.branch_figures()
    table = tolerance_table(after, "ratio_after")
    table.insert(0, "ratio_before", after.set_index("branch")["ratio_before"])
    table["derecognised"] = after.set_index("branch")["derecognised"]
    print_table("2. After the plan", table, ("headroom", "derecognised"))
    print(f"   branches within tolerance: {int(after['within'].sum())} of {len(after)}")

    relief = relief_by_share(result)
    npl_loss = after.set_index("branch")["npl_loss"]
    shown = relief.copy()
    shown.columns = [f"{figure} at {share:g}" for figure, share in relief.columns]
    shown.insert(0, "npl_loss", npl_loss)
    print_table(
        "3. Wage-pool relief and wage pool by [wage_pool] consider_share "
        "(0 = NPL loss disregarded, 1 = counted in full); same plan",
        shown,
        tuple(shown.columns),
    )
    totals = relief.sum()
    for share in SHARES:
        relief_m, wage_m = totals["relief", share] / 1e6, totals["wage_pool", share] / 1e6
        print(
            f"   consider_share {share:.1f}: total relief CNY {relief_m:,.2f}m,"
            f" total wage pool CNY {wage_m:,.2f}m"
        )

    # 4. A stricter, hypothetical threshold (margin 0.5 pp, checked but not enforced):
    # branches above it lose the relief, whatever the consider_share.
    strict = policy.with_section("tolerance", margin=0.005, enforce=False)
    figures = branch_figures(
        portfolio, strict, result.plan, result.problem.options, result.blocks
    ).set_index("branch")
    print_table(
        f"4. What if the margin were 0.5 pp (threshold {strict.tolerance.threshold:.2%}), "
        "same plan, consider_share 0",
        figures[["ratio_after", "threshold", "within", "npl_loss", "relief"]],
        ("npl_loss", "relief"),
    )
    lost = figures.loc[~figures["within"], "npl_loss"]
    print(
        f"   {len(lost)} branches would be outside tolerance and lose CNY {lost.sum() / 1e6:,.2f}m"
        " of relief"
    )


if __name__ == "__main__":
    main()

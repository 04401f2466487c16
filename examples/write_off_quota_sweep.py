"""What-if sweep of the write-off quota: what is one more yuan of quota worth?

The write-off quota is the budget a bank negotiates each year. This script
re-plans the bundled sample (with its bundled options table) for 8 quotas from
25% to 200% of the sample policy's quota and prints, at each point, the plan's
value, the quota used and the quota's shadow price (CNY of value gained per
extra CNY of quota).

It uses ``mode="fractional"`` (the LP relaxation): shadow prices exist only for
the LP, each solve takes about 0.1 s, and the LP's value is a concave,
non-decreasing function of the quota, so the printed table must show value
non-decreasing and shadow price non-increasing; the script checks it, and checks
that each step's value gain per yuan lies between the shadow prices at its two
ends. (Whole-loan plans would take seconds each and have no shadow prices.)

``sweep_quota()`` returns the table, for use in tests and notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from npl_disposal import (
    Policy,
    Portfolio,
    build_problem,
    load_policy,
    read_options,
    read_portfolio,
    solve,
)
from npl_disposal.datasets import sample_path

FRACTIONS = tuple(np.linspace(0.25, 2.0, 8))
"""Quotas to try, as fractions of the sample policy's quota: 25%, 50%, ..., 200%."""


def sweep_quota(
    portfolio: Portfolio | None = None,
    policy: Policy | None = None,
    options: pd.DataFrame | None = None,
    fractions: Sequence[float] = FRACTIONS,
) -> pd.DataFrame:
    """Value and the quota's shadow price at each quota (fractional mode, CNY yuan).

    Defaults to the bundled sample with its bundled options table. Columns:
    ``fraction, quota, value, used, shadow_price, binding``.
    """
    if portfolio is None:
        portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    if policy is None:
        policy = load_policy(sample_path("policy.toml"))
    if options is None:
        options = read_options(sample_path("options.csv"), portfolio)
    if policy.write_off is None:
        raise ValueError("the policy has no [write_off] quota to sweep")
    base = policy.write_off.quota
    rows = []
    for fraction in fractions:
        what_if = policy.with_section("write_off", quota=float(fraction) * base)
        result = solve(build_problem(portfolio, what_if, options), mode="fractional")
        quota_row = result.constraints.set_index("name").loc["write_off_quota"]
        rows.append(
            {
                "fraction": float(fraction),
                "quota": float(fraction) * base,
                "value": result.objective,
                "used": float(quota_row["usage"]),
                "shadow_price": float(quota_row["shadow_price"]),
                "binding": bool(quota_row["binding"]),
            }
        )
    return pd.DataFrame(rows)


def check_concave(table: pd.DataFrame, rel_tol: float = 1e-7) -> list[str]:
    """Problems with the sweep: value must rise, shadow price fall, slopes lie between."""
    problems = []
    value = table["value"].to_numpy()
    price = table["shadow_price"].to_numpy()
    quota = table["quota"].to_numpy()
    scale = max(abs(value).max(), 1.0) * rel_tol
    for k in range(len(table) - 1):
        if value[k + 1] < value[k] - scale:
            problems.append(f"value falls between quota {quota[k]:,.0f} and {quota[k + 1]:,.0f}")
        if price[k + 1] > price[k] + 1e-6:
            problems.append(f"shadow price rises between {quota[k]:,.0f} and {quota[k + 1]:,.0f}")
        slope = (value[k + 1] - value[k]) / (quota[k + 1] - quota[k])
        if not price[k + 1] - 1e-6 <= slope <= price[k] + 1e-6:
            problems.append(
                f"value gain per yuan {slope:.6f} between {quota[k]:,.0f} and "
                f"{quota[k + 1]:,.0f} is outside the shadow prices "
                f"[{price[k + 1]:.6f}, {price[k]:.6f}]"
            )
    return problems


def main() -> None:
    table = sweep_quota()
    shown = table.assign(
        quota=table["quota"] / 1e6, value=table["value"] / 1e6, used=table["used"] / 1e6
    ).rename(columns={"quota": "quota (CNY m)", "value": "value (CNY m)", "used": "used (CNY m)"})
    print("Write-off quota sweep (fractional mode; shadow price = CNY of value per CNY of quota)")
    print(shown.to_string(index=False, float_format=lambda x: f"{x:,.4f}"))
    gain = np.diff(table["value"]) / np.diff(table["quota"])
    print("\nValue gained per extra yuan of quota between consecutive points:")
    print("  " + ", ".join(f"{g:.4f}" for g in gain))
    problems = check_concave(table)
    if problems:
        print("\nINCONSISTENT sweep (please report):")
        for problem in problems:
            print(f"  {problem}")
    else:
        print(
            "\nConsistent: value non-decreasing, shadow price non-increasing (concave), and "
            "each step's gain per yuan lies between the shadow prices at its ends."
        )
    free = table.loc[~table["binding"]]
    if len(free):
        print(
            f"From CNY {free['quota'].min() / 1e6:,.2f}m of quota on, the quota no longer binds: "
            f"write-offs stop at CNY {free['used'].max() / 1e6:,.2f}m (every loan worth writing "
            "off is written off) and more quota adds no value."
        )


if __name__ == "__main__":
    main()

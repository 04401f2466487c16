"""User-defined channels: two AMCs with different prices and capacities.

Channels are data: an options table may name any channel. Here the library's
own valuation of the bundled sample is taken and its ``bulk_transfer`` rows are
replaced by two asset-management companies:

- ``amc_a`` pays 5% more than the valuation's bulk-transfer price, but will buy
  at most CNY 150m of balance, in packages of at least 20 loans;
- ``amc_b`` pays 3% less, and will buy at most CNY 250m.

The price difference changes both the value and this year's pnl of the option;
the derecognised share is unchanged. Their budgets go into the policy as
``[channels.amc_a]`` and ``[channels.amc_b]`` tables (the ``[bulk_transfer]``
section only governs the channel of that name); ``verify_plan`` checks them like
every other rule. A minimum package makes ``amc_a`` an on/off channel, like
securitisation.

Plans are fractional (LP, well under a second each).
"""

from __future__ import annotations

import pandas as pd

from npl_disposal import build_problem, load_policy, read_portfolio, solve, value_options
from npl_disposal.datasets import sample_path
from npl_disposal.reporting import table_text

#: channel: (price relative to the valuation's bulk-transfer price, capacity in CNY yuan)
AMCS = {"amc_a": (1.05, 150e6), "amc_b": (0.97, 250e6)}
#: amc_a buys packages of at least this many loans.
AMC_A_MIN_LOANS = 20


def amc_options(options: pd.DataFrame, amcs: dict[str, tuple[float, float]] = AMCS) -> pd.DataFrame:
    """Replace the ``bulk_transfer`` rows by one row per AMC at its own price."""
    bulk = options[options["channel"] == "bulk_transfer"]
    parts = [options[options["channel"] != "bulk_transfer"]]
    for name, (price, _) in amcs.items():
        extra = (price - 1.0) * bulk["value"]
        parts.append(
            bulk.assign(channel=name, value=bulk["value"] + extra, pnl=bulk["pnl"] + extra)
        )
    return pd.concat(parts, ignore_index=True)


def show_mix(title: str, mix: pd.DataFrame) -> None:
    """Print a channel mix as the command line does: money in CNY millions."""
    print(f"\n{title}")
    print(table_text(mix, money=("balance", "value", "pnl")))


def main() -> None:
    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    policy = load_policy(sample_path("policy.toml"))
    options = amc_options(value_options(portfolio, policy=policy))
    amc = options[options["channel"].isin(list(AMCS))]
    prices = amc.groupby("channel")[["value", "pnl"]].sum() / 1e6
    prices["capacity"] = [AMCS[c][1] / 1e6 for c in prices.index]
    prices.columns = ["value if all sold (CNY m)", "pnl if all sold (CNY m)", "capacity (CNY m)"]
    print("Two AMCs replace the bulk_transfer channel (options table rows):")
    print(prices.to_string(float_format=lambda x: f"{x:,.2f}"))

    plain = solve(build_problem(portfolio, policy, options), mode="fractional")
    show_mix("1. Without AMC budgets (fractional)", plain.channel_mix())
    sold = plain.channel_mix().loc[list(AMCS), "balance"].sum()
    print(
        f"   The AMCs would buy CNY {sold / 1e6:,.2f}m: [bulk_transfer] governs only the "
        "channel of that name, so without their own budgets amc_b is never used."
    )

    capped_policy = policy.with_section(
        "channels",
        amc_a={"capacity": AMCS["amc_a"][1], "min_loans": AMC_A_MIN_LOANS},
        amc_b={"capacity": AMCS["amc_b"][1]},
    )
    print("\n2. The AMC budgets as policy.toml tables:")
    toml = capped_policy.to_toml()
    print(toml[toml.index("[channels.") :].rstrip())

    capped = solve(build_problem(portfolio, capped_policy, options), mode="fractional")
    print()
    print(capped.summary())
    show_mix("Channel mix with AMC budgets (fractional)", capped.channel_mix())
    print(f"\n{capped.verification.summary()}")
    cons = capped.constraints.set_index("name")
    print("AMC capacities: usage, limit and shadow price (CNY of value per CNY of capacity)")
    for name, (_, cap) in AMCS.items():
        row = cons.loc[f"{name}_capacity"]
        within = row["usage"] <= cap + 0.01
        print(
            f"  {name}: buys CNY {row['usage'] / 1e6:,.2f}m of CNY {cap / 1e6:,.2f}m "
            f"({'within' if within else 'OVER'} capacity), shadow price {row['shadow_price']:.4f}"
        )
    print(
        f"\nValue with AMC budgets CNY {capped.objective / 1e6:,.2f}m vs without "
        f"CNY {plain.objective / 1e6:,.2f}m."
    )


if __name__ == "__main__":
    main()

"""User-defined channels: two AMCs with different prices and capacities.

Channels are data: an options table may name any channel. Here the library's
own valuation of the bundled sample is taken and its ``bulk_transfer`` rows are
replaced by two asset-management companies:

- ``amc_a`` pays 5% more than the valuation's bulk-transfer price, but will buy
  at most CNY 150m of balance;
- ``amc_b`` pays 3% less, and will buy at most CNY 250m.

The price difference changes both the value and this year's pnl of the option;
the derecognised share is unchanged.

LIMITATION (public API): only the five standard channels carry policy budgets.
A custom channel enters only the one-channel-per-loan rule, the profit floor and
the tolerance rows (DESIGN section 4); ``Policy`` rejects an ``[amc_a]`` section,
and the ``[bulk_transfer]`` capacity no longer applies once no option is called
``bulk_transfer`` - without capacities, ``amc_a`` silently takes more than the
policy's AMC budget. The per-AMC capacities are therefore added to the built
problem as extra rows (``dataclasses.replace(problem, rows=...)`` with
``npl_disposal.problem.ResourceRows``, which is not exported at the top level).
The solver honours them, but ``verify_plan`` (which recomputes the rules from
the tables) does not know them, so this script checks them itself.

Plans are fractional (LP, ~0.2 s each); a whole-loan plan of the same problem
takes about 10 s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal import (
    AllocationProblem,
    PolicyError,
    build_problem,
    load_policy,
    read_portfolio,
    solve,
    value_options,
)
from npl_disposal.cli import sample_path
from npl_disposal.problem import ResourceRows

#: channel: (price relative to the valuation's bulk-transfer price, capacity in CNY yuan)
AMCS = {"amc_a": (1.05, 150e6), "amc_b": (0.97, 250e6)}


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


def with_capacities(problem: AllocationProblem, capacities: dict[str, float]) -> AllocationProblem:
    """The problem with one row per channel: sum_i b_i x_i,channel <= capacity (CNY)."""
    rows = problem.rows
    n, m = problem.n_loans, problem.n_channels
    loans = np.arange(n)
    matrices = [
        sp.csr_matrix(
            (problem.balance, (np.zeros(n, dtype=np.int64), loans * m + problem.channel(name))),
            shape=(1, n * m),
        )
        for name in capacities
    ]
    k = len(capacities)
    extended = ResourceRows(
        names=rows.names + tuple(f"{name}_capacity" for name in capacities),
        rule=rows.rule + tuple(f"{name}.capacity" for name in capacities),
        unit=rows.unit + ("CNY",) * k,
        branch=rows.branch + (None,) * k,
        matrix=sp.vstack([rows.matrix, *matrices]).tocsr(),
        blocks=np.vstack([rows.blocks, np.zeros((k, rows.blocks.shape[1]))]),
        lower=np.concatenate([rows.lower, np.full(k, -np.inf)]),
        upper=np.concatenate([rows.upper, list(capacities.values())]),
    )
    return dataclasses.replace(problem, rows=extended)


def show_mix(title: str, mix: pd.DataFrame) -> None:
    """Print a channel mix with money in CNY millions."""
    shown = mix.copy()
    money = ["balance", "value", "pnl"]
    shown[money] = shown[money] / 1e6
    shown = shown.rename(columns={c: f"{c} (CNY m)" for c in money})
    print(f"\n{title}")
    print(shown.to_string(float_format=lambda x: f"{x:,.2f}"))


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

    problem = build_problem(portfolio, policy, options)
    print(f"\nProblem: {problem.summary()}\nchannels: {', '.join(problem.channels)}")

    plain = solve(problem, mode="fractional")
    show_mix("1. Plan without AMC capacities (fractional)", plain.channel_mix())
    sold = plain.channel_mix().loc[list(AMCS), "balance"].sum()
    bt = policy.bulk_transfer
    if bt is not None:
        print(
            f"   AMCs buy CNY {sold / 1e6:,.2f}m although [bulk_transfer] capacity is "
            f"CNY {bt.capacity / 1e6:,.2f}m: policy budgets apply only to the standard channel "
            "names, so the cheaper amc_b is never used."
        )

    try:
        policy.with_section("amc_a", capacity=AMCS["amc_a"][1])
    except PolicyError as exc:
        print(
            f"\n2. LIMITATION: a per-channel capacity cannot be set through the policy:\n   {exc}"
        )

    capacities = {name: cap for name, (_, cap) in AMCS.items()}
    capped = solve(with_capacities(problem, capacities), mode="fractional")
    print(
        "\n3. Workaround: capacity rows added to the built problem (not a public API; "
        "verify_plan does not check these rows)"
    )
    print(capped.summary())
    show_mix("Channel mix with AMC capacities (fractional)", capped.channel_mix())
    cons = capped.constraints.set_index("name")
    print("\nAMC capacities: usage, limit and shadow price (CNY of value per CNY of capacity)")
    for name, cap in capacities.items():
        row = cons.loc[f"{name}_capacity"]
        recomputed = float(
            (capped.plan.loc[capped.plan["channel"] == name, "loan_id"]
             .map(portfolio.loans.set_index("loan_id")["balance"])
             * capped.plan.loc[capped.plan["channel"] == name, "share"]).sum()
        )  # fmt: skip
        ok = recomputed <= cap * (1 + 1e-9) + 0.01
        print(
            f"  {name}: sold CNY {recomputed / 1e6:,.2f}m of CNY {cap / 1e6:,.2f}m "
            f"({'within' if ok else 'OVER'} capacity), shadow price {row['shadow_price']:.4f}"
        )
    print(
        f"\nValue with capacities CNY {capped.objective / 1e6:,.2f}m vs without "
        f"CNY {plain.objective / 1e6:,.2f}m."
    )


if __name__ == "__main__":
    main()

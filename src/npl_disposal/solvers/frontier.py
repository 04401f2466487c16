"""The risk frontier: the optimal plan's expected value and tail mean at several aversions.

>>> from npl_disposal.solvers.frontier import risk_frontier
>>> front = risk_frontier(portfolio, policy, options, scenarios, (0, 0.5, 1, 2))  # doctest: +SKIP
>>> front.table  # doctest: +SKIP

Each aversion λ is its own solve of ``expected value + λ x tail mean``. As λ grows
the plan gives up expected value for a better tail; the frontier shows how much, and
how the channel mix moves (a sale fixes the price, keeping keeps the risk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.scenarios import Scenarios
from npl_disposal.io.tables import TableSource
from npl_disposal.model.problem import build_problem
from npl_disposal.policy import Policy, load_policy
from npl_disposal.solvers.result import AllocationResult
from npl_disposal.solvers.solve import solve

__all__ = ["FRONTIER_COLUMNS", "RiskFrontier", "risk_frontier"]

#: The leading columns of ``frontier.csv`` (then the balance sent to each channel).
FRONTIER_COLUMNS = ("aversion", "alpha", "expected_value", "tail_mean", "objective", "bound",
                    "gap", "status")  # fmt: skip


@dataclass(frozen=True, eq=False)
class RiskFrontier:
    """One optimal plan per aversion: ``table`` (``frontier.csv``) and the channel mix.

    ``table`` has the columns of :data:`FRONTIER_COLUMNS` and ``balance_<channel>``
    (CNY yuan sent to each channel); ``mix`` is each channel's share of the balance
    (rows: aversions).
    """

    table: pd.DataFrame
    mix: pd.DataFrame
    results: tuple[AllocationResult, ...] = field(repr=False)

    def summary(self) -> str:
        """One line per aversion: expected value and tail mean, in CNY millions."""
        lines = [f"risk frontier at α={self.table['alpha'].iloc[0]:g} "
                 f"({len(self.table)} aversions):"]  # fmt: skip
        for row in self.table.itertuples(index=False):
            lines.append(f"  λ={row.aversion:<5g} expected value CNY "
                         f"{row.expected_value / 1e6:,.2f}m, tail mean CNY "
                         f"{row.tail_mean / 1e6:,.2f}m ({row.status})")  # fmt: skip
        return "\n".join(lines)


def risk_frontier(
    portfolio: Portfolio | TableSource,
    policy: Policy | TableSource | dict[str, object],
    options: pd.DataFrame | TableSource,
    scenarios: Scenarios | TableSource,
    aversions: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
    branches: TableSource | None = None,
    **solve_options: object,
) -> RiskFrontier:
    """Solve the plan at each aversion (``[risk] aversion`` replaced), in the order given.

    ``solve_options`` go to :func:`~npl_disposal.solve` (``mode``, ``time_limit``...).
    The policy's other ``[risk]`` keys (alpha, the floor, the segments) hold at each.
    """
    pol = load_policy(policy)
    results = []
    for lam in aversions:
        at = pol.with_section("risk", aversion=float(lam))
        problem = build_problem(portfolio, at, options, branches, scenarios=scenarios)
        results.append(solve(problem, **solve_options))  # type: ignore[arg-type]
    return frontier_of(results)


def frontier_of(results: Sequence[AllocationResult]) -> RiskFrontier:
    """The frontier table and channel mix of solved plans (each solved with scenarios)."""
    rows, mixes = [], []
    for r in results:
        risk = r.risk
        if risk is None:
            raise ValueError("a plan on the risk frontier must be solved with scenarios")
        row: dict[str, object] = {
            "aversion": risk.aversion, "alpha": risk.alpha,
            "expected_value": risk.expected_value, "tail_mean": risk.tail_mean,
            "objective": r.objective, "bound": r.bound, "gap": r.gap,
            "status": r.status.value,
        }  # fmt: skip
        balance = r.channel_mix()["balance"]
        row.update({f"balance_{c}": float(v) for c, v in balance.items()})
        rows.append(row)
        mixes.append((balance / balance.sum()).rename(risk.aversion))
    table = pd.DataFrame(rows)
    mix = pd.DataFrame(mixes).fillna(0.0).rename_axis(index="aversion", columns="channel")
    return RiskFrontier(table, mix, tuple(results))

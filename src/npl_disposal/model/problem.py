"""The allocation problem as data, built vectorised from the tables and the policy's rules.

Loans x channels live on a dense grid of shape ``(n_loans, n_channels)``: ``value``,
``pnl`` and ``derecognised`` per option and an ``eligible`` mask that already applies
the loan rules (long ageing, write-off priority). Every other rule is a row of
:class:`~npl_disposal.model.rows.ResourceRows`: a sparse row over the grid's flattened
options (index ``loan * n_channels + channel``) plus coefficients on the on/off
variables (:class:`~npl_disposal.model.rows.Block`), with a lower and an upper limit,
in its natural unit (CNY yuan or loans). ``docs/model.md`` states the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal._threads import for_each
from npl_disposal.exceptions import PolicyError
from npl_disposal.io._ids import positions_in
from npl_disposal.io.options import channel_order, check_channels, read_options
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.tables import TableSource
from npl_disposal.model.risk import RiskTerms
from npl_disposal.model.rows import Block, Cells, ResourceRows, RowBuilder, add_limits
from npl_disposal.model.wage_pool import WagePoolFigures, WagePoolTerms
from npl_disposal.policy import Policy, load_policy
from npl_disposal.policy.measures import LOANS, MONEY
from npl_disposal.policy.rules import Rules

if TYPE_CHECKING:
    from npl_disposal.io.scenarios import Scenarios
    from npl_disposal.model.schedule import ScheduleGrid

__all__ = ["LOANS", "MONEY", "AllocationProblem", "Block", "ResourceRows", "build_problem"]


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Everything the solver needs, as arrays. Build it with :func:`build_problem`."""

    loan_ids: np.ndarray
    channels: tuple[str, ...]
    balance: np.ndarray
    branch_index: np.ndarray
    branches: tuple[str, ...]
    inclusive: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    derecognised: np.ndarray
    offered: np.ndarray
    eligible: np.ndarray
    rows: ResourceRows
    blocks: tuple[Block, ...]
    mode: str
    portfolio: Portfolio = field(repr=False)
    policy: Policy = field(repr=False)
    options: pd.DataFrame = field(repr=False)
    schedule: ScheduleGrid | None = field(default=None, repr=False)
    risk: RiskTerms | None = field(default=None, repr=False)

    @property
    def has_tail(self) -> bool:
        """Whether the tail model's rows and levels are in the problem (an aversion or a floor)."""
        return self.risk is not None and self.risk.modelled

    @property
    def n_loans(self) -> int:
        """Number of loans."""
        return len(self.loan_ids)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    def channel(self, name: str) -> int:
        """Column of channel ``name`` in the grid, or -1 if no loan is offered it."""
        return self.channels.index(name) if name in self.channels else -1

    @property
    def block_cost(self) -> np.ndarray:
        """Objective coefficient (CNY yuan) of each block's on/off variable."""
        return -np.array([b.fixed_cost for b in self.blocks], dtype=float)

    @cached_property
    def eligible_value(self) -> np.ndarray:
        """``value`` where eligible, -inf elsewhere (CNY yuan), computed once.

        The pricing loop adds the rows' prices to it a dozen times; adding
        beats masking the ineligible options each time (benchmarks/README.md, design measurements).
        """
        return np.where(self.eligible, self.value, -np.inf)

    @property
    def switches(self) -> np.ndarray:
        """Mask of the blocks that switch a channel on or off."""
        return np.array([b.kind == "switch" for b in self.blocks], dtype=bool)

    @property
    def forced_out(self) -> np.ndarray:
        """Loans whose retain option the long-age or write-off-priority rule removed."""
        r = self.channel("retain")
        return self.offered[:, r] & ~self.eligible[:, r]

    def summary(self) -> str:
        """Size of the problem and the rules in force."""
        return (
            f"{self.n_loans:,} loans x {self.n_channels} channels "
            f"({int(self.eligible.sum()):,} eligible options), {len(self.rows)} rows, "
            f"{len(self.blocks)} on/off blocks, mode {self.mode}; "
            f"{int(self.forced_out.sum()):,} loans must leave the book"
        )


#: The per-loan arrays of :class:`AllocationProblem` (one row per loan, in portfolio order).
LOAN_ARRAYS = ("loan_ids", "balance", "branch_index", "inclusive", "value", "pnl",
               "derecognised", "offered", "eligible")  # fmt: skip


def loan_arrays(problem: AllocationProblem, loans: np.ndarray) -> dict[str, Any]:
    """The per-loan arrays of ``problem`` at ``loans`` (a mask or positions)."""
    return {name: getattr(problem, name)[loans] for name in LOAN_ARRAYS}


def build_problem(
    portfolio: Portfolio | TableSource,
    policy: Policy | TableSource | dict[str, object],
    options: pd.DataFrame | TableSource,
    branches: TableSource | None = None,
    scenarios: Scenarios | TableSource | None = None,
) -> AllocationProblem:
    """Build the allocation problem from tables, vectorised (``docs/model.md``).

    ``portfolio`` is a :class:`Portfolio` or a loans table; ``options`` the
    options table (``loan_id, channel, value, pnl, derecognised``). With
    ``scenarios`` (a scenarios table or :class:`~npl_disposal.Scenarios`) the
    options' values are expected values and the policy's ``[risk]`` section (its
    defaults when absent) weighs and bounds the plan's tail mean.
    """
    return build_part(portfolio, policy, options, branches, scenarios=scenarios)


def build_part(
    portfolio: Portfolio | TableSource,
    policy: Policy | TableSource | dict[str, object],
    options: pd.DataFrame | TableSource,
    branches: TableSource | None = None,
    *,
    wage_pool: WagePoolFigures | None = None,
    scenarios: Scenarios | TableSource | None = None,
) -> AllocationProblem:
    """:func:`build_problem` for part of a portfolio, given figures of the whole.

    ``wage_pool`` holds the whole portfolio's per-branch wage-pool figures, so that
    the wage-pool rows are the whole problem's rows over the part's loans (the
    limits of the tolerance and write-off priority rows still need the whole's
    totals; :mod:`npl_disposal.distributed` sets them). Without it, exactly
    :func:`build_problem`.
    """
    pf = read_portfolio(portfolio, branches)
    pol = load_policy(policy)
    if isinstance(options, pd.DataFrame) and "_loan" in options.columns:
        opts = options
    else:
        opts = read_options(options, pf)
    check_channels(opts, pol.channels)
    channels = channel_order(opts["channel"])
    n, m = pf.n_loans, len(channels)
    # Each option's cell in the (loan, channel) grids, computed once for the four scatters.
    cell = opts["_loan"].to_numpy().astype(np.int64) * m + positions_in(opts["channel"], channels)
    grids = {col: np.zeros((n, m)) for col in ("value", "pnl", "derecognised")}
    offered = np.zeros((n, m), dtype=bool)

    def scatter(col: str) -> None:  # NumPy's scatter releases the interpreter lock
        if col == "offered":
            offered.ravel()[cell] = True
        else:
            grids[col].ravel()[cell] = opts[col].to_numpy(dtype=float)

    for_each(scatter, [*grids, "offered"])
    loans, rules = pf.loans, pol.rules
    eligible = _eligible(offered, channels, loans, rules)
    branch_names = _branch_names(pf)
    branch_index = positions_in(loans["branch"], branch_names)
    balance = loans["balance"].to_numpy(dtype=float)
    inclusive = loans["inclusive"].to_numpy(dtype=bool)
    wage = WagePoolTerms.of(pf, pol, channels, balance, grids, eligible, branch_index,
                            branch_names, given=wage_pool)  # fmt: skip
    risk, segment = _risk_terms(scenarios, pf, pol, channels, grids["value"], eligible)
    blocks = _blocks(rules, channels) + wage.blocks()
    blocks += risk.blocks() if risk is not None else ()
    cells = Cells(channels, eligible, balance, grids["pnl"], grids["derecognised"], inclusive,
                  branch_index, np.int32 if n * m < 2**31 else np.int64,
                  loans["small_micro"].to_numpy(dtype=bool))  # fmt: skip
    builder = RowBuilder(n, m, blocks)
    table = pf.branch_table if pf.branches is not None else None
    required = rules.required_write_off(GridOffers(offered, channels), loans)
    limits = rules.limits(table, required)
    add_limits(builder, cells, limits, branch_names, [b.name for b in blocks])
    wage.add_rows(builder, cells)
    if risk is not None:
        risk.add_rows(builder, grids["value"], eligible, segment, blocks)
        grids["value"] = risk.expected_values(grids["value"], segment)
    rows = builder.build()
    return AllocationProblem(
        loan_ids=loans["loan_id"].to_numpy(dtype=object),
        channels=channels,
        balance=balance,
        branch_index=branch_index,
        branches=branch_names,
        inclusive=inclusive,
        value=grids["value"],
        pnl=grids["pnl"],
        derecognised=grids["derecognised"],
        offered=offered,
        eligible=eligible,
        rows=rows,
        blocks=blocks,
        mode=pol.mode,
        portfolio=pf,
        policy=pol,
        options=opts,
        risk=risk,
    )


def _risk_terms(
    scenarios: Scenarios | TableSource | None,
    pf: Portfolio,
    pol: Policy,
    channels: tuple[str, ...],
    value: np.ndarray,
    eligible: np.ndarray,
) -> tuple[RiskTerms | None, np.ndarray]:
    """The scenario terms and each loan's segment code (none without scenarios)."""
    if scenarios is None:
        if pol.risk is not None and pol.risk.modelled:
            raise PolicyError([("[risk]", "weighs or bounds the tail of the scenarios, but no "
                                "scenarios were given: pass scenarios (plan --scenarios S, "
                                "build_problem(..., scenarios=...)) or leave [risk] out")],
                              source="policy")  # fmt: skip
        return None, np.zeros(0, dtype=np.int64)
    from npl_disposal.io.scenarios import read_scenarios, segment_codes
    from npl_disposal.policy.sections import Risk

    section = pol.risk if pol.risk is not None else Risk()
    read = read_scenarios(scenarios, pf, channels, section.segment_by)
    segment, segments = segment_codes(pf.loans, section.segment_by)
    costs = tuple((b.channel, float(b.fixed_cost)) for b in pol.rules.budgets
                  if b.on_off and b.channel in channels)  # fmt: skip
    terms = RiskTerms.of(read, section, channels, segments, value, eligible, segment, costs)
    return terms, segment


def _branch_names(pf: Portfolio) -> tuple[str, ...]:
    if pf.branches is not None:
        return tuple(str(b) for b in pf.branches["branch"])
    return tuple(str(b) for b in pd.unique(pf.loans["branch"].astype(object)))


def _eligible(
    offered: np.ndarray, channels: tuple[str, ...], loans: pd.DataFrame, rules: Rules
) -> np.ndarray:
    """The offered options less those the loan rules bar (long ageing, write-off priority)."""
    eligible = offered.copy()
    offers = GridOffers(offered, channels)
    for rule in rules.loan_rules:
        barred, names = rule.barred(offers, loans)
        for name in names:
            if name in channels:
                eligible[barred, channels.index(name)] = False
    return eligible


@dataclass(frozen=True, eq=False)
class GridOffers:
    """Which channels each loan is offered, read from an ``(loans, channels)`` grid."""

    grid: np.ndarray
    channels: tuple[str, ...]

    def offered(self, channel: str) -> np.ndarray:
        """Mask of the loans offered ``channel``."""
        if channel not in self.channels:
            return np.zeros(self.grid.shape[0], dtype=bool)
        return self.grid[:, self.channels.index(channel)]

    def offered_besides(self, channel: str) -> np.ndarray:
        """Mask of the loans offered any channel other than ``channel``."""
        others = [j for j, name in enumerate(self.channels) if name != channel]
        return np.asarray(self.grid[:, others].any(axis=1), dtype=bool)


def _blocks(rules: Rules, channels: tuple[str, ...]) -> tuple[Block, ...]:
    """An on/off block for each on/off channel the options offer, with its fixed cost."""
    return tuple(
        Block(b.channel, float(b.fixed_cost))
        for b in rules.budgets
        if b.on_off and b.channel in channels
    )

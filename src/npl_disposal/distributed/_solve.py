"""Solving a partitioned portfolio: the distributed solve, the plan written and checked."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.distributed._cluster import _connect, _peak_memory_mb
from npl_disposal.distributed._context import _context, _needs_context, _share
from npl_disposal.distributed._coordinator import _conflicts, _Plan, _Run
from npl_disposal.distributed._deps import _distributed
from npl_disposal.distributed._layout import _globalise, _Layout, _layout, _shape
from npl_disposal.distributed._partitions import _build
from npl_disposal.distributed._result import PartitionedResult
from npl_disposal.distributed._session import _Session
from npl_disposal.distributed._steps import _write_plan, _Written
from npl_disposal.distributed._storage import _list_parquet, _Output
from npl_disposal.exceptions import InfeasiblePolicyError, SolverError
from npl_disposal.io.portfolio import Branches
from npl_disposal.io.tables import TableSource
from npl_disposal.model.verify import (
    VIOLATION_COLUMNS,
    _Log,
    check_limits,
    check_wage_pool,
    levels_of,
)
from npl_disposal.policy import Policy, load_policy
from npl_disposal.policy.measures import BRANCH_PNL, DERECOGNISED, Measure, channel_balance
from npl_disposal.policy.rules import Rules
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers.result import SolverReport, Status, constraint_table


def solve_partitioned(
    path: str | os.PathLike[str],
    branches: TableSource | None,
    policy: Policy | TableSource | dict[str, object],
    client: Any = None,
    mode: str | None = None,
    options: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    n_workers: int | None = None,
    time_limit: float | None = None,
    mip_gap: float = 1e-6,
    sample: int = 4000,
    free_target: int = 3000,
    max_free: int = 20000,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> PartitionedResult:
    """Validate, value and allocate a partitioned portfolio on a Dask cluster.

    ``path`` is a directory of Parquet loan files (one per partition),
    ``branches`` the branch table, ``policy`` a policy (``policy.toml`` path,
    mapping or :class:`~npl_disposal.Policy`). ``options`` is a directory of
    options files named like the loan files (default: value every partition on
    its worker). ``client`` is a ``distributed.Client`` or a scheduler address
    (default: a local cluster of ``n_workers`` processes, closed afterwards).
    ``mode`` is ``"fractional"`` or ``"whole_loan"`` (default: the policy's).
    The plan goes to ``out``, one file per partition, all or nothing (default:
    gathered into ``result.plan``). ``sample`` and ``free_target`` are those of
    :func:`~npl_disposal.solvers._pricing.solve_fractional`; ``max_free`` bounds the
    loans of the whole-loan MILPs on the coordinator.

    Raises :class:`~npl_disposal.PortfolioValidationError` on bad input (before
    anything is written), :class:`~npl_disposal.InfeasiblePolicyError` when no
    plan meets the policy.
    """
    start = time.perf_counter()
    pol = load_policy(policy)
    if pol.schedule is not None:
        raise NotImplementedError(
            "a schedule ([schedule]) is not yet solved over partitions; solve it on one "
            "machine (npl_disposal.model.schedule.build_schedule and npl_disposal.solve)"
        )
    mode = mode or pol.mode
    if mode not in ("whole_loan", "fractional"):
        raise ValueError(f"mode must be 'whole_loan' or 'fractional', not {mode!r}")
    data = _list_parquet(path, storage_options)
    target = _Output(out, storage_options) if out is not None else None
    job = _Job(pol, mode, target, start + (time_limit if time_limit is not None else math.inf),
               mip_gap, sample, free_target, max_free, seed, progress)  # fmt: skip
    try:
        with _connect(client, n_workers, len(data.urls)) as c:
            session = _Session(c, path, storage_options, progress)
            summary = session.validate(branches)
            session.value(pol, options, None)
            result = _solve(session, job, summary)
    except BaseException:
        if target is not None:
            target.abort()
        raise
    if target is not None:
        if result.status is Status.NO_SOLUTION:
            target.abort()  # no plan: nothing is written
        else:
            target.commit()
    seconds = dict(result.seconds, total=time.perf_counter() - start)
    return replace(result, seconds=seconds)


@dataclass(frozen=True)
class _Job:
    """What a partitioned solve was asked: the policy, the mode, the output and the limits."""

    policy: Policy
    mode: str
    target: _Output | None
    deadline: float
    mip_gap: float
    sample: int
    free_target: int
    max_free: int
    seed: int
    progress: Callable[[str], None] | None

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)


def _solve(session: _Session, job: _Job, summary: pd.DataFrame) -> PartitionedResult:
    t0 = time.perf_counter()
    branches = _branches(session.branches, session)
    layout, shapes = _build_everywhere(session, job, branches)
    seconds = dict(session.seconds, build=time.perf_counter() - t0)
    job.say(f"built {len(session.parts)} partition problems, {layout.k} coupling rows "
            f"({seconds['build']:.2f} s)")  # fmt: skip
    t0 = time.perf_counter()
    run = _Run(session.client, session.parts, layout, [s.loans for s in shapes], job.progress,
               job.seed, job.sample, job.free_target, job.deadline)  # fmt: skip
    lp, plan, bound = _plan(run, layout, job)
    seconds["solve"] = time.perf_counter() - t0
    report = SolverReport("highs", "dask", seconds["solve"], lp.iterations, run.opened)
    if plan is None:
        table = constraint_table(layout.aggregate(), np.zeros((1, len(layout.channels))),
                                 np.zeros(len(layout.blocks)), None)  # fmt: skip
        return PartitionedResult(Status.NO_SOLUTION, job.mode, math.nan, bound, math.inf, table,
                                 {}, report, summary, seconds, None)  # fmt: skip
    t0 = time.perf_counter()
    measures = _measures(job.policy.rules, branches, layout.required)
    names = branches.names if branches is not None else ()
    written = _write(session, run, plan, job.mode, job.target, measures, names)
    seconds["write"] = time.perf_counter() - t0
    objective = _check(job.policy, branches, written, layout, plan.y)
    return _result(session, job, layout, lp, plan, written, objective, max(bound, objective),
                   report, summary, seconds)  # fmt: skip


def _build_everywhere(
    session: _Session, job: _Job, branches: Branches | None
) -> tuple[_Layout, list[Any]]:
    """Every partition's problem, built on its worker and put on the global rows.

    When the rows need the whole portfolio's figures (the wage pool's), each
    partition is built once for its share of them, then again with their sums.
    """
    c = session.client
    built = [c.submit(_build, p, job.policy, pure=False) for p in session.parts]
    if branches is not None and _needs_context(job.policy):
        shares = c.gather([c.submit(_share, p, pure=False) for p in built])
        figures = c.scatter(_context(shares, job.policy, branches), broadcast=True)
        built = [c.submit(_build, p, job.policy, figures, pure=False) for p in session.parts]
    shapes = c.gather([c.submit(_shape, p, pure=False) for p in built])
    table = session.branches
    totals = None if table is None else table["inclusive_loans"].to_numpy(dtype=float)
    layout = _layout(shapes, job.policy, job.mode, totals)
    shared = c.scatter(layout, broadcast=True)
    parts = [c.submit(_globalise, p, shared, pure=False) for p in built]
    _distributed().wait(parts)
    session.parts = parts
    return layout, shapes


def _plan(run: _Run, layout: _Layout, job: _Job) -> tuple[Any, _Plan | None, float]:
    """The relaxation, and the plan of the mode asked with its bound (no plan: None)."""
    lp = run.fractional()
    missed = np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > 1e-7
    if lp.status == "optimal" and missed:
        raise InfeasiblePolicyError(_conflicts(layout, lp.shortfall))
    if lp.status not in ("optimal", "time_limit"):
        if lp.status == "infeasible":
            raise InfeasiblePolicyError(_conflicts(layout, np.zeros(layout.k)))
        raise SolverError(f"the solver failed on the restricted LP: {lp.message or lp.status}")
    if job.mode != "fractional":
        plan, bound = run.whole_loan(lp, job.mip_gap, job.max_free)
        return lp, plan, bound
    if missed or not math.isfinite(lp.objective):  # the time limit came first
        return lp, None, lp.bound
    return lp, _Plan(lp.states, lp.open, lp.shares, lp.y, lp.objective), lp.bound


def _result(
    session: _Session,
    job: _Job,
    layout: _Layout,
    lp: Any,
    plan: _Plan,
    written: Sequence[_Written],
    objective: float,
    bound: float,
    report: SolverReport,
    summary: pd.DataFrame,
    seconds: dict[str, float],
) -> PartitionedResult:
    """The verified plan's result: status, gap, constraints and each partition's figures."""
    gap = (bound - objective) / max(abs(bound), 1.0)
    proven = gap <= max(job.mip_gap, 1e-9) or job.mode == "fractional"
    final = Status.OPTIMAL if proven and lp.status == "optimal" else Status.FEASIBLE
    usage = np.sum([w.row_usage for w in written], axis=0)
    shares = np.zeros((1, len(layout.channels)))
    shares[0, 0] = 1.0
    duals = lp.duals if job.mode == "fractional" else None
    constraints = constraint_table(layout.aggregate(usage), shares, plan.y, duals)
    opened = [0] * len(written)
    for piece in plan.open.pieces:
        opened[piece.index] += piece.size
    partitions = summary.assign(
        open_loans=opened, plan_rows=[w.rows for w in written], value=[w.value for w in written]
    )
    gathered = None
    if job.target is None:
        gathered = pd.concat([w.plan for w in written if w.plan is not None], ignore_index=True)
    memory = session.client.run(_peak_memory_mb)
    blocks = {b.name: float(v) for b, v in zip(layout.blocks, plan.y, strict=True)}
    return PartitionedResult(final, job.mode, objective, bound, gap, constraints, blocks, report,
                             partitions, seconds, None if job.target is None else job.target.path,
                             gathered, dict(memory))  # fmt: skip


def _write(
    session: _Session,
    run: _Run,
    plan: _Plan,
    mode: str,
    target: _Output | None,
    measures: tuple[Measure, ...],
    branches: tuple[str, ...],
) -> list[_Written]:
    c = session.client
    splits = plan.open.split(plan.shares, len(session.parts))
    futures = [
        c.submit(
            _write_plan,
            part,
            plan.states[i],
            splits[i][0],
            splits[i][1],
            mode == "whole_loan",
            None if target is None else target.url(name),
            session.storage,
            measures,
            branches,
            pure=False,
        )
        for i, (part, name) in enumerate(zip(session.parts, session.data.names, strict=True))
    ]
    return list(c.gather(futures))


def _branches(table: pd.DataFrame | None, session: _Session) -> Branches | None:
    """The branch table's figures, the inclusive NPL summed over every partition."""
    if table is None:
        return None
    names = tuple(str(b) for b in table["branch"])
    npl = np.sum([ch.npl for ch in session.checked], axis=0)
    rate = (
        table["wage_rate"].to_numpy(dtype=float)
        if "wage_rate" in table
        else np.full(len(names), np.nan)
    )
    return Branches(names, npl, table["inclusive_loans"].to_numpy(dtype=float),
                    table["profit"].to_numpy(dtype=float), rate)  # fmt: skip


def _measures(
    rules: Rules, table: Branches | None, required: float | None
) -> tuple[Measure, ...]:
    """The measures the coordinator checks: those of every limit, and the wage pool's.

    ``required`` is the write-off priority's limit (CNY yuan; None: no such limit).
    """
    wanted = [limit.measure for limit in rules.limits(table, required)]
    if table is not None and rules.wage_pool.checked():
        wanted += [BRANCH_PNL, DERECOGNISED]
        wanted += [channel_balance(name, by_branch=True) for name in rules.fixed_costs]
    return tuple(dict.fromkeys(wanted))


@dataclass(frozen=True, eq=False)
class _Summed:
    """The whole plan's measures: each partition's values added up."""

    values: Mapping[Measure, Any]
    levels: Mapping[str, float]

    def evaluate(self, measure: Measure) -> float | np.ndarray:
        """The sum over partitions of the measure's value."""
        return self.values[measure]


def _check(
    policy: Policy,
    table: Branches | None,
    written: Sequence[_Written],
    layout: _Layout,
    y: np.ndarray,
) -> float:
    """Check the whole plan rule by rule (as :func:`verify_plan`); return its objective.

    Loan-level rules were checked per partition; the limits of the budgets, the
    profit floor, the write-off priority, the tolerance and the wage pool's
    ``max_fall`` are checked here on the sums of what every partition measured from
    its own tables. The objective (CNY yuan) is the plan's value less the fixed costs
    and, with ``[wage_pool] weight``, the weighted wage-pool fall at the levels ``y``
    of the blocks, as :func:`~npl_disposal.solvers.solve` states it.
    """
    blocks = {b.name: float(v) for b, v in zip(layout.blocks, y, strict=True)}
    log = _Log()
    rules = policy.rules
    count: dict[str, float] = {}
    values: dict[Measure, Any] = {}
    for w in written:
        for key, val in w.count.items():
            count[key] = count.get(key, 0.0) + val
        for measure, amount in w.measured.items():
            values[measure] = values.get(measure, 0.0) + amount
    levels = levels_of(rules, count, blocks)
    fixed = sum(cost * levels.get(name, 0.0) for name, cost in rules.fixed_costs.items())
    summed = _Summed(values, levels)
    names = table.names if table is not None else ()
    check_limits(log, rules.limits(table, layout.required), summed, names)
    if table is not None and rules.wage_pool.checked():
        check_wage_pool(log, rules, summed, table)
    found = [log.frame(), *(w.violations for w in written if len(w.violations))]
    violations = (
        pd.concat([f for f in found if len(f)], ignore_index=True)
        if any(len(f) for f in found)
        else pd.DataFrame(columns=VIOLATION_COLUMNS)
    )
    if len(violations):
        raise SolverError(
            "the partitioned solve returned a plan that breaks the policy; this is a bug in "
            "npl_disposal, please report it with the input files:\n"
            + "\n".join(violations["explanation"].head(20))
        )
    weighed = np.array([b.kind != "switch" for b in layout.blocks], dtype=bool)
    cost = -np.array([b.fixed_cost for b in layout.blocks], dtype=float)
    return float(sum(w.value for w in written)) - fixed + float(cost[weighed] @ y[weighed])

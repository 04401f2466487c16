"""Solving a partitioned portfolio: the distributed solve, the plan written and checked."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.distributed._cluster import _connect, _peak_memory_mb
from npl_disposal.distributed._coordinator import _conflicts, _Plan, _Run
from npl_disposal.distributed._deps import _distributed
from npl_disposal.distributed._layout import _globalise, _layout, _shape
from npl_disposal.distributed._partitions import _build
from npl_disposal.distributed._result import PartitionedResult
from npl_disposal.distributed._session import _Session
from npl_disposal.distributed._steps import _write_plan, _Written
from npl_disposal.distributed._storage import _list_parquet, _Output
from npl_disposal.exceptions import InfeasiblePolicyError, SolverError
from npl_disposal.io.tables import TableSource
from npl_disposal.model.verify import VIOLATION_COLUMNS, _block_levels, _check_budgets, _Log
from npl_disposal.policy import Policy, load_policy
from npl_disposal.solvers._formulation import MONEY_SCALE
from npl_disposal.solvers.solve import SolverReport, Status, constraint_table


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
    :func:`~npl_disposal.solvers.decomposition.solve_fractional`; ``max_free`` bounds the
    loans of the whole-loan MILPs on the coordinator.

    Raises :class:`~npl_disposal.PortfolioValidationError` on bad input (before
    anything is written), :class:`~npl_disposal.InfeasiblePolicyError` when no
    plan meets the policy.
    """
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    pol = load_policy(policy)
    _supported(pol)
    mode = mode or pol.mode
    if mode not in ("whole_loan", "fractional"):
        raise ValueError(f"mode must be 'whole_loan' or 'fractional', not {mode!r}")
    data = _list_parquet(path, storage_options)
    target = _Output(out, storage_options) if out is not None else None
    try:
        with _connect(client, n_workers, len(data.urls)) as c:
            session = _Session(c, path, storage_options, progress)
            summary = session.validate(branches)
            session.value(pol, options, None)
            result = _solve(
                session,
                pol,
                mode,
                target,
                deadline,
                mip_gap,
                sample,
                free_target,
                max_free,
                seed,
                progress,
                summary,
            )
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


def _supported(policy: Policy) -> None:
    """Refuse the policy terms whose rows need more than global sums of per-loan figures."""
    wage = policy.wage_pool
    if wage is not None and getattr(wage, "optimised", False):
        raise NotImplementedError(
            "the wage-pool terms of [wage_pool] (weight, max_fall) are not yet solved over "
            "partitions: their bounds are per-branch maxima over every loan; solve on one "
            "machine (npl_disposal.solvers.solve) or leave weight and max_fall out"
        )
    if policy.channels:
        raise NotImplementedError(
            "[channels.NAME] budgets are not yet solved over partitions (a partition may not "
            "offer the channel, and an on/off channel's bound is its whole offered balance); "
            "solve on one machine (npl_disposal.solvers.solve)"
        )


def _solve(
    session: _Session,
    policy: Policy,
    mode: str,
    target: _Output | None,
    deadline: float,
    mip_gap: float,
    sample: int,
    free_target: int,
    max_free: int,
    seed: int,
    progress: Callable[[str], None] | None,
    summary: pd.DataFrame,
) -> PartitionedResult:
    c = session.client
    t0 = time.perf_counter()
    built = [c.submit(_build, p, policy, pure=False) for p in session.parts]
    shapes = c.gather([c.submit(_shape, p, pure=False) for p in built])
    table = session.branches
    layout = _layout(
        shapes,
        policy,
        mode,
        None if table is None else table["inclusive_loans"].to_numpy(dtype=float),
    )
    shared = c.scatter(layout, broadcast=True)
    parts = [c.submit(_globalise, p, shared, pure=False) for p in built]
    _distributed().wait(parts)
    del built
    session.parts = parts
    seconds = dict(session.seconds, build=time.perf_counter() - t0)
    if progress is not None:
        progress(
            f"built {len(parts)} partition problems, {layout.k} coupling rows "
            f"({seconds['build']:.2f} s)"
        )
    t0 = time.perf_counter()
    run = _Run(
        c, parts, layout, [s.loans for s in shapes], progress, seed, sample, free_target, deadline
    )
    lp = run.fractional()
    missed = np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > 1e-7
    if lp.status == "optimal" and missed:
        raise InfeasiblePolicyError(_conflicts(layout, lp.shortfall))
    if lp.status not in ("optimal", "time_limit"):
        if lp.status == "infeasible":
            raise InfeasiblePolicyError(_conflicts(layout, np.zeros(layout.k)))
        raise SolverError(f"the solver failed on the restricted LP: {lp.message or lp.status}")
    iterations = lp.iterations
    plan: _Plan | None = None
    if mode == "fractional":
        if not missed and math.isfinite(lp.objective):  # else the time limit came first
            plan = _Plan(lp.states, lp.open, lp.shares, lp.y, lp.objective)
        bound = lp.bound
    else:
        plan, bound = run.whole_loan(lp, mip_gap, max_free)
    seconds["solve"] = time.perf_counter() - t0
    report = SolverReport("highs", "dask", seconds["solve"], iterations, run.opened)
    if plan is None:
        return PartitionedResult(
            Status.NO_SOLUTION,
            mode,
            math.nan,
            bound,
            math.inf,
            constraint_table(
                layout.aggregate(),
                np.zeros((1, len(layout.channels))),
                np.zeros(len(layout.blocks)),
                None,
            ),
            {},
            report,
            summary,
            seconds,
            None,
        )
    t0 = time.perf_counter()
    written = _write(session, run, plan, mode, target)
    seconds["write"] = time.perf_counter() - t0
    blocks = {b.name: float(v) for b, v in zip(layout.blocks, plan.y, strict=True)}
    objective = _check(policy, table, written, blocks, session)
    bound = max(bound, objective)
    gap = (bound - objective) / max(abs(bound), 1.0)
    proven = gap <= max(mip_gap, 1e-9) or mode == "fractional"
    final = Status.OPTIMAL if proven and lp.status == "optimal" else Status.FEASIBLE
    usage = np.sum([w.row_usage for w in written], axis=0)
    shares = np.zeros((1, len(layout.channels)))
    shares[0, 0] = 1.0
    duals = lp.duals if mode == "fractional" else None
    constraints = constraint_table(layout.aggregate(usage), shares, plan.y, duals)
    opened = [0] * len(written)
    for piece in plan.open.pieces:
        opened[piece.index] += piece.size
    partitions = summary.assign(
        open_loans=opened,
        plan_rows=[w.rows for w in written],
        value=[w.objective for w in written],
    )
    gathered = None
    if target is None:
        gathered = pd.concat([w.plan for w in written if w.plan is not None], ignore_index=True)
    memory = c.run(_peak_memory_mb)
    return PartitionedResult(
        final,
        mode,
        objective,
        bound,
        gap,
        constraints,
        blocks,
        report,
        partitions,
        seconds,
        None if target is None else target.path,
        gathered,
        dict(memory),
    )


def _write(
    session: _Session, run: _Run, plan: _Plan, mode: str, target: _Output | None
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
            pure=False,
        )
        for i, (part, name) in enumerate(zip(session.parts, session.data.names, strict=True))
    ]
    return list(c.gather(futures))


def _check(
    policy: Policy,
    table: pd.DataFrame | None,
    written: Sequence[_Written],
    blocks: Mapping[str, float],
    session: _Session,
) -> float:
    """Check the whole plan rule by rule (as :func:`verify_plan`); return its value.

    Loan-level rules were checked per partition; the budgets and the tolerance
    are checked here from the usage every partition recomputed from its tables.
    """
    log = _Log()
    usage: dict[str, float] = {}
    for w in written:
        for key, val in w.usage.items():
            usage[key] = usage.get(key, 0.0) + val
    channels = sorted({k.rsplit("_", 1)[0] for k in usage if k.endswith(("_balance", "_loans"))})
    balance = pd.Series({ch: usage.get(f"{ch}_balance", 0.0) for ch in channels}, dtype=float)
    count = pd.Series({ch: usage.get(f"{ch}_loans", 0.0) for ch in channels}, dtype=float)
    levels = _block_levels(policy, balance, count, blocks)
    fixed = sum(cost * levels.get(name, 0.0) for name, cost in policy.fixed_costs.items())
    profit = usage.get("profit", 0.0) - fixed
    _check_budgets(log, policy, balance, count, profit, levels)
    tol = policy.tolerance
    if tol is not None and tol.enforce and table is not None:
        npl = np.sum([ch.npl for ch in session.checked], axis=0)
        derec = np.sum([w.derecognised for w in written], axis=0)
        for b, rec in enumerate(table.itertuples(index=False)):
            log.over(
                "tolerance",
                float(npl[b] - derec[b]),
                tol.threshold * (float(rec.inclusive_loans) - float(derec[b])),
                "CNY",
                f"branch {rec.branch}: inclusive NPL after disposal CNY {{amount:,.2f}} is above "
                f"{tol.threshold:.2%} of its inclusive loans (CNY {{limit:,.2f}})",
                branch=str(rec.branch),
            )
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
    return float(sum(w.objective for w in written)) - fixed

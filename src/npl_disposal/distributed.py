"""Portfolios beyond one machine: partitioned Parquet processed with Dask.

>>> from npl_disposal.distributed import solve_partitioned
>>> result = solve_partitioned("loans/", "branches.csv", "policy.toml",
...                            out="plan/")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP

A portfolio is a directory of Parquet files, one per partition (see
:func:`write_partitioned`). Every partition is read, validated, valued and
turned into its own :class:`~npl_disposal.problem.AllocationProblem` on a Dask
worker, once, and stays there. The coordinator (this process) holds only the
coupling rows of DESIGN section 4 (the policy's budgets and one tolerance row
per branch, their limits computed from totals reduced over every partition)
and their dual prices. The solve is the method of
:mod:`npl_disposal.decomposition`, split along partitions:

1. workers return, for the current prices, each loan's best channel
   (:func:`~npl_disposal.decomposition.reduced_values`), the row usage and value
   of those choices, and the loans within a tie of their best (the *open* loans,
   with their rows of the options grid);
2. the coordinator solves the restricted LP over the open loans, every other
   loan's usage a constant, and sends its duals back;
3. workers price their fixed loans against those duals and return the loans
   whose fixed channel is no longer best; repeat until none is.

When no loan is returned the restricted optimum is the LP optimum over every
loan (complementary slackness), so the fractional optimum equals the
single-machine :func:`~npl_disposal.solve` one. Whole-loan mode repairs the LP on
the coordinator and proves its bound with reduced-cost fixing, as
:func:`~npl_disposal.decomposition.solve_whole_loan` does. The plan is written
back partitioned (one Parquet file per input file: ``loan_id, channel,
share``), checked rule by rule first, and all or nothing.

``client=None`` starts a local cluster (one single-threaded worker process per
core) and closes it afterwards; pass a ``distributed.Client`` (or a scheduler
address such as ``"tcp://scheduler:8786"``) to use an existing cluster. See
``docs/distributed.md``.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from npl_disposal.decomposition import (
    _SLACK_TOL,
    _TIE_TOL,
    Outcome,
    _combos,
    _free_for_rows,
    _free_more,
    _gap,
    _repair,
    _second_gap,
    lagrangian_bound,
    plan_value,
    reduced_values,
    solve_fractional,
)
from npl_disposal.diagnose import _WORDS, CONFLICT_COLUMNS, _conflict, _m
from npl_disposal.exceptions import (
    PROBLEM_COLUMNS,
    InfeasiblePolicyError,
    NplDisposalError,
    PortfolioValidationError,
    SolverError,
)
from npl_disposal.formulation import MONEY_SCALE, restricted_model, row_scale, shares_from
from npl_disposal.highs import run_highs
from npl_disposal.policy import Policy, load_policy
from npl_disposal.portfolio import Portfolio, inclusive_npl_by_branch, read_branches, read_loans
from npl_disposal.problem import (
    AllocationProblem,
    Block,
    ResourceRows,
    _channel_order,
    build_problem,
    read_options,
    tolerance_requirement,
)
from npl_disposal.schema import OPTION_COLUMNS
from npl_disposal.solve import (
    SolverReport,
    Status,
    constraint_records,
    constraint_table,
    plan_frame,
)
from npl_disposal.tables import ProblemLog, TableSource, source_name
from npl_disposal.valuation import ValuationAssumptions, value_options
from npl_disposal.verify import VIOLATION_COLUMNS, _block_levels, _check_budgets, _Log, verify_plan

__all__ = [
    "DaskUnavailableError",
    "PartitionedResult",
    "solve_partitioned",
    "validate_partitioned",
    "value_partitioned",
    "write_partitioned",
]

PLAN_COLUMNS = ["loan_id", "channel", "share"]
_SUFFIX = ".parquet"


class DaskUnavailableError(NplDisposalError, ImportError):
    """Dask is not installed; partitioned processing needs ``dask[distributed]``."""


def _distributed() -> Any:
    """The ``distributed`` package, imported on first use."""
    try:
        import distributed
    except ImportError as exc:
        raise DaskUnavailableError(
            "partitioned portfolios are processed with Dask, which is not installed; "
            "install it with: pip install 'npl-disposal[dask]'"
        ) from exc
    return distributed


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec comes with dask
        raise DaskUnavailableError(
            "partitioned portfolios need fsspec (it comes with Dask); "
            "install it with: pip install 'npl-disposal[dask]'"
        ) from exc
    return fsspec


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class PartitionedResult:
    """A disposal plan solved over partitions, with its value, proven bound and budgets.

    The fields mean what they mean on :class:`~npl_disposal.AllocationResult`:
    ``objective`` and ``bound`` in CNY yuan, ``gap = (bound - objective) /
    |bound|``, ``constraints`` each rule's usage, limit, slack and (fractional
    mode) shadow price. The plan itself is in ``out`` (one Parquet file per input
    partition, ``loan_id, channel, share``); when no ``out`` was given it is
    gathered into ``plan``. ``partitions`` has per file its loans, the loans the
    coordinator saw (``open_loans``), the plan's rows and value; ``seconds`` the
    time of each phase (validate, value, build, solve, write, total);
    ``peak_memory_mb`` each worker's peak resident memory.
    """

    status: Status
    mode: str
    objective: float
    bound: float
    gap: float
    constraints: pd.DataFrame
    blocks: Mapping[str, float]
    solver: SolverReport
    partitions: pd.DataFrame
    seconds: Mapping[str, float]
    out: str | None = None
    plan: pd.DataFrame | None = field(default=None, repr=False)
    peak_memory_mb: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_loans(self) -> int:
        """Number of loans over every partition."""
        return int(self.partitions["loans"].sum()) if len(self.partitions) else 0

    def binding(self) -> pd.DataFrame:
        """The rules at their limit, with their shadow prices."""
        return self.constraints[self.constraints["binding"]]

    def read_plan(self, storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The whole plan as one DataFrame (from ``plan`` or the files in ``out``)."""
        if self.plan is not None:
            return self.plan
        if self.out is None:
            return pd.DataFrame(columns=PLAN_COLUMNS)
        files = _list_parquet(self.out, storage_options)
        return pd.concat(
            [_read_parquet(url, storage_options) for url in files.urls], ignore_index=True
        )

    def summary(self) -> str:
        """What a risk officer reads first: status, value, gap and binding budgets."""
        lines = [
            f"{self.status.value} {self.mode} plan for {self.n_loans:,} loans in "
            f"{len(self.partitions)} partitions: value CNY {self.objective / 1e6:,.2f}m, "
            f"bound CNY {self.bound / 1e6:,.2f}m, gap {self.gap:.2e} "
            f"({self.solver.iterations} pricing passes, {self.solver.open_loans:,} loans "
            f"sent to the coordinator, {self.solver.seconds:.2f} s)",
            "  " + ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items()),
        ]
        binding = self.binding()
        if len(binding):
            lines.append("binding: " + ", ".join(binding["name"]))
        if self.out is not None:
            lines.append(f"plan written to {self.out}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Status, value, bound, gap, blocks, constraints and timings as plain data."""
        return {
            "status": self.status.value,
            "mode": self.mode,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "loans": self.n_loans,
            "partitions": len(self.partitions),
            "blocks": dict(self.blocks),
            "constraints": constraint_records(self.constraints),
            "seconds": dict(self.seconds),
            "out": self.out,
        }


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _Dataset:
    """The Parquet files of a partitioned table: full URLs and bare file names."""

    urls: tuple[str, ...]
    names: tuple[str, ...]


def _list_parquet(path: str | os.PathLike[str], storage: Mapping[str, Any] | None) -> _Dataset:
    fs, root = _fsspec().core.url_to_fs(str(path), **dict(storage or {}))
    if fs.isfile(root):
        files = [root]
    elif fs.isdir(root):
        files = sorted(f for f in fs.find(root, maxdepth=1) if f.endswith(_SUFFIX))
    else:
        raise FileNotFoundError(
            f"{path}: no such directory; give a directory of Parquet files, one per partition"
        )
    if not files:
        raise FileNotFoundError(
            f"{path}: no *{_SUFFIX} files; write one file per partition "
            "(npl_disposal.distributed.write_partitioned does)"
        )
    return _Dataset(
        tuple(fs.unstrip_protocol(f) for f in files), tuple(f.rsplit("/", 1)[-1] for f in files)
    )


def _read_parquet(url: str, storage: Mapping[str, Any] | None) -> pd.DataFrame:
    with _fsspec().open(url, "rb", **dict(storage or {})) as handle:
        return pd.read_parquet(handle)


def _write_parquet(frame: pd.DataFrame, url: str, storage: Mapping[str, Any] | None) -> None:
    with _fsspec().open(url, "wb", **dict(storage or {})) as handle:
        frame.to_parquet(handle, index=False)


class _Output:
    """A directory written all or nothing: files go to a sibling temporary directory first."""

    def __init__(self, path: str | os.PathLike[str], storage: Mapping[str, Any] | None) -> None:
        self.path = str(path)
        self.storage = dict(storage or {})
        self.fs, self.root = _fsspec().core.url_to_fs(self.path, **self.storage)
        self.root = self.root.rstrip("/")
        if self.fs.exists(self.root):
            if not self.fs.isdir(self.root):
                raise FileExistsError(f"{self.path} is a file; give a directory for the output")
            others = [f for f in self.fs.ls(self.root, detail=False) if not f.endswith(_SUFFIX)]
            if others:
                raise FileExistsError(
                    f"{self.path} holds other files than a previous output "
                    f"({others[0].rsplit('/', 1)[-1]}...); give a new or an empty directory"
                )
        self.tmp = f"{self.root}.tmp-{uuid.uuid4().hex[:12]}"
        self.fs.makedirs(self.tmp, exist_ok=True)

    def url(self, name: str) -> str:
        """Where a worker writes file ``name``."""
        return str(self.fs.unstrip_protocol(f"{self.tmp}/{name}"))

    def commit(self) -> None:
        """Move the finished files into place, replacing an earlier output."""
        old = None
        if self.fs.exists(self.root):
            old = f"{self.root}.old-{uuid.uuid4().hex[:12]}"
            self.fs.mv(self.root, old, recursive=True)
        self.fs.mv(self.tmp, self.root, recursive=True)
        if old is not None:
            self.fs.rm(old, recursive=True)

    def abort(self) -> None:
        """Remove the temporary directory (nothing is written)."""
        if self.fs.exists(self.tmp):
            self.fs.rm(self.tmp, recursive=True)


def write_partitioned(
    loans: pd.DataFrame,
    path: str | os.PathLike[str],
    partitions: int = 4,
    options: pd.DataFrame | None = None,
    options_path: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write a loan table as a Parquet dataset of ``partitions`` files (and its options).

    The loans are cut into consecutive, nearly equal parts named
    ``part-00000.parquet``...; each option row goes to the file of the same
    name under ``options_path`` as its loan (rows of unknown loans go to the
    first file, where validation reports them). Returns the loan files' URLs.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if (options is None) != (options_path is None):
        raise ValueError("give both options and options_path, or neither")
    n = len(loans)
    edges = np.linspace(0, n, partitions + 1).round().astype(np.int64)
    names = [f"part-{i:05d}{_SUFFIX}" for i in range(partitions)]
    target = _Output(path, storage_options)
    side = _Output(options_path, storage_options) if options_path is not None else None
    try:
        for i, name in enumerate(names):
            chunk = loans.iloc[edges[i] : edges[i + 1]].reset_index(drop=True)
            _write_parquet(chunk, target.url(name), storage_options)
        if side is not None and options is not None:
            pos = pd.Index(loans["loan_id"]).get_indexer(options["loan_id"])
            part = np.clip(np.searchsorted(edges, pos, side="right") - 1, 0, partitions - 1)
            part[pos < 0] = 0
            for i, name in enumerate(names):
                chunk = options[part == i].reset_index(drop=True)
                _write_parquet(chunk, side.url(name), storage_options)
    except BaseException:
        target.abort()
        if side is not None:
            side.abort()
        raise
    target.commit()
    if side is not None:
        side.commit()
    return [str(target.fs.unstrip_protocol(f"{target.root}/{name}")) for name in names]


# --------------------------------------------------------------------------- cluster


@contextmanager
def _connect(client: Any, n_workers: int | None, n_parts: int) -> Iterator[Any]:
    """The client to use: the one given, one connected to an address, or a local cluster."""
    dist = _distributed()
    if isinstance(client, dist.Client):
        yield client
        return
    if isinstance(client, str):
        remote = dist.Client(client)
        try:
            yield remote
        finally:
            remote.close()
        return
    if client is not None:
        raise TypeError(
            f"client must be a distributed.Client, a scheduler address or None, not {client!r}"
        )
    workers = n_workers or max(1, min(n_parts, os.cpu_count() or 1))
    cluster = dist.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    local = dist.Client(cluster)
    try:
        yield local
    finally:
        local.close()
        cluster.close()


def _pick(pair: tuple[Any, ...], i: int) -> Any:
    return pair[i]


def _peak_memory_mb() -> float:
    """Peak resident memory of the calling process, MB (Linux: VmHWM; else ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return math.nan
    # ru_maxrss survives fork + exec, so a worker started by a large process reports its size
    scale = 1024.0 if os.uname().sysname != "Darwin" else 1.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True, eq=False)
class _Part:
    """One partition on its worker: validated loans, then options, then its problem."""

    index: int
    name: str
    loans: pd.DataFrame
    branches: pd.DataFrame | None
    problems: pd.DataFrame
    npl: np.ndarray
    options: pd.DataFrame | None = None
    problem: AllocationProblem | None = None

    def need(self) -> AllocationProblem:
        assert self.problem is not None, "partition problem not built"
        return self.problem


@dataclass(frozen=True)
class _Checked:
    """What validation sends back: the problems and a few totals."""

    name: str
    loans: int
    balance: float
    problems: pd.DataFrame
    npl: np.ndarray


def _named(problems: pd.DataFrame, name: str) -> pd.DataFrame:
    if problems.empty:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    return problems.assign(file=name)


def _load(
    index: int,
    url: str,
    name: str,
    branches: pd.DataFrame | None,
    branches_file: str,
    storage: Mapping[str, Any] | None,
) -> _Part:
    """Read and validate one partition of loans (worker side)."""
    known = [] if branches is None else list(branches["branch"])
    npl = np.zeros(len(known))
    log = ProblemLog(name)
    try:
        frame = _read_parquet(url, storage)
    except Exception as exc:  # any reader error is the file's problem
        log.note("", f"cannot read the file as Parquet: {exc}", "a Parquet file of loans")
        return _Part(index, name, pd.DataFrame(), branches, log.frame(), npl)
    loans = read_loans(frame, log)
    problems = _named(log.frame(), name)
    if branches is not None and {"loan_id", "branch", "balance", "inclusive"} <= set(loans):
        branch = loans["branch"].astype(object).to_numpy()
        absent = ~pd.Series(branch).isin(set(pd.Series(known).dropna())).to_numpy()
        missing = ProblemLog(name, loans["loan_id"].to_numpy(dtype=object))
        missing.flag(
            absent & pd.notna(branch),
            "branch",
            branch,
            f"branch not in {branches_file}",
            f"a branch listed in {branches_file}",
        )
        problems = pd.concat([problems, missing.frame()], ignore_index=True)
        valid = loans[(loans["balance"] > 0).to_numpy()]
        by_branch = inclusive_npl_by_branch(valid)
        npl = pd.Series(known, dtype=object).map(by_branch).astype(float).fillna(0.0).to_numpy()
    return _Part(index, name, loans, branches, problems, npl)


def _checked(part: _Part) -> _Checked:
    balance = float(part.loans["balance"].sum()) if "balance" in part.loans else math.nan
    return _Checked(part.name, len(part.loans), balance, part.problems, part.npl)


def _id_buckets(part: _Part, buckets: int) -> list[pd.DataFrame]:
    """The partition's loan ids, cut by hash into ``buckets`` (the map side of a shuffle)."""
    if "loan_id" not in part.loans:
        return [pd.DataFrame({"loan_id": [], "file": [], "row": []})] * buckets
    ids = part.loans["loan_id"]
    frame = pd.DataFrame(
        {"loan_id": ids.to_numpy(dtype=object), "file": part.name, "row": np.arange(len(ids)) + 1}
    )[ids.notna().to_numpy()]
    which = pd.util.hash_array(frame["loan_id"].to_numpy(dtype=object)) % np.uint64(buckets)
    return [frame[which == b] for b in range(buckets)]


def _duplicates(*frames: pd.DataFrame) -> pd.DataFrame:
    """Loan ids found in more than one partition (the reduce side), as problems."""
    ids = pd.concat(frames, ignore_index=True)
    files = ids.groupby("loan_id")["file"].nunique()
    shared = ids[ids["loan_id"].map(files).fillna(0).to_numpy() > 1]
    if shared.empty:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    where = shared.groupby("loan_id")["file"].agg(lambda s: ", ".join(sorted(set(s))))
    return pd.DataFrame(
        {
            "file": shared["file"].to_numpy(),
            "row": shared["row"].to_numpy(),
            "loan_id": shared["loan_id"].to_numpy(),
            "column": "loan_id",
            "value": shared["loan_id"].to_numpy(),
            "problem": "duplicate loan_id across partitions (in "
            + shared["loan_id"].map(where).astype(str)
            + ")",
            "allowed": "each loan_id once over every partition",
        }
    )


def _with_options(
    part: _Part,
    url: str | None,
    name: str,
    policy: Policy | None,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None,
    storage: Mapping[str, Any] | None,
) -> _Part:
    """Attach the partition's options: read and validated, or valued here (worker side)."""
    pf = Portfolio(part.loans, None, part.name)
    try:
        if url is None:
            raw = value_options(pf, assumptions=assumptions, policy=policy)
        else:
            raw = _read_parquet(url, storage)
        options = read_options(raw, pf)
    except PortfolioValidationError as exc:
        return replace(part, problems=_named(exc.problems, name))
    return replace(part, options=options, problems=pd.DataFrame(columns=PROBLEM_COLUMNS))


def _write_options(part: _Part, url: str, storage: Mapping[str, Any] | None) -> int:
    assert part.options is not None
    columns = [c.name for c in OPTION_COLUMNS]
    _write_parquet(part.options[columns].reset_index(drop=True), url, storage)
    return len(part.options)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Shape:
    """A partition problem's channels and rows, before the global layout is known."""

    channels: tuple[str, ...]
    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    blocks_coef: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    blocks: tuple[Block, ...]
    branches: tuple[str, ...]
    npl: np.ndarray
    loans: int


@dataclass(frozen=True, eq=False)
class _Layout:
    """The global problem's channels and coupling rows (names, limits, block coefficients)."""

    channels: tuple[str, ...]
    branches: tuple[str, ...]
    names: tuple[str, ...]
    rule: tuple[str, ...]
    unit: tuple[str, ...]
    branch: tuple[str | None, ...]
    blocks_coef: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    blocks: tuple[Block, ...]
    policy: Policy
    mode: str

    @property
    def k(self) -> int:
        return len(self.names)

    def rows(
        self,
        matrix: sp.csr_matrix,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> ResourceRows:
        return ResourceRows(
            names=self.names,
            rule=self.rule,
            unit=self.unit,
            branch=self.branch,
            matrix=matrix,
            blocks=self.blocks_coef,
            lower=self.lower if lower is None else lower,
            upper=self.upper if upper is None else upper,
        )

    def aggregate(self, usage: np.ndarray | None = None) -> AllocationProblem:
        """A problem of one pseudo-loan whose first option uses ``usage`` of every row.

        It carries the rows for :func:`lagrangian_bound`, :func:`row_scale` and
        :func:`~npl_disposal.solve.constraint_table` (share 1 on that option gives
        the usage).
        """
        m = len(self.channels)
        column = np.zeros(self.k) if usage is None else usage
        matrix = sp.csr_matrix(
            (column, (np.arange(self.k), np.zeros(self.k, dtype=np.int64))), shape=(self.k, m)
        )
        one = _Piece(
            index=-1,
            loans=np.zeros(1, dtype=np.int64),
            loan_ids=np.array(["<all>"], dtype=object),
            balance=np.ones(1),
            branch_index=np.zeros(1, dtype=np.int64),
            inclusive=np.zeros(1, dtype=bool),
            value=np.zeros((1, m)),
            pnl=np.zeros((1, m)),
            derecognised=np.zeros((1, m)),
            offered=np.ones((1, m), dtype=bool),
            eligible=np.ones((1, m), dtype=bool),
            matrix=matrix,
        )
        return _assemble(self, [one])


def _shape(part: _Part) -> _Shape:
    p = part.need()
    rows = p.rows
    inc = p.inclusive
    npl = np.bincount(p.branch_index[inc], p.balance[inc], minlength=len(p.branches))
    return _Shape(
        p.channels,
        rows.names,
        rows.rule,
        rows.unit,
        rows.branch,
        rows.blocks,
        rows.lower,
        rows.upper,
        p.blocks,
        p.branches,
        npl,
        p.n_loans,
    )


def _layout(
    shapes: Sequence[_Shape], policy: Policy, mode: str, inclusive_loans: np.ndarray | None
) -> _Layout:
    """The global rows: the union of the partitions' rows, tolerance limits from global totals.

    Each partition problem is built with a branch table of zero inclusive loans,
    so that it has a tolerance row for every branch it holds inclusive NPL of;
    the limit of that row for the whole portfolio needs the branch's total NPL
    ``N_k`` (summed here over every partition) and ``L_k``.
    """
    channels = _channel_order(pd.Series([c for s in shapes for c in s.channels], dtype=object))
    first = shapes[0]
    if any(s.blocks != first.blocks for s in shapes):
        raise NotImplementedError(
            "the partitions' problems have different on/off variables "
            f"({first.blocks} and others); this policy cannot be solved over partitions"
        )
    seen: dict[str, tuple[int, int]] = {}
    for i, s in enumerate(shapes):
        for r, name in enumerate(s.names):
            seen.setdefault(name, (i, r))
    budget = [n for n in seen if shapes[seen[n][0]].rule[seen[n][1]] != "tolerance"]
    names = list(budget)
    lower = [shapes[seen[n][0]].lower[seen[n][1]] for n in budget]
    if policy.tolerance is not None and policy.tolerance.enforce and inclusive_loans is not None:
        npl = np.sum([s.npl for s in shapes], axis=0)
        need = tolerance_requirement(npl, inclusive_loans, policy.tolerance.threshold)
        for b in np.flatnonzero(need > 0):
            name = f"tolerance[{first.branches[b]}]"
            if name in seen:
                names.append(name)
                lower.append(float(need[b]))
    where = [seen[n] for n in names]
    pick = lambda attr: tuple(getattr(shapes[i], attr)[r] for i, r in where)  # noqa: E731
    nb = len(first.blocks)
    coef = np.array([shapes[i].blocks_coef[r] for i, r in where]).reshape(len(names), nb)
    branches = tuple(pd.unique(pd.Series([b for s in shapes for b in s.branches], dtype=object)))
    return _Layout(
        channels=channels,
        branches=branches,
        names=tuple(names),
        rule=pick("rule"),
        unit=pick("unit"),
        branch=pick("branch"),
        blocks_coef=coef,
        lower=np.array(lower, dtype=float),
        upper=np.array(pick("upper"), dtype=float),
        blocks=first.blocks,
        policy=policy,
        mode=mode,
    )


def _build(part: _Part, policy: Policy) -> _Part:
    """The partition's own problem (worker side); every tolerance row it touches is kept."""
    if part.options is None:
        raise ValueError(f"{part.name}: no options; validate and value the partition first")
    zero = part.branches.assign(inclusive_loans=0.0) if part.branches is not None else None
    problem = build_problem(Portfolio(part.loans, zero, part.name), policy, part.options)
    return replace(part, problem=problem)


def _globalise(part: _Part, layout: _Layout) -> _Part:
    """Re-index the partition problem on the global channels and rows (worker side)."""
    p = part.need()
    m_local, m = p.n_channels, len(layout.channels)
    to = pd.Index(layout.channels).get_indexer(list(p.channels))
    n = p.n_loans

    def widen(grid: np.ndarray) -> np.ndarray:
        out = np.zeros((n, m), dtype=grid.dtype)
        out[:, to] = grid
        return out

    row_of = pd.Index(layout.names).get_indexer(list(p.rows.names))
    coo = p.rows.matrix.tocoo()
    keep = row_of[coo.row] >= 0
    loan, chan = np.divmod(coo.col[keep].astype(np.int64), m_local)
    matrix = sp.csr_matrix(
        (coo.data[keep], (row_of[coo.row[keep]], loan * m + to[chan])), shape=(layout.k, n * m)
    )
    branch_to = pd.Index(layout.branches).get_indexer(list(p.branches))
    problem = replace(
        p,
        channels=layout.channels,
        branches=layout.branches,
        branch_index=branch_to[p.branch_index] if p.n_loans else p.branch_index,
        value=widen(p.value),
        pnl=widen(p.pnl),
        derecognised=widen(p.derecognised),
        offered=widen(p.offered),
        eligible=widen(p.eligible),
        rows=layout.rows(matrix),
        portfolio=Portfolio(part.loans, part.branches, part.name),
        policy=layout.policy,
        mode=layout.mode,
    )
    return replace(part, problem=problem)


# --------------------------------------------------------------------------- pieces


@dataclass(frozen=True, eq=False)
class _Piece:
    """Some loans of one partition with their rows of the options grid and row coefficients."""

    index: int
    loans: np.ndarray
    loan_ids: np.ndarray
    balance: np.ndarray
    branch_index: np.ndarray
    inclusive: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    derecognised: np.ndarray
    offered: np.ndarray
    eligible: np.ndarray
    matrix: sp.csr_matrix
    allowed: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.loans.size)


def _piece(
    index: int, p: AllocationProblem, loans: np.ndarray, allowed: np.ndarray | None = None
) -> _Piece:
    m = p.n_channels
    cols = (loans[:, None] * m + np.arange(m)).ravel()
    return _Piece(
        index=index,
        loans=loans,
        loan_ids=p.loan_ids[loans],
        balance=p.balance[loans],
        branch_index=p.branch_index[loans],
        inclusive=p.inclusive[loans],
        value=p.value[loans],
        pnl=p.pnl[loans],
        derecognised=p.derecognised[loans],
        offered=p.offered[loans],
        eligible=p.eligible[loans],
        matrix=p.rows.matrix[:, cols].tocsr(),
        allowed=None if allowed is None else allowed[loans],
    )


def _assemble(
    layout: _Layout,
    pieces: Sequence[_Piece],
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> AllocationProblem:
    """An :class:`AllocationProblem` over the loans of ``pieces`` (on the coordinator)."""
    m = len(layout.channels)

    def cat(attr: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        parts = [getattr(p, attr) for p in pieces]
        return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)

    matrix = (
        sp.hstack([p.matrix for p in pieces], format="csr")
        if pieces
        else sp.csr_matrix((layout.k, 0))
    )
    ids = cat("loan_ids", (0,), object)
    balance = cat("balance", (0,), float)
    branch_index = cat("branch_index", (0,), np.int64)
    inclusive = cat("inclusive", (0,), bool)
    names = np.asarray(layout.branches, dtype=object)
    loans = pd.DataFrame(
        {
            "loan_id": ids,
            "branch": names[branch_index] if names.size else np.full(ids.size, None),
            "balance": balance,
            "inclusive": inclusive,
        }
    )
    return AllocationProblem(
        loan_ids=ids,
        channels=layout.channels,
        balance=balance,
        branch_index=branch_index,
        branches=layout.branches,
        inclusive=inclusive,
        value=cat("value", (0, m), float),
        pnl=cat("pnl", (0, m), float),
        derecognised=cat("derecognised", (0, m), float),
        offered=cat("offered", (0, m), bool),
        eligible=cat("eligible", (0, m), bool),
        rows=layout.rows(matrix, lower, upper),
        blocks=layout.blocks,
        mode=layout.mode,
        portfolio=Portfolio(loans, None, "open loans"),
        policy=layout.policy,
        options=pd.DataFrame(columns=[c.name for c in OPTION_COLUMNS]),
    )


# --------------------------------------------------------------------------- worker steps


@dataclass(frozen=True, eq=False)
class _State:
    """A partition's plan between passes: each loan's fixed channel, and the open loans."""

    base: np.ndarray
    free: np.ndarray


@dataclass(frozen=True, eq=False)
class _Report:
    """What a worker sends back after a pass (small, apart from the loans it opens)."""

    index: int
    opened: _Piece | None
    usage: np.ndarray
    value: float
    best: float
    wrong: int = 0
    finite: bool = True
    count: int = 0


#: A state and the report that came with it: kept together on the worker (one task a pass).
_Held = tuple[_State, _Report]


def _onehot(p: AllocationProblem, base: np.ndarray, keep: np.ndarray) -> np.ndarray:
    shares = np.zeros(p.eligible.shape)
    loans = np.flatnonzero(keep)
    shares[loans, base[loans]] = 1.0
    return shares


def _report(
    index: int,
    p: AllocationProblem,
    state: _State,
    opened: np.ndarray | None,
    best: float,
    **extra: Any,
) -> _Report:
    fixed = _onehot(p, state.base, ~state.free)
    usage = np.asarray(p.rows.matrix @ fixed.ravel()).ravel()
    value = float((p.value * fixed).sum())
    piece = _piece(index, p, opened) if opened is not None and opened.size else None
    return _Report(index, piece, usage, value, best, **extra)


def _respond(
    part: _Part, prices: np.ndarray, limit: int, everything: bool
) -> tuple[_State, _Report]:
    """Best response to the prices: argmax channels, and the loans near a tie opened."""
    p = part.need()
    reduced = reduced_values(p, prices)
    base = reduced.argmax(axis=1)
    free = np.ones(p.n_loans, dtype=bool) if everything else np.zeros(p.n_loans, dtype=bool)
    if not everything and p.n_loans:
        gap = _second_gap(reduced)
        free[np.argsort(gap / p.balance, kind="stable")[:limit]] = True
        free |= gap * MONEY_SCALE <= _TIE_TOL
    state = _State(base, free)
    best = float(reduced.max(axis=1).sum())
    return state, _report(part.index, p, state, np.flatnonzero(free), best)


def _price_out(part: _Part, held: _Held, duals: np.ndarray, limit: int) -> _Held:
    """Price the fixed loans at the restricted LP's duals; open those no longer at their best."""
    state = held[0]
    p = part.need()
    reduced = reduced_values(p, duals)
    rows = np.arange(p.n_loans)
    loss = (reduced.max(axis=1) - reduced[rows, state.base]) * MONEY_SCALE
    wrong = ~state.free & (loss > _TIE_TOL)
    free = state.free.copy()
    if wrong.any():
        _free_more(free, wrong, loss, limit, p.balance)
    new = _State(state.base, free)
    best = float(reduced.max(axis=1).sum())
    return new, _report(
        part.index, p, new, np.flatnonzero(free & ~state.free), best, wrong=int(wrong.sum())
    )


def _open_for_rows(part: _Part, held: _Held, duals: np.ndarray, shortfall: np.ndarray) -> _Held:
    """Open the cheapest fixed loans able to close the rows the restricted LP misses."""
    state = held[0]
    p = part.need()
    reduced = reduced_values(p, duals)
    free = state.free.copy()
    _free_for_rows(
        p, free, _onehot(p, state.base, np.ones(p.n_loans, dtype=bool)), reduced, shortfall
    )
    new = _State(state.base, free)
    return new, _report(part.index, p, new, np.flatnonzero(free & ~state.free), math.nan)


def _open_all(part: _Part, held: _Held) -> _Held:
    state = held[0]
    p = part.need()
    new = _State(state.base, np.ones(p.n_loans, dtype=bool))
    return new, _report(part.index, p, new, np.flatnonzero(~state.free), math.nan)


def _sample(part: _Part, count: int, seed: int) -> tuple[_Piece, np.ndarray]:
    """A random sample of the partition's loans, and each row's reach (sum of |coefficients|)."""
    p = part.need()
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(p.n_loans, size=min(count, p.n_loans), replace=False))
    reach = np.asarray(abs(p.rows.matrix) @ np.ones(p.rows.matrix.shape[1])).ravel()
    return _piece(part.index, p, pick.astype(np.int64)), reach


def _combo_part(part: _Part, prices: np.ndarray, closed: tuple[str, ...]) -> tuple[bool, float]:
    """Sum of the partition's best reduced values, the channels ``closed`` removed."""
    p = part.need()
    reduced = reduced_values(p, prices)
    for name in closed:
        if name in p.channels:
            reduced[:, p.channels.index(name)] = -np.inf
    best = reduced.max(axis=1)
    if not np.isfinite(best).all():
        return False, -math.inf
    return True, float(best.sum())


def _fixing(
    part: _Part, duals: np.ndarray, threshold: float, gather: bool
) -> tuple[_State, _Report]:
    """Reduced-cost fixing: options within ``threshold`` (CNY) of the loan's best stay open.

    A loan with one such option is fixed at its best channel; with two or more it is
    open. With ``gather`` false only the count is reported.
    """
    p = part.need()
    reduced = reduced_values(p, duals)
    loss = reduced.max(axis=1)[:, None] - reduced
    allowed = p.eligible & (loss < threshold)
    free = allowed.sum(axis=1) >= 2
    state = _State(reduced.argmax(axis=1), free)
    if not gather:
        empty = _Report(
            part.index, None, np.zeros(len(p.rows)), 0.0, math.nan, count=int(free.sum())
        )
        return state, empty
    out = _report(part.index, p, state, None, math.nan, count=int(free.sum()))
    opened = np.flatnonzero(free)
    piece = _piece(part.index, p, opened, allowed) if opened.size else None
    return state, replace(out, opened=piece)


@dataclass(frozen=True, eq=False)
class _Written:
    """A partition's plan after writing: its loan-level check and its usage of every rule."""

    index: int
    name: str
    rows: int
    loans: int
    violations: pd.DataFrame
    objective: float
    usage: Mapping[str, float]
    derecognised: np.ndarray
    row_usage: np.ndarray
    plan: pd.DataFrame | None


def _write_plan(
    part: _Part,
    held: _Held,
    loans: np.ndarray,
    shares: np.ndarray,
    whole_loan: bool,
    url: str | None,
    storage: Mapping[str, Any] | None,
) -> _Written:
    """Write the partition's plan and check it (worker side).

    Loan-level rules (eligibility, shares, long ageing, write-off priority) are
    checked here with :func:`verify_plan`; the budgets and the tolerance need
    the whole portfolio and are checked by the coordinator from the usage
    returned, recomputed from the tables, not from the solver's matrices.
    """
    p = part.need()
    grid = _onehot(p, held[0].base, np.ones(p.n_loans, dtype=bool))
    grid[loans] = shares
    plan = plan_frame(p, grid)
    plan["channel"] = plan["channel"].astype(str)
    if url is not None:
        _write_parquet(plan, url, storage)
    policy = replace(
        p.policy,
        write_off=None,
        bulk_transfer=None,
        securitisation=None,
        restructure=None,
        profit=None,
        tolerance=None,
    )
    assert part.options is not None
    check = verify_plan(
        Portfolio(part.loans, None, part.name), policy, part.options, plan, whole_loan=whole_loan
    )
    derec = np.zeros(len(p.branches))
    if part.branches is not None and len(plan):
        opts = part.options[["loan_id", "channel", "derecognised"]].astype({"channel": str})
        joined = plan.merge(opts, on=["loan_id", "channel"], how="inner")
        loans_t = part.loans.set_index("loan_id")
        joined = joined[joined["loan_id"].map(loans_t["inclusive"]).astype(bool).to_numpy()]
        amount = (
            joined["loan_id"].map(loans_t["balance"]) * joined["share"] * joined["derecognised"]
        )
        by_branch = amount.groupby(joined["loan_id"].map(loans_t["branch"]).astype(object)).sum()
        derec = pd.Series(p.branches, dtype=object).map(by_branch).astype(float).fillna(0.0)
        derec = derec.to_numpy()
    violations = check.violations.assign(file=part.name)
    usage = np.asarray(p.rows.matrix @ grid.ravel()).ravel()
    return _Written(
        part.index,
        part.name,
        len(plan),
        p.n_loans,
        violations,
        check.objective,
        dict(check.usage),
        derec,
        usage,
        None if url is not None else plan,
    )


# --------------------------------------------------------------------------- coordinator


@dataclass(eq=False)
class _Open:
    """The open loans the coordinator holds, piece by piece, in arrival order."""

    pieces: list[_Piece] = field(default_factory=list)

    def add(self, reports: Sequence[_Report]) -> int:
        added = 0
        for r in reports:
            if r.opened is not None and r.opened.size:
                self.pieces.append(r.opened)
                added += r.opened.size
        return added

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)

    def split(self, shares: np.ndarray, n_parts: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per partition: its open loans (local positions) and their rows of ``shares``."""
        out: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(n_parts)]
        start = 0
        for piece in self.pieces:
            out[piece.index][0].append(piece.loans)
            out[piece.index][1].append(shares[start : start + piece.size])
            start += piece.size
        m = shares.shape[1]
        return [
            (
                np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64),
                np.concatenate(rows) if rows else np.zeros((0, m)),
            )
            for idx, rows in out
        ]


@dataclass(eq=False)
class _LP:
    """A distributed LP solve: duals, bound, the open loans' solution and the states."""

    status: str
    duals: np.ndarray
    objective: float
    bound: float
    y: np.ndarray
    shortfall: np.ndarray
    open: _Open
    problem: AllocationProblem
    shares: np.ndarray
    states: list[Any]
    fixed_value: float
    iterations: int
    message: str = ""


@dataclass(eq=False)
class _Plan:
    """A plan: the states (fixed channels) on the workers plus the open loans' shares."""

    states: list[Any]
    open: _Open
    shares: np.ndarray
    y: np.ndarray
    value: float


class _Run:
    """The coordinator's side of one solve over partitions already built on the workers."""

    def __init__(
        self,
        client: Any,
        parts: list[Any],
        layout: _Layout,
        sizes: list[int],
        progress: Callable[[str], None] | None,
        seed: int,
        sample: int,
        free_target: int,
        deadline: float,
    ) -> None:
        self.client = client
        self.parts = parts
        self.layout = layout
        self.sizes = sizes
        self.n = sum(sizes)
        self.progress = progress
        self.seed = seed
        self.sample = sample
        self.free_target = free_target
        self.deadline = deadline
        self.opened = 0
        self.aggregate = layout.aggregate()
        self.switches = np.array([b.kind == "switch" for b in layout.blocks], dtype=bool)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def step(
        self,
        fn: Callable[..., Any],
        states: Sequence[Any] | None,
        *args: Any,
        each: Sequence[Sequence[Any]] | None = None,
    ) -> tuple[list[Any], list[_Report]]:
        """Run ``fn`` on every partition; the new states stay on the workers, reports come back.

        The returned futures hold ``(state, report)`` pairs; only the reports travel.
        """
        c = self.client
        pairs = []
        for i, part in enumerate(self.parts):
            extra = tuple(each[i]) if each is not None else ()
            lead = (part,) if states is None else (part, states[i])
            pairs.append(c.submit(fn, *lead, *args, *extra, pure=False))
        reports = c.gather([c.submit(_pick, f, 1, pure=False) for f in pairs])
        return pairs, list(reports)

    def left(self) -> float:
        return max(self.deadline - time.perf_counter(), 0.05)

    def limits(self) -> list[list[int]]:
        return [
            [max(math.ceil(self.free_target * s / max(self.n, 1)), s // 50)] for s in self.sizes
        ]

    # ------------------------------------------------------------------ prices

    def sample_prices(self, fix_blocks: np.ndarray | None) -> np.ndarray:
        """Prices from the exact LP of a random sample of every partition (as single-machine)."""
        size = max(self.sample, self.n // 10)
        seeds = np.random.SeedSequence(self.seed).generate_state(len(self.parts))
        counts = [round(size * s / self.n) for s in self.sizes]
        c = self.client
        futures = [
            c.submit(_sample, part, counts[i], int(seeds[i]), pure=False)
            for i, part in enumerate(self.parts)
        ]
        got = c.gather(futures)
        pieces = [g[0] for g in got if g[0].size]
        total = np.sum([g[1] for g in got], axis=0)
        sub = _assemble(self.layout, pieces)
        picked = np.asarray(abs(sub.rows.matrix) @ np.ones(sub.rows.matrix.shape[1])).ravel()
        share = sub.n_loans / max(self.n, 1)
        factor = np.divide(picked, total, out=np.full(total.size, share), where=total > 0)
        rows = sub.rows
        lower = np.where(np.isfinite(rows.lower), np.nan_to_num(rows.lower) * factor, rows.lower)
        upper = np.where(np.isfinite(rows.upper), np.nan_to_num(rows.upper) * factor, rows.upper)
        sub = replace(
            sub,
            rows=replace(rows, blocks=rows.blocks * factor[:, None], lower=lower, upper=upper),
            blocks=tuple(replace(b, fixed_cost=b.fixed_cost * share) for b in sub.blocks),
        )
        t0 = time.perf_counter()
        outcome = solve_fractional(
            sub,
            self.left(),
            sample=self.sample,
            free_target=self.free_target,
            seed=self.seed,
            fix_blocks=fix_blocks,
        )
        self.say(
            f"prices from a sample of {sub.n_loans:,} loans ({outcome.status}, "
            f"{time.perf_counter() - t0:.2f} s)"
        )
        return outcome.duals if outcome.status == "optimal" else np.zeros(self.layout.k)

    # ------------------------------------------------------------------ fractional

    def fractional(
        self, fix_blocks: np.ndarray | None = None, prices: np.ndarray | None = None
    ) -> _LP:
        """The LP optimum by prices and restricted LPs, as :func:`solve_fractional`."""
        layout, k = self.layout, self.layout.k
        everything = self.n <= self.sample + self.free_target
        if everything:
            duals = np.zeros(k)
        elif prices is not None:
            duals = prices
        else:
            duals = self.sample_prices(fix_blocks)
        each = [[*lim, everything] for lim in self.limits()]
        states, reports = self.step(_respond, None, duals, each=each)
        open_ = _Open()
        open_.add(reports)
        all_open = everything
        fixed_usage = np.sum([r.usage for r in reports], axis=0)
        fixed_value = float(sum(r.value for r in reports))
        best = (duals, float(sum(r.best for r in reports)))
        scale = row_scale(self.aggregate)
        iterations, timed_out = 0, False
        while True:
            iterations += 1
            problem = _assemble(
                layout, open_.pieces, layout.lower - fixed_usage, layout.upper - fixed_usage
            )
            restricted = restricted_model(
                problem, np.ones(problem.n_loans, dtype=bool), None, fix_blocks=fix_blocks
            )
            sol = run_highs(restricted.model, time_limit=self.left())
            if sol.status != "optimal":
                return _LP(
                    sol.status,
                    duals,
                    math.nan,
                    math.nan,
                    np.ones(len(layout.blocks)),
                    np.zeros(k),
                    open_,
                    problem,
                    np.zeros(problem.eligible.shape),
                    states,
                    fixed_value,
                    iterations,
                    sol.message,
                )
            short = restricted.slack(sol.x)
            if time.perf_counter() > self.deadline:
                timed_out = True
                break
            if np.abs(short).max(initial=0.0) > _SLACK_TOL and not all_open:
                states, reports = self.step(_open_for_rows, states, duals, short / scale)
                added = open_.add(reports)
                if added == 0:  # no fixed loan can help: only the whole LP can settle it
                    states, reports = self.step(_open_all, states)
                    open_.add(reports)
                    all_open = True
                fixed_usage = np.sum([r.usage for r in reports], axis=0)
                fixed_value = float(sum(r.value for r in reports))
                self.say(
                    f"LP pass {iterations} ({sol.seconds:.2f} s): rows missed, "
                    f"{open_.size:,} loans open"
                )
                continue
            duals = restricted.resource_duals(sol.row_dual)
            states, reports = self.step(_price_out, states, duals, each=self.limits())
            best = (duals, float(sum(r.best for r in reports)))
            wrong = sum(r.wrong for r in reports)
            if wrong == 0:
                break
            open_.add(reports)
            fixed_usage = np.sum([r.usage for r in reports], axis=0)
            fixed_value = float(sum(r.value for r in reports))
            self.say(
                f"LP pass {iterations} ({sol.seconds:.2f} s): {wrong:,} fixed loans "
                f"repriced; {open_.size:,} loans open"
            )
        shares = shares_from(problem, restricted, sol.x, np.zeros(problem.eligible.shape))
        y = sol.x[restricted.n_x : restricted.n_x + restricted.n_blocks]
        shortfall = restricted.slack(sol.x) / scale
        objective = fixed_value + plan_value(problem, shares, y)
        bound = lagrangian_bound(
            self.aggregate, best[0], np.array([[best[1]]]), fix_blocks=fix_blocks
        )
        self.opened = max(self.opened, open_.size)
        self.say(
            f"LP optimum CNY {objective:,.2f}, bound CNY {bound:,.2f} after {iterations} "
            f"passes; {open_.size:,} loans open"
        )
        return _LP(
            "time_limit" if timed_out else "optimal",
            duals,
            objective,
            bound,
            y,
            shortfall,
            open_,
            problem,
            shares,
            states,
            fixed_value,
            iterations,
        )

    # ------------------------------------------------------------------ whole loan

    def combo_bound(self, duals: np.ndarray, combo: np.ndarray | None) -> float:
        """Lagrangian bound with the on/off variables fixed (as ``_combo_bound``), reduced here."""
        layout = self.layout
        closed: tuple[str, ...] = ()
        prices = duals
        if combo is not None:
            closed = tuple(b.name for b, on in zip(layout.blocks, combo, strict=True) if on < 0.5)
            prices = duals.copy()
            for name in closed:
                index = [b.name for b in layout.blocks].index(name)
                prices[layout.blocks_coef[:, index] != 0] = 0.0
        got = self.client.gather(
            [
                self.client.submit(_combo_part, part, prices, closed, pure=False)
                for part in self.parts
            ]
        )
        if not all(ok for ok, _ in got):
            return -math.inf
        total = float(sum(v for _, v in got))
        return lagrangian_bound(self.aggregate, prices, np.array([[total]]), fix_blocks=combo)

    def whole_loan(self, lp: _LP, mip_gap: float, max_free: int) -> tuple[_Plan | None, float]:
        """Best whole-loan plan and its bound, as :func:`solve_whole_loan` does."""
        switches = self.switches
        nearest = np.where(switches, (lp.y > 1e-9).astype(float), np.nan)
        others = [
            c
            for c in _combos(switches)
            if c is None or not np.array_equal(c, nearest, equal_nan=True)
        ]
        combos: list[np.ndarray | None] = [nearest] if switches.any() else []
        combos += others
        estimates = [self.combo_bound(lp.duals, c) for c in combos]
        best: _Plan | None = None
        bounds: list[float] = []
        for i, (combo, estimate) in enumerate(zip(combos, estimates, strict=True)):
            prune = best is not None and (
                estimate <= best.value or _gap(best.value, estimate) <= mip_gap
            )
            if i > 0 and (prune or time.perf_counter() > self.deadline):
                bounds.append(estimate)
                continue
            found, bound = self.solve_combo(lp, combo, best, mip_gap, max_free)
            bounds.append(min(bound, estimate))
            if found is not None and (best is None or found.value > best.value):
                best = found
        if best is None:
            return None, lp.bound
        return best, max(best.value, min(lp.bound, max(bounds)))

    def solve_combo(
        self,
        relaxed: _LP,
        combo: np.ndarray | None,
        best: _Plan | None,
        mip_gap: float,
        max_free: int,
    ) -> tuple[_Plan | None, float]:
        """Repair of the combination's LP on the open loans, then reduced-cost fixing."""
        if combo is None or np.array_equal(relaxed.y[self.switches], combo[self.switches]):
            lp = relaxed
        else:
            lp = self.fractional(fix_blocks=combo, prices=relaxed.duals)
        if (
            lp.status != "optimal"
            or np.abs(lp.shortfall).max(initial=0.0) * MONEY_SCALE > _SLACK_TOL
        ):
            return None, lp.bound if math.isfinite(lp.bound) else math.inf
        reduced = reduced_values(lp.problem, lp.duals)
        loss = reduced.max(axis=1)[:, None] - reduced
        shell = Outcome("optimal", lp.shares, lp.y, lp.objective, lp.bound, lp.duals, lp.shortfall)
        repaired = _repair(lp.problem, shell, loss, self.deadline, max_free, combo, mip_gap)
        found = None
        if repaired is not None:
            found = _Plan(
                lp.states, lp.open, repaired[0], repaired[1], lp.fixed_value + repaired[2]
            )
        bound = lp.bound
        self.say(
            f"blocks {combo}: LP bound {bound:,.2f}, repaired plan "
            f"{found.value if found else math.nan:,.2f}"
        )
        value = max(found.value if found else -math.inf, best.value if best else -math.inf)
        if (
            math.isfinite(value)
            and _gap(value, bound) > mip_gap
            and time.perf_counter() < self.deadline
        ):
            threshold = bound - value + 1e-6
            _, counts = self.step(_fixing, None, lp.duals, threshold, False)
            count = sum(r.count for r in counts)
            self.say(f"blocks {combo}: reduced-cost fixing leaves {count:,} loans open")
            if count <= max_free:
                exact = self.exact(lp.duals, threshold, combo, mip_gap)
                if exact is not None:
                    plan, exact_bound = exact
                    if found is None or plan.value > found.value:
                        found = plan
                    bound = min(bound, max(exact_bound, value))
        return found, bound

    def exact(
        self, duals: np.ndarray, threshold: float, combo: np.ndarray | None, mip_gap: float
    ) -> tuple[_Plan, float] | None:
        """MILP over the loans reduced-cost fixing leaves open, the rest at their best channel."""
        states, reports = self.step(_fixing, None, duals, threshold, True)
        open_ = _Open()
        open_.add(reports)
        self.opened = max(self.opened, open_.size)
        fixed_usage = np.sum([r.usage for r in reports], axis=0)
        fixed_value = float(sum(r.value for r in reports))
        layout = self.layout
        problem = _assemble(
            layout, open_.pieces, layout.lower - fixed_usage, layout.upper - fixed_usage
        )
        allowed = (
            np.concatenate([p.allowed for p in open_.pieces if p.allowed is not None])
            if open_.pieces
            else np.zeros(problem.eligible.shape, dtype=bool)
        )
        restricted = restricted_model(
            problem,
            np.ones(problem.n_loans, dtype=bool),
            None,
            allowed=allowed,
            integer=True,
            elastic=False,
            fix_blocks=combo,
        )
        sol = run_highs(
            restricted.model,
            time_limit=self.left(),
            mip_gap=1e-9,
            abs_gap=0.5 * mip_gap * (abs(fixed_value) + 1.0) * MONEY_SCALE,
        )
        if not sol.x.size:
            return None
        x = np.round(sol.x)
        shares = shares_from(problem, restricted, x, np.zeros(problem.eligible.shape))
        y = x[restricted.n_x : restricted.n_x + restricted.n_blocks]
        value = fixed_value + plan_value(problem, shares, y)
        bound = -sol.bound / MONEY_SCALE + fixed_value if math.isfinite(sol.bound) else math.inf
        return _Plan(states, open_, shares, y, value), bound


def _conflicts(layout: _Layout, shortfall: np.ndarray) -> pd.DataFrame:
    """The rules the elastic restricted LP had to miss, in the words of :mod:`diagnose`."""
    found = []
    short = np.abs(shortfall)
    for r in np.flatnonzero(short > np.where(np.array(layout.unit) == "CNY", 0.01, 1e-6)):
        unit = layout.unit[r]
        amount = _m(short[r]) if unit == "CNY" else f"{short[r]:,.1f} loans"
        text = _WORDS.get(layout.rule[r], layout.names[r] + " misses by {x}").format(
            x=amount, branch=layout.branch[r]
        )
        limit = layout.lower[r] if math.isfinite(layout.lower[r]) else layout.upper[r]
        found.append(
            _conflict(
                layout.rule[r], abs(limit) + short[r], abs(limit), unit, text, layout.branch[r]
            )
        )
    return pd.DataFrame(found, columns=CONFLICT_COLUMNS)


# --------------------------------------------------------------------------- public API


def _policy(policy: Policy | TableSource | dict[str, object] | None) -> Policy | None:
    return None if policy is None else load_policy(policy)


def _branches(branches: TableSource | None, log: ProblemLog) -> tuple[pd.DataFrame | None, str]:
    if branches is None:
        return None, "branches"
    return read_branches(branches, log), source_name(branches, "branches")


class _Session:
    """Loading, validating and valuing the partitions on the workers (shared by the API)."""

    def __init__(
        self,
        client: Any,
        path: str | os.PathLike[str],
        storage: Mapping[str, Any] | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.storage = storage
        self.data = _list_parquet(path, storage)
        self.progress = progress
        self.parts: list[Any] = []
        self.checked: list[_Checked] = []
        self.seconds: dict[str, float] = {}

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def validate(self, branches: TableSource | None) -> pd.DataFrame:
        """Validate every partition and the totals across them; one error for all problems."""
        t0 = time.perf_counter()
        c = self.client
        log = ProblemLog("")
        table, branches_file = _branches(branches, log)
        self.branches = table
        self.parts = [
            c.submit(_load, i, url, name, table, branches_file, self.storage, pure=False)
            for i, (url, name) in enumerate(zip(self.data.urls, self.data.names, strict=True))
        ]
        self.checked = list(c.gather([c.submit(_checked, p, pure=False) for p in self.parts]))
        problems = [log.frame(), *(ch.problems for ch in self.checked), self._duplicates()]
        if table is not None:
            problems.append(self._branch_totals(table, branches_file))
        found = (
            pd.concat([p for p in problems if len(p)], ignore_index=True)
            if any(len(p) for p in problems)
            else pd.DataFrame(columns=PROBLEM_COLUMNS)
        )
        self.seconds["validate"] = time.perf_counter() - t0
        if len(found):
            raise PortfolioValidationError(found, "partitioned portfolio validation failed")
        self.say(
            f"validated {self.n_loans:,} loans in {len(self.parts)} partitions "
            f"({self.seconds['validate']:.2f} s)"
        )
        return self.frame()

    @property
    def n_loans(self) -> int:
        return sum(ch.loans for ch in self.checked)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "file": [ch.name for ch in self.checked],
                "loans": [ch.loans for ch in self.checked],
                "balance": [ch.balance for ch in self.checked],
            }
        )

    def _duplicates(self) -> pd.DataFrame:
        c, n = self.client, len(self.parts)
        if n < 2:
            return pd.DataFrame(columns=PROBLEM_COLUMNS)
        maps = [c.submit(_id_buckets, p, n, pure=False) for p in self.parts]
        reduced = [
            c.submit(_duplicates, *[c.submit(_pick, f, b, pure=False) for f in maps], pure=False)
            for b in range(n)
        ]
        found = [f for f in c.gather(reduced) if len(f)]
        return (
            pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=PROBLEM_COLUMNS)
        )

    def _branch_totals(self, table: pd.DataFrame, branches_file: str) -> pd.DataFrame:
        """Each branch's inclusive NPL summed over every partition against its inclusive loans."""
        npl = np.sum([ch.npl for ch in self.checked], axis=0)
        have = table["inclusive_loans"].to_numpy(dtype=float)
        log = ProblemLog(branches_file, table["branch"].to_numpy(dtype=object), "branch")
        log.flag(
            have < npl - 0.005,
            "inclusive_loans",
            have,
            np.array(
                [
                    f"below the branch's inclusive NPL balance CNY {x:,.2f} over every partition"
                    for x in npl
                ],
                dtype=object,
            ),
            "inclusive_loans >= the inclusive NPL balance (it includes performing loans)",
        )
        return log.frame()

    def value(
        self,
        policy: Policy | None,
        options: str | os.PathLike[str] | None,
        assumptions: ValuationAssumptions | Mapping[str, Any] | None,
    ) -> None:
        """Attach each partition's options: read from ``options`` or valued on the worker."""
        t0 = time.perf_counter()
        c = self.client
        if options is not None:
            side = _list_parquet(options, self.storage)
            where = dict(zip(side.names, side.urls, strict=True))
            absent = [name for name in self.data.names if name not in where]
            if absent:
                log = ProblemLog(str(options))
                for name in absent:
                    log.note(
                        "",
                        f"no options file {name} for the loans file of that name",
                        "one options file per loans file, with the same name",
                    )
                raise PortfolioValidationError(log.frame(), "options validation failed")
            urls: list[str | None] = [where[name] for name in self.data.names]
        else:
            urls = [None] * len(self.parts)
        self.parts = [
            c.submit(
                _with_options,
                p,
                urls[i],
                self.data.names[i],
                policy,
                assumptions,
                self.storage,
                pure=False,
            )
            for i, p in enumerate(self.parts)
        ]
        checked = c.gather([c.submit(_checked, p, pure=False) for p in self.parts])
        found = [ch.problems for ch in checked if len(ch.problems)]
        self.seconds["value"] = time.perf_counter() - t0
        if found:
            raise PortfolioValidationError(
                pd.concat(found, ignore_index=True), "options validation failed"
            )
        self.say(
            f"{'read' if options is not None else 'valued'} the options "
            f"({self.seconds['value']:.2f} s)"
        )


def validate_partitioned(
    path: str | os.PathLike[str],
    branches: TableSource | None = None,
    client: Any = None,
    options: str | os.PathLike[str] | None = None,
    n_workers: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Validate every partition of a Parquet loan dataset; one error names every problem.

    Each worker checks its partitions as :func:`~npl_disposal.read_portfolio`
    does; across partitions, duplicate loan ids (found by a hash shuffle, so no
    process sees every id) and each branch's inclusive NPL summed over all
    partitions against its ``inclusive_loans``. ``options`` (a dataset with the
    same file names) is validated against its partition too. Raises one
    :class:`~npl_disposal.PortfolioValidationError` whose problems name the
    partition file, row, loan_id and column; returns per file its loans and
    balance.
    """
    data = _list_parquet(path, storage_options)
    with _connect(client, n_workers, len(data.urls)) as c:
        session = _Session(c, path, storage_options)
        out = session.validate(branches)
        if options is not None:
            session.value(None, options, None)
        return out


def value_partitioned(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    policy: Policy | TableSource | dict[str, object] | None = None,
    assumptions: ValuationAssumptions | Mapping[str, Any] | None = None,
    client: Any = None,
    n_workers: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Validate and value every partition; write the options table partitioned to ``out``.

    Each worker runs :func:`~npl_disposal.value_options` on its partitions (with
    ``assumptions``, or the policy's ``[valuation]`` section) and writes one
    options file per loans file, of the same name: the layout that
    :func:`solve_partitioned` reads with ``options=out``. All or nothing.
    Returns per file its loans and option rows.
    """
    pol = _policy(policy)
    data = _list_parquet(path, storage_options)
    target = _Output(out, storage_options)
    try:
        with _connect(client, n_workers, len(data.urls)) as c:
            session = _Session(c, path, storage_options)
            summary = session.validate(None)
            session.value(pol, None, assumptions)
            counts = c.gather(
                [
                    c.submit(_write_options, p, target.url(name), storage_options, pure=False)
                    for p, name in zip(session.parts, data.names, strict=True)
                ]
            )
    except BaseException:
        target.abort()
        raise
    target.commit()
    return summary.assign(options=counts)


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
    :func:`~npl_disposal.decomposition.solve_fractional`; ``max_free`` bounds the
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
            "machine (npl_disposal.solve) or leave weight and max_fall out"
        )
    if policy.channels:
        raise NotImplementedError(
            "[channels.NAME] budgets are not yet solved over partitions (a partition may not "
            "offer the channel, and an on/off channel's bound is its whole offered balance); "
            "solve on one machine (npl_disposal.solve)"
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

"""One partition on its worker: loaded, validated, valued, its problem built."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.distributed._storage import _read_parquet, _write_parquet
from npl_disposal.exceptions import PROBLEM_COLUMNS, PortfolioValidationError
from npl_disposal.io.options import read_options
from npl_disposal.io.portfolio import Portfolio, inclusive_npl, read_loans
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import OPTION_COLUMNS
from npl_disposal.model.problem import AllocationProblem, build_part
from npl_disposal.model.wage_pool import WagePoolFigures
from npl_disposal.policy import Policy
from npl_disposal.valuation import ValuationAssumptions, value_options


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
        npl = inclusive_npl(valid, list(known))
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


def _build(part: _Part, policy: Policy, wage_pool: WagePoolFigures | None = None) -> _Part:
    """The partition's own problem (worker side); every tolerance row it touches is kept.

    ``wage_pool`` gives the whole portfolio's per-branch wage-pool figures (see
    :mod:`npl_disposal.distributed._context`).
    """
    if part.options is None:
        raise ValueError(f"{part.name}: no options; validate and value the partition first")
    zero = part.branches.assign(inclusive_loans=0.0) if part.branches is not None else None
    problem = build_part(Portfolio(part.loans, zero, part.name), policy, part.options,
                         wage_pool=wage_pool)  # fmt: skip
    return replace(part, problem=problem)

"""Validating and valuing the partitions on the workers: validate and value entry points."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from npl_disposal.distributed._cluster import _connect, _pick
from npl_disposal.distributed._partitions import (
    _Checked,
    _checked,
    _duplicates,
    _id_buckets,
    _load,
    _with_options,
    _write_options,
)
from npl_disposal.distributed._storage import _list_parquet, _Output
from npl_disposal.exceptions import PROBLEM_COLUMNS, PortfolioValidationError
from npl_disposal.io.portfolio import read_branches
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.tables import TableSource, source_name
from npl_disposal.policy import Policy, load_policy
from npl_disposal.valuation import ValuationAssumptions


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

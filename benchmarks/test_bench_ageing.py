"""Migration matrices: estimation from loan-month histories and portfolio projection.

Histories have ``n_loans`` loans x ``HISTORY_MONTHS`` months: the 1M-loan size is the
10M loan-month target of the ageing layer (estimate in <= 10 s on 2 cores).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic
from npl_disposal import read_portfolio
from npl_disposal.datasets import make_history
from npl_disposal.valuation import EXAMPLE_MATRIX, MigrationEstimator, project

HISTORY_MONTHS = 10
LAYOUTS = ("snapshots", "int_ids", "shuffled")


@lru_cache(maxsize=1)
def history(n_loans: int, layout: str = "snapshots") -> pd.DataFrame:
    """Monthly snapshots stacked (text ids ``L0000001``), integer ids, or rows shuffled."""
    frame = make_history(n_loans, HISTORY_MONTHS, seed=1)
    if layout == "int_ids":
        return frame.assign(loan_id=np.tile(np.arange(n_loans) * 7 + 10**9, HISTORY_MONTHS))
    if layout == "shuffled":
        order = np.random.default_rng(2).permutation(len(frame))
        return frame.take(order).reset_index(drop=True)
    return frame


def fit(frame: pd.DataFrame | Path, method: str = "cohort") -> MigrationEstimator:
    return MigrationEstimator(method=method).fit(frame)  # type: ignore[arg-type]


@pytest.mark.sizes("data")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_estimate_cohort(benchmark, n_loans: int, layout: str) -> None:
    data = history(n_loans, layout)
    est = benchmark.pedantic(fit, args=(data,), rounds=3, iterations=1)
    assert est.n_records_ == n_loans * HISTORY_MONTHS
    assert est.n_transitions_ == n_loans * (HISTORY_MONTHS - 1)


@pytest.mark.sizes("data")
def test_estimate_aalen_johansen(benchmark, n_loans: int) -> None:
    data = history(n_loans)
    est = benchmark.pedantic(fit, args=(data, "aalen_johansen"), rounds=3, iterations=1)
    assert est.generator_ is not None


@pytest.mark.sizes("data")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_estimate_from_file(benchmark, tmp_path_factory, n_loans: int, fmt: str) -> None:
    """What ``npl-disposal migration HISTORY`` does: read the file, validate, estimate."""
    data = history(n_loans)
    path = tmp_path_factory.mktemp("history") / f"history.{fmt}"
    if fmt == "csv":
        pa_csv = pytest.importorskip("pyarrow.csv")
        pa = pytest.importorskip("pyarrow")
        pa_csv.write_csv(pa.Table.from_pandas(data.astype({"state": str})), path)
    else:
        pytest.importorskip("pyarrow")
        data.to_parquet(path)
    est = benchmark.pedantic(fit, args=(path,), rounds=1, iterations=1)
    assert est.n_records_ == n_loans * HISTORY_MONTHS


@pytest.mark.sizes("large")
def test_make_history(benchmark, n_loans: int) -> None:
    frame = benchmark.pedantic(
        make_history, args=(n_loans, HISTORY_MONTHS, 5), rounds=1, iterations=1
    )
    assert len(frame) == n_loans * HISTORY_MONTHS


def test_project_portfolio(benchmark, n_loans: int) -> None:
    data = synthetic(n_loans)
    portfolio = read_portfolio(data.loans, data.branches)
    out = benchmark(project, portfolio, EXAMPLE_MATRIX, 12)
    assert len(out) == n_loans
    assert np.allclose(out.filter(like="p_").sum(axis=1), 1.0)

"""Loading, validating and generating portfolios."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import branches_for, synthetic
from npl_disposal import read_portfolio
from npl_disposal.datasets import make_portfolio


@pytest.mark.sizes("data")
def test_validate_frame(benchmark, n_loans: int) -> None:
    data = synthetic(n_loans)
    pf = benchmark(read_portfolio, data.loans, data.branches)
    assert pf.n_loans == n_loans


@pytest.mark.sizes("data")
def test_load_and_validate_csv(benchmark, tmp_path_factory, n_loans: int) -> None:
    data = synthetic(n_loans)
    folder: Path = tmp_path_factory.mktemp("csv")
    data.loans.to_csv(folder / "portfolio.csv", index=False)
    data.branches.to_csv(folder / "branches.csv", index=False)
    pf = benchmark(read_portfolio, folder / "portfolio.csv", folder / "branches.csv")
    assert pf.n_loans == n_loans


@pytest.mark.sizes("data")
def test_load_and_validate_parquet(benchmark, tmp_path_factory, n_loans: int) -> None:
    pytest.importorskip("pyarrow")
    data = synthetic(n_loans)
    folder: Path = tmp_path_factory.mktemp("parquet")
    data.loans.to_parquet(folder / "portfolio.parquet")
    data.branches.to_parquet(folder / "branches.parquet")
    pf = benchmark(read_portfolio, folder / "portfolio.parquet", folder / "branches.parquet")
    assert pf.n_loans == n_loans


@pytest.mark.sizes("large")
def test_generate(benchmark, n_loans: int) -> None:
    data = benchmark.pedantic(
        make_portfolio, args=(n_loans, branches_for(n_loans), 3), rounds=1, iterations=1
    )
    assert len(data.loans) == n_loans

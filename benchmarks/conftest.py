"""Benchmark registry: sizes are declared once here.

Run the full benchmarks with ``pytest benchmarks``; with ``--benchmark-disable``
(the CI smoke pass) every benchmark runs once at the smoke sizes only.
Set ``NPL_BENCH_SIZES=10000,100000`` to choose sizes yourself.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pytest

from npl_disposal.datasets import SyntheticPortfolio, make_portfolio

#: Loans per benchmark size; branches scale with size up to 100.
FULL_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (2_000,)


def _branches(n_loans: int) -> int:
    return min(100, max(8, n_loans // 1000))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "n_loans" not in metafunc.fixturenames:
        return
    chosen = os.environ.get("NPL_BENCH_SIZES")
    if chosen:
        sizes = tuple(int(s) for s in chosen.split(","))
    elif metafunc.config.getoption("benchmark_disable", False):
        sizes = SMOKE_SIZES
    else:
        marker = metafunc.definition.get_closest_marker("sizes")
        sizes = tuple(marker.args) if marker else FULL_SIZES
    metafunc.parametrize("n_loans", sizes, ids=[f"{n:_}" for n in sizes])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sizes(*n): loan counts this benchmark runs at")


@lru_cache(maxsize=2)
def synthetic(n_loans: int) -> SyntheticPortfolio:
    """The synthetic portfolio of a benchmark size (cached across benchmarks)."""
    return make_portfolio(n_loans, _branches(n_loans), seed=1)

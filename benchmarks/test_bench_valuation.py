"""Valuing every channel of every loan (the options table), vectorised over loans.

``test_value_schedule`` values the same channels at each of a year's quarterly disposal
dates (``value_schedule``) and records the process's peak resident memory during it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from benchtools import peak_rss_mb, reset_peak, rss_mb
from conftest import synthetic
from npl_disposal import Portfolio, read_portfolio
from npl_disposal.io.schema import STANDARD_CHANNELS
from npl_disposal.valuation import value_options, value_schedule

#: Periods of the schedule benchmark: a year of quarters.
SCHEDULE_PERIODS = 4


@lru_cache(maxsize=1)
def portfolio(n_loans: int) -> Portfolio:
    """The validated synthetic portfolio of a benchmark size (validation is not timed)."""
    data = synthetic(n_loans)
    return read_portfolio(data.loans, data.branches)


def check(options, pf: Portfolio) -> None:
    retain = (options["channel"] == "retain").to_numpy()
    assert retain.sum() == pf.n_loans
    assert set(options["channel"].unique()) == set(STANDARD_CHANNELS)
    assert np.isfinite(options["value"].to_numpy()).all()


@pytest.mark.sizes("data")
def test_value_options(benchmark, n_loans: int) -> None:
    pf = portfolio(n_loans)
    options = benchmark(value_options, pf)
    check(options, pf)


@pytest.mark.sizes("data")
def test_value_options_fractional_ages(benchmark, n_loans: int) -> None:
    """Ages between whole months: each loan is valued at two ages and interpolated."""
    pf = portfolio(n_loans)
    loans = pf.loans.assign(npl_age_months=pf.loans["npl_age_months"] + 0.5)
    shifted = Portfolio(loans, pf.branches, pf.source)
    options = benchmark(value_options, shifted)
    check(options, shifted)


@pytest.mark.sizes("data")
def test_value_schedule(benchmark, n_loans: int) -> None:
    """Every channel of every loan at the start of each quarter of a year."""
    pf = portfolio(n_loans)
    before = rss_mb()
    reset_peak()
    schedule = benchmark.pedantic(
        value_schedule, args=(pf, SCHEDULE_PERIODS), rounds=3, iterations=1
    )
    benchmark.extra_info.update(
        n_loans=n_loans,
        periods=SCHEDULE_PERIODS,
        options=len(schedule.options),
        rss_before_mb=before,
        peak_rss_mb=peak_rss_mb(),
    )
    check(schedule.options, pf)
    assert set(schedule.options["period"]) == set(range(1, SCHEDULE_PERIODS + 2))

"""Synthetic loan-month histories of a known migration chain, for estimation and tests."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from npl_disposal.exceptions import MigrationMatrixError
from npl_disposal.valuation.migration import EXAMPLE_MATRIX, MigrationMatrix

__all__ = ["make_history"]

def make_history(
    n_loans: int,
    n_months: int,
    seed: int | None = 0,
    matrix: MigrationMatrix | None = None,
    initial: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A synthetic loan-month history of a known chain (default: the example matrix).

    The default chain is :data:`~npl_disposal.valuation.migration.EXAMPLE_MATRIX`.

    Every loan has one record per month ``period = 0 .. n_months - 1``, also after it
    is absorbed; rows are stacked month by month (as monthly snapshots are). Start
    states are drawn from ``initial`` (default: the non-absorbing states, weighted
    towards the NPL classes for the example matrix, uniform otherwise); each month
    draws all loans' next states at once from the cumulative row probabilities.
    ``loan_id`` is text (``L0000000``), ``state`` a categorical of the matrix's states.
    """
    if n_loans < 0 or n_months < 0:
        raise MigrationMatrixError("n_loans and n_months must be >= 0")
    chain = EXAMPLE_MATRIX if matrix is None else matrix
    step = chain.matrix if chain.months == 1 else chain.to_period(1).matrix
    if initial is None:
        weights = np.array([0.0 if s in chain.absorbing else 1.0 for s in chain.states])
        if chain is EXAMPLE_MATRIX:
            weights = np.array([0.2, 0.2, 0.25, 0.2, 0.15, 0.0, 0.0, 0.0])
        if weights.sum() == 0:
            weights = np.ones(chain.n_states)
    else:
        weights = chain.propagate(initial, 0).to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(step, axis=1)
    cumulative[:, -1] = 1.0
    start_cum = np.cumsum(weights / weights.sum())
    start_cum[-1] = 1.0
    states = np.empty((n_months, n_loans), dtype=np.int8)
    if n_months:
        states[0] = np.searchsorted(start_cum, 1.0 - rng.random(n_loans), side="left")
    for t in range(1, n_months):
        draw = 1.0 - rng.random(n_loans)  # in (0, 1]: zero-probability states are never hit
        states[t] = (cumulative[states[t - 1]] < draw[:, None]).sum(axis=1)
    ids = pd.array(np.char.add("L", np.char.zfill(np.arange(n_loans).astype(str), 7)), dtype="str")
    return pd.DataFrame(
        {
            "loan_id": ids.take(np.tile(np.arange(n_loans), n_months)),
            "period": np.repeat(np.arange(n_months, dtype=np.int64), n_loans),
            "state": pd.Categorical.from_codes(states.ravel(), categories=list(chain.states)),
        }
    )

"""Estimating a monthly migration matrix from a loan-month history.

>>> from npl_disposal.datasets import make_history
>>> from npl_disposal.valuation import MigrationEstimator
>>> est = MigrationEstimator().fit(make_history(2_000, 24, seed=1))
>>> est.matrix_.annual().frame().round(3)  # doctest: +SKIP

A history's ``period`` is an integer month number (for ``yyyymm`` data use
``year * 12 + month``), and consecutive numbers are consecutive months.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.exceptions import MigrationMatrixError, MigrationWarning, NotFittedError
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.tables import TableSource
from npl_disposal.valuation.history import encode_history
from npl_disposal.valuation.migration import MigrationMatrix, project
from npl_disposal.valuation.states import canonical_state

__all__ = ["MigrationEstimator", "estimate_migration"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
Method = Literal["cohort", "aalen_johansen"]


class MigrationEstimator:
    """Estimate a monthly migration matrix from a loan-month history, then project.

    Parameters
    ----------
    method
        ``"cohort"`` (default; the ``npl-disposal migration`` estimate): pair each
        loan's record at month ``t`` with its record at ``t + 1`` and set ``p_ij = N_ij
        / N_i``. ``"aalen_johansen"``: the duration (continuous-time) estimator of a
        time-homogeneous Markov chain; see :meth:`fit`.
    states
        The states, in the order of the matrix; aliases accepted. ``None``: the states of
        :data:`STATES` that occur in the history. A history state outside the list is an
        error.
    absorbing
        States forced absorbing. ``None``: those of :data:`ABSORBING_STATES` in ``states``.
        A loan whose record follows one in an absorbing state with another state is an
        error; if written-off loans are later recovered in your data (账销案存), leave
        ``written_off`` out of ``absorbing``.
    on_unobserved
        A non-absorbing state never seen at month ``t`` with a record at ``t + 1`` has no
        estimate: ``"warn"`` (default) keeps loans there (identity row) and issues a
        :class:`MigrationWarning`; ``"raise"`` raises :class:`MigrationMatrixError`.

    Attributes set by :meth:`fit`: ``matrix_`` (one-month :class:`MigrationMatrix`),
    ``counts_`` (transition counts, from-state x to-state), ``exposure_`` (per from-state:
    loan-months at risk for the cohort method, months at risk for Aalen-Johansen),
    ``generator_`` (Aalen-Johansen only: transition intensities per month, else ``None``),
    ``unobserved_`` (states given identity rows), ``n_loans_``, ``n_records_``,
    ``n_transitions_`` and ``n_gaps_`` (pairs of records more than a month apart, skipped).

    """

    matrix_: MigrationMatrix
    counts_: pd.DataFrame
    exposure_: pd.Series
    generator_: pd.DataFrame | None
    unobserved_: tuple[str, ...]
    n_loans_: int
    n_records_: int
    n_transitions_: int
    n_gaps_: int

    def __init__(
        self,
        method: Method = "cohort",
        states: Sequence[str] | None = None,
        absorbing: Sequence[str] | None = None,
        on_unobserved: Literal["warn", "raise"] = "warn",
    ) -> None:
        self.method = method
        self.states = states
        self.absorbing = absorbing
        self.on_unobserved = on_unobserved

    def __repr__(self) -> str:
        args = [f"method={self.method!r}"]
        if self.states is not None:
            args.append(f"states={tuple(self.states)!r}")
        if self.absorbing is not None:
            args.append(f"absorbing={tuple(self.absorbing)!r}")
        if self.on_unobserved != "warn":
            args.append(f"on_unobserved={self.on_unobserved!r}")
        return f"MigrationEstimator({', '.join(args)})"

    def fit(self, history: TableSource) -> MigrationEstimator:
        """Estimate the one-month matrix from ``history`` and return ``self``.

        ``history`` is a DataFrame or the path of a CSV / Parquet file with columns
        ``loan_id, period, state`` (aliases such as 贷款编号 / 期数 / 五级分类 accepted),
        one row per loan and month; ``period`` is an integer month number. Every problem
        (missing column, missing or non-integer period, unknown state, duplicate
        ``(loan_id, period)``, a loan leaving an absorbing state) is collected and raised
        as one :class:`~npl_disposal.PortfolioValidationError` naming row, loan_id and column.

        Only records of the same loan in consecutive months are paired; a gap in a
        loan's history is skipped, not bridged. Absorbing states get unit rows.

        Cohort: ``p_ij = N_ij / N_i`` with ``N_ij`` the pairs (i at t, j at t + 1).

        Aalen-Johansen, under these assumptions: the chain is Markov and
        time-homogeneous (constant intensities over the whole history), a loan makes at
        most one transition between two monthly snapshots, and that transition happens
        mid-month. The months at risk in state i are ``E_i = N_ii + (N_i. - N_ii) / 2 +
        (N_.i - N_ii) / 2``; the Nelson-Aalen intensities are ``q_ij = N_ij / E_i``
        (per month, ``q_ii = -sum_j q_ij``), and the one-month matrix is their
        product-integral over one month, which for constant intensities is the matrix
        exponential ``exp(Q)``. It gives small positive probabilities to two-step moves
        within a month (i -> j -> k) that the cohort estimator sets to 0.
        """
        if self.method not in ("cohort", "aalen_johansen"):
            raise MigrationMatrixError(
                f"method must be 'cohort' or 'aalen_johansen'; got {self.method!r}"
            )
        if self.on_unobserved not in ("warn", "raise"):
            raise MigrationMatrixError(
                f"on_unobserved must be 'warn' or 'raise'; got {self.on_unobserved!r}"
            )
        data = encode_history(history, self.states, self.absorbing)
        n_states = len(data.states)
        pair = data.from_codes.astype(np.int64) * n_states + data.to_codes
        flat = np.bincount(pair, minlength=n_states * n_states)
        counts = flat.reshape(n_states, n_states).astype(np.int64)
        at_risk = counts.sum(axis=1)
        unobserved = (at_risk == 0) & ~data.absorbing
        names = tuple(s for s, u in zip(data.states, unobserved, strict=True) if u)
        if names:
            message = (
                f"no loan is observed in {', '.join(names)} with a record one month later, "
                "so its migration cannot be estimated"
            )
            if self.on_unobserved == "raise":
                raise MigrationMatrixError(
                    message + "; add history for it, or leave it out with states=..."
                )
            warnings.warn(
                message + "; its row is set to stay put (identity). Add history for it, or "
                "leave it out with states=...",
                MigrationWarning,
                stacklevel=2,
            )
        generator: FloatArray | None = None
        exposure: NDArray[np.float64] | NDArray[np.int64]
        if self.method == "cohort":
            probs, exposure = _cohort(counts, data.absorbing)
        else:
            probs, generator, exposure = _aalen_johansen(counts, data.absorbing)
        index = pd.Index(data.states, name="from_state")
        columns = pd.Index(data.states, name="to_state")
        self.matrix_ = MigrationMatrix(probs, data.states, 1)
        self.counts_ = pd.DataFrame(counts, index=index, columns=columns)
        self.exposure_ = pd.Series(exposure, index=index, name="exposure")
        self.generator_ = (
            None if generator is None else pd.DataFrame(generator, index=index, columns=columns)
        )
        self.unobserved_ = names
        self.n_loans_ = data.n_loans
        self.n_records_ = data.n_records
        self.n_transitions_ = int(data.from_codes.size)
        self.n_gaps_ = data.n_gaps
        return self

    def project(
        self,
        portfolio_or_state_probabilities: Portfolio | TableSource | pd.Series | Mapping[str, float],
        months: float,
    ) -> pd.DataFrame | pd.Series:
        """Project ``months`` months ahead with the fitted one-month matrix.

        A portfolio (a :class:`~npl_disposal.Portfolio`, or a loan table / path read with
        :func:`~npl_disposal.read_portfolio`) gives the per-loan table of :func:`project`.
        State probabilities or amounts (a mapping or Series by state, or a DataFrame whose
        columns are all states) give the distribution after ``months``
        (:meth:`MigrationMatrix.propagate`).
        """
        if not hasattr(self, "matrix_"):
            raise NotFittedError(
                "this MigrationEstimator is not fitted yet; call .fit(history) first"
            )
        start = portfolio_or_state_probabilities
        if isinstance(start, (pd.Series, Mapping)):
            return self.matrix_.propagate(start, months)
        if isinstance(start, pd.DataFrame) and _all_states(start.columns, self.matrix_.states):
            return self.matrix_.propagate(start, months)
        return project(start, self.matrix_, months)


def _all_states(columns: pd.Index, states: tuple[str, ...]) -> bool:
    return len(columns) > 0 and all(canonical_state(c) in states for c in columns)


def _cohort(counts: IntArray, absorbing: BoolArray) -> tuple[FloatArray, IntArray]:
    at_risk = counts.sum(axis=1)
    probs = np.eye(counts.shape[0])
    seen = (at_risk > 0) & ~absorbing
    probs[seen] = counts[seen] / at_risk[seen, None]
    return probs, at_risk


def _aalen_johansen(
    counts: IntArray, absorbing: BoolArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    n = counts.astype(np.float64)
    stay = np.diag(n)
    exposure = stay + 0.5 * (n.sum(axis=1) - stay) + 0.5 * (n.sum(axis=0) - stay)
    rates = np.zeros_like(n)
    active = (exposure > 0) & ~absorbing
    rates[active] = n[active] / exposure[active, None]
    np.fill_diagonal(rates, 0.0)
    np.fill_diagonal(rates, -rates.sum(axis=1))
    from scipy.linalg import expm  # imported when needed: scipy.linalg is slow to import

    probs = np.clip(expm(rates), 0.0, None)
    probs[absorbing] = np.eye(n.shape[0])[absorbing]
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, rates, exposure


def estimate_migration(
    history: TableSource,
    method: Method = "cohort",
    states: Sequence[str] | None = None,
) -> MigrationMatrix:
    """The one-month migration matrix of ``history`` (see :meth:`MigrationEstimator.fit`)."""
    return MigrationEstimator(method=method, states=states).fit(history).matrix_


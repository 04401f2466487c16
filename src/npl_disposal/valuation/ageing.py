"""Loan classes migrating over time: migration matrices, their estimation and projection.

A :class:`MigrationMatrix` holds the probabilities ``P[i, j]`` that a loan in state ``i``
is in state ``j`` one period (``months``) later. :class:`MigrationEstimator` estimates it
from a loan-month history (``loan_id, period, state``; DESIGN section 5) and projects a
portfolio forward; :func:`project` does the projection for any given matrix.

>>> from npl_disposal.valuation.ageing import MigrationEstimator, make_history
>>> est = MigrationEstimator().fit(make_history(2_000, 24, seed=1))
>>> est.matrix_.annual().frame().round(3)  # doctest: +SKIP

States (:data:`STATES`): the five-class loan classification (正常 / 关注 / 次级 / 可疑 /
损失; NPL = substandard + doubtful + loss) plus three absorbing exits: ``repaid``
(结清), ``recovered`` (收回: the bank recovered what it could and closed the loan) and
``written_off`` (核销). A loan that has reached an absorbing state never leaves it.

Time is in months throughout; a history's ``period`` is an integer month number
(for ``yyyymm`` data use ``year * 12 + month``), and consecutive numbers are consecutive
months.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.linalg import expm, fractional_matrix_power

from npl_disposal.exceptions import NplDisposalError
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.schema import LOAN_COLUMNS, NPL_CLASSES, Column
from npl_disposal.io.tables import ProblemLog, TableSource, check_headers, read_table, source_name

__all__ = [
    "ABSORBING_STATES",
    "DEFAULT_STATES",
    "EXAMPLE_MATRIX",
    "HISTORY_COLUMNS",
    "NPL_STATES",
    "STATES",
    "STATE_ALIASES",
    "MigrationEstimator",
    "MigrationMatrix",
    "MigrationMatrixError",
    "MigrationWarning",
    "NotFittedError",
    "canonical_state",
    "estimate_migration",
    "make_history",
    "project",
    "read_matrix",
    "write_matrix",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
MatrixSource = Union[pd.DataFrame, str, "os.PathLike[str]"]
Method = Literal["cohort", "aalen_johansen"]

# --- States ----------------------------------------------------------------------------------

#: Default state names, in the order rows and columns are shown.
STATES: tuple[str, ...] = (
    "normal",
    "special_mention",
    "substandard",
    "doubtful",
    "loss",
    "repaid",
    "recovered",
    "written_off",
)
#: States a loan never leaves (the loan is closed).
ABSORBING_STATES: tuple[str, ...] = ("repaid", "recovered", "written_off")
#: Non-performing classes (次级 + 可疑 + 损失).
NPL_STATES: tuple[str, ...] = NPL_CLASSES
#: States that count as default in :meth:`MigrationMatrix.default_probability`.
DEFAULT_STATES: tuple[str, ...] = (*NPL_STATES, "written_off")

#: Accepted spellings (lower case; spaces and hyphens read as ``_``) -> state name.
STATE_ALIASES: dict[str, str] = {
    **{name: name for name in STATES},
    "pass": "normal",
    "performing": "normal",
    "正常": "normal",
    "正常类": "normal",
    "special mention": "special_mention",
    "specialmention": "special_mention",
    "watch": "special_mention",
    "关注": "special_mention",
    "关注类": "special_mention",
    "sub_standard": "substandard",
    "次级": "substandard",
    "次级类": "substandard",
    "可疑": "doubtful",
    "可疑类": "doubtful",
    "损失": "loss",
    "损失类": "loss",
    "paid_off": "repaid",
    "paid": "repaid",
    "settled": "repaid",
    "结清": "repaid",
    "已结清": "repaid",
    "还清": "repaid",
    "已还清": "repaid",
    "recovery": "recovered",
    "收回": "recovered",
    "已收回": "recovered",
    "清收": "recovered",
    "已清收": "recovered",
    "write_off": "written_off",
    "writtenoff": "written_off",
    "charged_off": "written_off",
    "charge_off": "written_off",
    "核销": "written_off",
    "已核销": "written_off",
}

_ALLOWED_STATES = (
    "normal, special_mention, substandard, doubtful, loss, repaid, recovered, written_off "
    "(正常, 关注, 次级, 可疑, 损失, 结清, 收回, 核销)"
)

#: Columns of a loan-month history and the headers accepted for them.
HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("loan_id", "id", True, "identifier", LOAN_COLUMNS[0].aliases),
    Column(
        "period",
        "number",
        True,
        "integer month number",
        ("期数", "期次", "月份", "数据期", "统计期", "报告期", "month", "period_month"),
    ),
    Column(
        "state",
        "class",
        True,
        "loan state",
        ("状态", "贷款状态", "五级分类", "风险分类", "贷款分类", "分类", "class", "classification"),
    ),
)

_ROW_SUM_TOL = 1e-9
_ABSORBING_TOL = 1e-12


def _norm(name: object) -> str:
    text = str(name).replace("\ufeff", "").strip().lower()
    return text.replace(" ", "_").replace("-", "_") if text.isascii() else text


_ALIASES_NORMALISED = {_norm(k): v for k, v in STATE_ALIASES.items()}


def canonical_state(name: object) -> str:
    """The state name of an alias (``"次级"`` -> ``"substandard"``); other names stripped."""
    key = _norm(name)
    return _ALIASES_NORMALISED.get(key, str(name).strip())


# --- Errors ----------------------------------------------------------------------------------


class MigrationMatrixError(NplDisposalError, ValueError):
    """A migration matrix (or a request made of one) is invalid; the message says how to fix it."""


class NotFittedError(NplDisposalError, AttributeError):
    """The estimator is used before ``fit(history)`` was called."""


class MigrationWarning(UserWarning):
    """An estimate or a matrix root is usable but approximate; the message says why."""


# --- The matrix ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MigrationMatrix:
    """Migration probabilities over one period of ``months`` months.

    ``matrix[i, j]`` is the probability that a loan in ``states[i]`` is in ``states[j]``
    ``months`` months later; every row sums to 1. The array is stored read-only. State
    names given as aliases (``"次级"``, ``"Written off"``) are stored as the canonical
    names of :data:`STATES`; other names are kept as given.
    """

    matrix: FloatArray
    states: tuple[str, ...]
    months: float = 1

    def __post_init__(self) -> None:
        try:
            values = np.array(self.matrix, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MigrationMatrixError(
                f"the matrix must be a square array of numbers; got {type(self.matrix).__name__}"
            ) from exc
        states = tuple(canonical_state(s) for s in self.states)
        _validate(values, states, self.months)
        values.setflags(write=False)
        object.__setattr__(self, "matrix", values)
        object.__setattr__(self, "states", states)

    # -- basic views ------------------------------------------------------------------------

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.states)

    @property
    def absorbing(self) -> tuple[str, ...]:
        """States whose row is the unit row: a loan there stays there."""
        diag = np.diag(self.matrix)
        return tuple(s for s, d in zip(self.states, diag, strict=True) if d >= 1.0 - _ABSORBING_TOL)

    @property
    def transient(self) -> tuple[str, ...]:
        """States that are not absorbing."""
        absorbing = set(self.absorbing)
        return tuple(s for s in self.states if s not in absorbing)

    def index(self, state: str) -> int:
        """Row / column position of ``state`` (aliases accepted)."""
        name = canonical_state(state)
        if name not in self.states:
            raise MigrationMatrixError(
                f"state {state!r} is not in this matrix; its states are {', '.join(self.states)}"
            )
        return self.states.index(name)

    def frame(self) -> pd.DataFrame:
        """The matrix as a DataFrame: index ``from_state``, columns ``to_state``."""
        return pd.DataFrame(
            np.array(self.matrix),
            index=pd.Index(self.states, name="from_state"),
            columns=pd.Index(self.states, name="to_state"),
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, months: float = 1) -> MigrationMatrix:
        """Build from a DataFrame: from-states as index (or a ``from_state`` column).

        Columns are to-states; they must be the same states as the rows, in any order.
        """
        if "from_state" in frame.columns:
            frame = frame.set_index("from_state")
        rows = [canonical_state(s) for s in frame.index]
        cols = [canonical_state(c) for c in frame.columns]
        if len(set(cols)) != len(cols):
            raise MigrationMatrixError(
                f"to-state columns repeat a state: {', '.join(map(str, frame.columns))}; "
                "give each state one column"
            )
        if set(rows) != set(cols):
            missing = [s for s in rows if s not in cols]
            extra = [s for s in cols if s not in rows]
            raise MigrationMatrixError(
                "the to-state columns must be the from-states: "
                + (f"no column for {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"no row for {', '.join(extra)}" if extra else "")
            )
        ordered = frame.set_axis(cols, axis=1)[rows]
        try:
            values = ordered.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MigrationMatrixError(
                f"the matrix has entries that are not numbers: {exc}; give probabilities in [0, 1]"
            ) from exc
        return cls(values, tuple(rows), months)

    # -- changing the period ----------------------------------------------------------------

    def power(self, k: int) -> MigrationMatrix:
        """The ``k``-period matrix ``P^k`` (``k * months`` months), ``k`` an integer >= 0."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise MigrationMatrixError(
                f"power needs an integer k >= 0; got {k!r}. For other periods use to_period(months)"
            )
        result = np.linalg.matrix_power(np.array(self.matrix), int(k))
        result /= result.sum(axis=1, keepdims=True)
        return MigrationMatrix(result, self.states, self.months * int(k))

    def to_period(self, months: float) -> MigrationMatrix:
        """The matrix over ``months`` months.

        A whole multiple of :attr:`months` is the matrix power. Any other ratio ``r``
        (a fraction, such as annual to monthly, r = 1/12) uses the principal matrix
        power ``P^r`` (``scipy.linalg.fractional_matrix_power``). The root of a
        stochastic matrix need not be stochastic: it can have negative or complex
        entries (the chain is not embeddable). The standard regularisation is applied:
        take the real part, clip negative entries to 0, divide each row by its sum, and
        keep absorbing states absorbing. A :class:`MigrationWarning` says so when that
        changes an entry by more than 1e-8; the result is then an approximation whose
        ``1/r``-th power is close to, not equal to, the original.
        """
        months = _check_months(months, "months")
        if self.months <= 0:
            raise MigrationMatrixError(
                "this matrix covers 0 months (the identity); it cannot be rescaled"
            )
        ratio = months / self.months
        whole = round(ratio)
        if abs(ratio - whole) <= 1e-9 * max(1.0, ratio):
            out = self.power(int(whole))
            return MigrationMatrix(out.matrix, self.states, months)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            root = np.asarray(fractional_matrix_power(np.array(self.matrix), ratio))
        if not np.all(np.isfinite(root)):
            raise MigrationMatrixError(
                f"the {months:g}-month root of this {self.months:g}-month matrix does not exist "
                "numerically (the matrix is singular or nearly so); use a whole multiple of "
                f"{self.months:g} months, or estimate the matrix directly at {months:g} months"
            )
        imag = float(np.abs(np.imag(root)).max())
        real = np.real(root)
        negative = float(max(0.0, -real.min()))
        regular = np.clip(real, 0.0, None)
        absorbing = np.diag(self.matrix) >= 1.0 - _ABSORBING_TOL
        regular[absorbing] = 0.0
        regular[absorbing, absorbing] = 1.0
        sums = regular.sum(axis=1, keepdims=True)
        empty = sums[:, 0] <= 0
        regular[empty] = np.eye(self.n_states)[empty]
        regular /= regular.sum(axis=1, keepdims=True)
        if max(imag, negative) > 1e-8:
            warnings.warn(
                f"the {months:g}-month root of this {self.months:g}-month matrix is not a "
                f"stochastic matrix (entries down to {-negative:.2g}, imaginary parts up to "
                f"{imag:.2g}); negative entries were set to 0 and rows renormalised, so the "
                "result is approximate",
                MigrationWarning,
                stacklevel=2,
            )
        return MigrationMatrix(regular, self.states, months)

    def monthly(self) -> MigrationMatrix:
        """The one-month matrix (see :meth:`to_period` for roots)."""
        return self.to_period(1)

    def annual(self) -> MigrationMatrix:
        """The twelve-month matrix."""
        return self.to_period(12)

    # -- what a risk officer asks -------------------------------------------------------------

    def propagate(
        self, start: pd.Series | pd.DataFrame | Mapping[str, float], months: float
    ) -> pd.Series | pd.DataFrame:
        """Distribution over states after ``months`` months, from ``start``.

        ``start`` gives, per state, probabilities or amounts (balances in CNY yuan,
        loan counts): a mapping or Series indexed by state, or a DataFrame with one
        column per state (one row per segment). States left out count as 0. The total of
        each row is conserved. Returns the same shape, with every state of the matrix.
        """
        frame = (
            start.copy()
            if isinstance(start, pd.DataFrame)
            else pd.DataFrame([pd.Series(start, dtype="float64")])
        )
        names = [canonical_state(c) for c in frame.columns]
        unknown = [
            str(c) for c, n in zip(frame.columns, names, strict=True) if n not in self.states
        ]
        if unknown:
            raise MigrationMatrixError(
                f"unknown state(s) {', '.join(unknown)}; the matrix has {', '.join(self.states)}"
            )
        if len(set(names)) != len(names):
            raise MigrationMatrixError("a state is given twice (an alias and its name?)")
        try:
            values = frame.set_axis(names, axis=1).reindex(columns=list(self.states))
            dense = values.fillna(0.0).to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MigrationMatrixError(f"start values must be numbers: {exc}") from exc
        if not np.all(np.isfinite(dense)) or (dense < 0).any():
            raise MigrationMatrixError(
                "start values must be finite and >= 0 (probabilities or amounts per state)"
            )
        out = dense @ self.to_period(months).matrix
        result = pd.DataFrame(out, index=frame.index, columns=pd.Index(self.states, name="state"))
        return result if isinstance(start, pd.DataFrame) else result.iloc[0].rename(None)

    def default_probability(
        self, horizon_months: float = 12, default_states: Sequence[str] = DEFAULT_STATES
    ) -> pd.Series:
        """Probability, per starting state, of entering a default state within the horizon.

        A first-passage probability (a loan that defaults and cures still counts): the
        default states are made absorbing and the resulting matrix is taken over
        ``horizon_months``. ``default_states`` default to the NPL classes plus
        ``written_off``; those absent from the matrix are ignored. Starting in a default
        state gives 1.
        """
        targets = self._present(default_states, "default_states")
        stopped = np.array(self.matrix)
        stopped[targets] = 0.0
        stopped[targets, targets] = 1.0
        moved = MigrationMatrix(stopped, self.states, self.months).to_period(horizon_months)
        prob = moved.matrix[:, targets].sum(axis=1)
        return pd.Series(
            np.clip(prob, 0.0, 1.0),
            index=pd.Index(self.states, name="from_state"),
            name=f"default_probability_{horizon_months:g}m",
        )

    def absorption_probabilities(self, horizon_months: float | None = None) -> pd.DataFrame:
        """Probability of having reached each absorbing state, per starting state.

        Within ``horizon_months`` months, or eventually when ``None`` (from the
        fundamental matrix ``(I - Q)^-1 R``). Rows of states that can never be absorbed
        sum to less than 1 (to 0 when absorption is impossible).
        """
        absorbing = np.array([self.states.index(s) for s in self.absorbing], dtype=np.int64)
        cols = pd.Index(self.absorbing, name="to_state")
        index = pd.Index(self.states, name="from_state")
        if horizon_months is not None:
            pk = self.to_period(horizon_months).matrix
            return pd.DataFrame(pk[:, absorbing], index=index, columns=cols)
        reach = self._can_reach(np.isin(np.arange(self.n_states), absorbing))
        out = np.zeros((self.n_states, len(absorbing)))
        out[absorbing, np.arange(len(absorbing))] = 1.0
        inner = np.flatnonzero(reach & ~np.isin(np.arange(self.n_states), absorbing))
        if inner.size and absorbing.size:
            q = self.matrix[np.ix_(inner, inner)]
            r = self.matrix[np.ix_(inner, np.asarray(absorbing, dtype=np.int64))]
            out[inner] = np.linalg.solve(np.eye(inner.size) - q, r)
        return pd.DataFrame(np.clip(out, 0.0, 1.0), index=index, columns=cols)

    def expected_months_to_absorption(self) -> pd.Series:
        """Expected months until a loan reaches an absorbing state, per starting state.

        ``inf`` where absorption is not certain (a state from which some loans never
        reach an absorbing state), 0 for absorbing states.
        """
        is_abs = np.diag(self.matrix) >= 1.0 - _ABSORBING_TOL
        trapped = ~self._can_reach(is_abs)
        risky = self._can_reach(trapped)
        sure = np.flatnonzero(~risky & ~is_abs)
        out = np.full(self.n_states, np.inf)
        out[is_abs] = 0.0
        if sure.size:
            q = self.matrix[np.ix_(sure, sure)]
            steps = np.linalg.solve(np.eye(sure.size) - q, np.ones(sure.size))
            out[sure] = steps * self.months
        return pd.Series(
            out, index=pd.Index(self.states, name="from_state"), name="expected_months"
        )

    def outcomes(self, horizon_months: float = 12) -> pd.DataFrame:
        """Per starting state: stay probability, absorption within the horizon and eventually.

        Columns: ``stay`` (one period), ``<absorbing>_<h>m`` (reached within
        ``horizon_months``), ``<absorbing>_eventually`` and ``expected_months`` to
        absorption.
        """
        within = self.absorption_probabilities(horizon_months)
        ever = self.absorption_probabilities(None)
        parts = [
            pd.Series(np.diag(self.matrix), index=within.index, name="stay"),
            within.add_suffix(f"_{horizon_months:g}m"),
            ever.add_suffix("_eventually"),
            self.expected_months_to_absorption(),
        ]
        out = pd.concat(parts, axis=1)
        out.columns.name = None
        return out

    def summary(self, horizon_months: float = 12) -> str:
        """A short text a risk officer reads first: the matrix and where loans end up."""
        head = (
            f"Migration matrix over {self.months:g} month(s), {self.n_states} states; "
            f"absorbing: {', '.join(self.absorbing) or 'none'}"
        )
        table = (self.frame() * 100).round(2).to_string()
        lines = [head, "Probabilities in % (rows: from-state, columns: to-state):", table]
        if self.absorbing and self.transient:
            out = self.outcomes(horizon_months).loc[list(self.transient)]
            shown = out.drop(columns="stay")
            pct = [c for c in shown.columns if c != "expected_months"]
            shown[pct] = (shown[pct] * 100).round(1)
            shown["expected_months"] = shown["expected_months"].round(1)
            lines += [
                f"Where loans end up (% within {horizon_months:g} months and eventually; "
                "expected months to absorption):",
                shown.to_string(),
            ]
        return "\n".join(lines)

    # -- helpers ------------------------------------------------------------------------------

    def _present(self, names: Sequence[str], what: str) -> list[int]:
        if isinstance(names, str):
            names = (names,)
        wanted = [canonical_state(n) for n in names]
        present = [self.states.index(n) for n in dict.fromkeys(wanted) if n in self.states]
        if not present:
            raise MigrationMatrixError(
                f"none of the {what} ({', '.join(map(str, names))}) is a state of this matrix "
                f"({', '.join(self.states)})"
            )
        return present

    def _can_reach(self, target: BoolArray) -> BoolArray:
        """States with a positive-probability path into ``target`` (target included)."""
        step = self.matrix > 0
        reach = np.asarray(target, dtype=bool).copy()
        for _ in range(self.n_states):
            grown = reach | step[:, reach].any(axis=1)
            if (grown == reach).all():
                break
            reach = grown
        return reach


def _validate(values: FloatArray, states: tuple[str, ...], months: float) -> None:
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise MigrationMatrixError(
            f"the matrix must be square (states x states); got shape {values.shape}"
        )
    if values.shape[0] == 0:
        raise MigrationMatrixError("the matrix has no states; give at least one")
    if len(states) != values.shape[0]:
        raise MigrationMatrixError(
            f"the matrix is {values.shape[0]} x {values.shape[0]} but {len(states)} state names "
            "were given; give one name per row"
        )
    repeated = sorted({s for s in states if states.count(s) > 1})
    if repeated:
        raise MigrationMatrixError(
            f"state names must be unique; repeated: {', '.join(repeated)} "
            "(an alias and its canonical name count as the same state)"
        )
    _check_months(months, "months", allow_zero=True)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise MigrationMatrixError(
            f"the matrix has {int(bad.sum())} non-finite entr(y/ies), first from {states[i]} "
            f"to {states[j]}; every probability must be a number in [0, 1]"
        )
    if (values < 0).any():
        i, j = np.argwhere(values < 0)[0]
        raise MigrationMatrixError(
            f"negative probability {values[i, j]:.3g} from {states[i]} to {states[j]}; "
            "probabilities are in [0, 1]"
        )
    sums = values.sum(axis=1)
    off = np.abs(sums - 1.0) > _ROW_SUM_TOL
    if off.any():
        rows = ", ".join(f"{states[i]} sums to {sums[i]:.12g}" for i in np.flatnonzero(off)[:5])
        raise MigrationMatrixError(
            f"every row must sum to 1 (within {_ROW_SUM_TOL:g}): {rows}; "
            "divide each row by its sum if these are counts or rounded shares"
        )


def _check_months(months: object, name: str, allow_zero: bool = True) -> float:
    if isinstance(months, bool) or not isinstance(months, (int, float, np.integer, np.floating)):
        raise MigrationMatrixError(f"{name} must be a number of months; got {months!r}")
    value = float(months)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise MigrationMatrixError(f"{name} must be a finite number of months >= 0; got {months!r}")
    return value


#: A plausible monthly matrix for examples and tests. **Synthetic** (an assumption, not an
#: estimate): diagonally dominant, absorbing exits via repayment, recovery and write-off.
EXAMPLE_MATRIX = MigrationMatrix(
    np.array(
        [
            # normal, special_mention, substandard, doubtful, loss, repaid, recovered, w/o
            [0.975, 0.015, 0.004, 0.001, 0.000, 0.005, 0.000, 0.000],
            [0.060, 0.880, 0.040, 0.010, 0.002, 0.008, 0.000, 0.000],
            [0.010, 0.020, 0.880, 0.060, 0.010, 0.005, 0.010, 0.005],
            [0.000, 0.005, 0.010, 0.890, 0.060, 0.000, 0.020, 0.015],
            [0.000, 0.000, 0.000, 0.005, 0.930, 0.000, 0.015, 0.050],
            [0.000, 0.000, 0.000, 0.000, 0.000, 1.000, 0.000, 0.000],
            [0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 1.000, 0.000],
            [0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 1.000],
        ]
    ),
    STATES,
    1,
)


# --- Estimation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoded:
    """A validated history as integer codes, sorted by (loan, period)."""

    states: tuple[str, ...]
    absorbing: BoolArray
    from_codes: NDArray[np.int16]  # from-state of each consecutive-month pair
    to_codes: NDArray[np.int16]
    n_loans: int
    n_records: int
    n_gaps: int


class MigrationEstimator:
    """Estimate a monthly migration matrix from a loan-month history, then project.

    Parameters
    ----------
    method
        ``"cohort"`` (default; DESIGN section 5): pair each loan's record at month
        ``t`` with its record at ``t + 1`` and set ``p_ij = N_ij / N_i``.
        ``"aalen_johansen"``: the duration (continuous-time) estimator of a
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
        data = _encode_history(history, self.states, self.absorbing)
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


# --- Reading and checking a history (vectorised) ---------------------------------------------


@dataclass
class _Issue:
    mask: BoolArray
    column: str
    problem: str | NDArray[np.object_]
    allowed: str


def _encode_history(
    history: TableSource, states: Sequence[str] | None, absorbing: Sequence[str] | None
) -> _Encoded:
    name = source_name(history, "history")
    what = "migration history validation failed"
    frame = read_table(history, HISTORY_COLUMNS)
    log = ProblemLog(name)
    check_headers(frame, HISTORY_COLUMNS, log)
    log.raise_if_any(what)
    if len(frame) == 0:
        log.note("loan_id", "the history has no rows", "one row per loan and month")
        log.raise_if_any(what)
    chosen, absorbing_mask = _state_setup(states, absorbing)
    issues: list[_Issue] = []
    loans, loan_missing = _encode_ids(frame["loan_id"])
    issues.append(_Issue(loan_missing, "loan_id", "missing", "a non-empty identifier"))
    period, period_missing, period_bad = _encode_period(frame["period"])
    allowed_period = "an integer month number (for yyyymm use year * 12 + month)"
    issues.append(_Issue(period_missing, "period", "missing", allowed_period))
    issues.append(_Issue(period_bad, "period", "not an integer month number", allowed_period))
    codes, chosen, state_missing, state_unknown = _encode_states(frame["state"], chosen)
    if absorbing_mask is None:
        absorbing_mask = np.isin(np.array(chosen, dtype=object), ABSORBING_STATES)
    allowed_states = _ALLOWED_STATES if states is None else ", ".join(chosen)
    issues.append(_Issue(state_missing, "state", "missing", allowed_states))
    issues.append(_Issue(state_unknown, "state", "unknown state", allowed_states))

    valid = ~(loan_missing | period_missing | period_bad | state_missing | state_unknown)
    n = len(frame)
    packed = _packed_sort(loans, period, codes, len(chosen)) if valid.all() else None
    if packed is not None:
        # fast path: (loan, period, state) sorted as one integer; rows only needed on error
        same, step, dup, leaves = _scan(*packed, absorbing_mask)
        if dup.any() or leaves.any():
            packed = None
        else:
            loans, period, codes = packed
    if packed is None:
        rows = None if valid.all() else np.flatnonzero(valid)
        if rows is not None:
            loans, period, codes = loans[rows], period[rows], codes[rows]
        order = _sort_order(loans, period)
        loans, period, codes = loans[order], period[order], codes[order]
        where = order if rows is None else rows[order]  # original row of each sorted record
        same, step, dup, leaves = _scan(loans, period, codes, absorbing_mask)
    if dup.any():
        both = np.zeros(loans.size, dtype=bool)
        both[1:] |= dup
        both[:-1] |= dup
        issues.append(
            _Issue(
                _scatter(where[both], n),
                "period",
                "duplicate (loan_id, period): the loan has two records for this month",
                "one row per loan and month",
            )
        )
    if leaves.any():
        at = np.flatnonzero(leaves)
        text = np.full(n, "", dtype=object)
        prev = np.asarray(chosen, dtype=object)[codes[at]]
        text[where[at + 1]] = (
            "the loan leaves absorbing state "
            + prev.astype(str).astype(object)
            + " (period "
            + period[at].astype(str).astype(object)
            + ")"
        )
        issues.append(
            _Issue(
                _scatter(where[at + 1], n),
                "state",
                text,
                "no other state after an absorbing one (or leave that state out of absorbing=)",
            )
        )
    consecutive = same & (step == 1)
    gaps = same & (step > 1)
    if not any(issue.mask.any() for issue in issues) and not consecutive.any():
        hint = _yyyymm_hint(period)
        log.note(
            "period",
            "no loan has records in two consecutive months, so no migration can be counted" + hint,
            allowed_period,
        )
    _raise_issues(frame, name, issues, log, what)
    if gaps.any() and _looks_yyyymm(period) and (step[gaps] == 89).any():
        warnings.warn(
            "periods look like yyyymm numbers: December -> January pairs are 89 apart and "
            "were skipped as gaps; convert with period = year * 12 + month",
            MigrationWarning,
            stacklevel=3,
        )
    return _Encoded(
        states=chosen,
        absorbing=absorbing_mask,
        from_codes=codes[:-1][consecutive],
        to_codes=codes[1:][consecutive],
        n_loans=int(np.count_nonzero(np.r_[True, ~same])) if loans.size else 0,
        n_records=n,
        n_gaps=int(np.count_nonzero(gaps)),
    )


def _scan(
    loans: IntArray, period: IntArray, codes: NDArray[np.int16], absorbing: BoolArray
) -> tuple[BoolArray, IntArray, BoolArray, BoolArray]:
    """Masks over records sorted by (loan, period), one per pair of neighbours.

    Same loan as the previous record, the period step, duplicate months, and records
    that leave an absorbing state.
    """
    same = loans[1:] == loans[:-1]
    step = period[1:] - period[:-1]
    dup = same & (step == 0)
    leaves = same & (step > 0) & absorbing[codes[:-1]] & (codes[1:] != codes[:-1])
    return same, step, dup, leaves


def _packed_sort(
    loans: IntArray, period: IntArray, codes: NDArray[np.int16], n_states: int
) -> tuple[IntArray, IntArray, NDArray[np.int16]] | None:
    """Records sorted by (loan, period, state), packed into one uint64 and sorted by value.

    A value sort is an order of magnitude faster than an argsort; it works when the
    loan label range, the period span and the state count fit in 64 bits together.
    ``None`` otherwise.
    """
    if loans.size == 0:
        return None
    first, low = int(loans.min()), int(period.min())
    loan_bits = (int(loans.max()) - first).bit_length()
    period_bits = (int(period.max()) - low).bit_length()
    state_bits = max(1, (n_states - 1).bit_length())
    if loan_bits + period_bits + state_bits > 64:
        return None
    shift = np.uint64(period_bits + state_bits)
    key = (loans - first).astype(np.uint64) << shift
    key |= (period - low).astype(np.uint64) << np.uint64(state_bits)
    key |= codes.astype(np.uint64)
    key.sort()
    state = (key & np.uint64((1 << state_bits) - 1)).astype(np.int16)
    month = (key >> np.uint64(state_bits)) & np.uint64((1 << period_bits) - 1)
    loan = (key >> shift).astype(np.int64)
    return loan, month.astype(np.int64) + low, state


def _raise_issues(
    frame: pd.DataFrame, name: str, issues: list[_Issue], log: ProblemLog, what: str
) -> None:
    issues = [issue for issue in issues if issue.mask.any()]
    if not issues and not log:
        return
    ids = frame["loan_id"].astype("string").to_numpy(dtype=object, na_value=None)
    full = ProblemLog(name, ids)
    full.extend(log)
    for issue in issues:
        values = frame[issue.column].to_numpy(dtype=object)
        values[pd.isna(values)] = None  # pd.NA (nullable dtypes) shown as missing
        full.flag(issue.mask, issue.column, values, issue.problem, issue.allowed)
    full.raise_if_any(what)


def _scatter(positions: IntArray, n: int) -> BoolArray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


def _looks_yyyymm(period: IntArray) -> bool:
    if period.size == 0 or period.min() < 190001 or period.max() > 210012:
        return False
    month = period % 100
    return bool(((month >= 1) & (month <= 12)).all())


def _yyyymm_hint(period: IntArray) -> str:
    if _looks_yyyymm(period):
        return " (the periods look like yyyymm; use year * 12 + month)"
    return ""


def _sort_order(loans: IntArray, period: IntArray) -> IntArray:
    """Stable order by (loan label, period).

    One int64 key ``loan * span + period`` when the labels are dense enough; otherwise
    two stable passes (period, then loan), each cheap on data already sorted either way.
    """
    if loans.size == 0:
        return np.zeros(0, dtype=np.int64)
    low = int(period.min())
    span = int(period.max()) - low + 1
    first = int(loans.min())
    if (int(loans.max()) - first + 1) * span < 2**62:
        key = (loans - first) * span + (period - low)
        return np.argsort(key, kind="stable")
    if bool((period[1:] >= period[:-1]).all()):
        order = np.arange(period.size)
    elif span <= 2**16:
        order = np.argsort((period - low).astype(np.uint16), kind="stable")  # radix sort
    else:
        order = np.argsort(period, kind="stable")
    return order[np.argsort(loans[order], kind="stable")]


def _encode_ids(raw: pd.Series) -> tuple[IntArray, BoolArray]:
    """Integer labels of loan ids (equal ids, equal labels) and the missing mask.

    Integer ids are their own labels; fixed-width ASCII text ids are read as numbers
    (:func:`_fixed_width_labels`), without hashing; anything else is factorised, with
    surrounding blanks ignored.
    """
    n = len(raw)
    if pd.api.types.is_integer_dtype(raw.dtype) and not isinstance(
        raw.dtype, pd.api.extensions.ExtensionDtype
    ):
        return raw.to_numpy(dtype=np.int64), np.zeros(n, dtype=bool)
    labels = _fixed_width_labels(raw)
    if labels is not None:
        return labels, np.zeros(n, dtype=bool)
    codes, uniques = pd.factorize(raw)
    codes = codes.astype(np.int64)
    if not pd.api.types.is_numeric_dtype(uniques.dtype):
        text = pd.Index(uniques).astype("string").str.strip()
        merged, _ = pd.factorize(text)
        blank = (text == "").to_numpy(dtype=bool, na_value=True)
        lookup = np.append(np.where(blank, -1, merged), -1).astype(np.int64)
        codes = lookup[codes]
    missing = codes < 0
    return np.where(missing, 0, codes), missing


_BLANK_BYTE = np.zeros(256, dtype=bool)
_BLANK_BYTE[np.frombuffer(b" \t\n\r\x0b\x0c", dtype=np.uint8)] = True


def _fixed_width_labels(raw: pd.Series) -> IntArray | None:
    """Exact int64 labels of Arrow-backed ASCII ids that all have the same length.

    Up to 8 characters: the bytes read as one big-endian integer; 9 to 18 digits: their
    decimal value. ``None`` when the column does not qualify (nulls, blanks at either
    end, non-ASCII, varying length): the caller then factorises.
    """
    storage = getattr(raw.dtype, "storage", None)
    if not (isinstance(raw.dtype, pd.StringDtype) and storage == "pyarrow") or len(raw) == 0:
        return None
    import pyarrow as pa

    arr = pa.array(raw.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    large = pa.types.is_large_string(arr.type)
    if arr.null_count or not (large or pa.types.is_string(arr.type)):
        return None
    width_type = np.dtype(np.int64 if large else np.int32)
    buffers = arr.buffers()
    offsets = np.frombuffer(
        buffers[1], dtype=width_type, count=len(arr) + 1, offset=arr.offset * width_type.itemsize
    )
    width = int(offsets[1] - offsets[0])
    if not 0 < width <= 18 or int(offsets[-1] - offsets[0]) != width * len(arr):
        return None
    if not bool((np.diff(offsets) == width).all()):
        return None
    data = np.frombuffer(
        buffers[2], dtype=np.uint8, count=width * len(arr), offset=int(offsets[0])
    ).reshape(-1, width)
    if data.max() >= 128 or _BLANK_BYTE[data[:, 0]].any() or _BLANK_BYTE[data[:, -1]].any():
        return None
    if width <= 8:
        padded = np.zeros((len(arr), 8), dtype=np.uint8)
        padded[:, 8 - width :] = data
        return padded.view(">u8").ravel().astype(np.int64)
    if not bool(((data >= 48) & (data <= 57)).all()):
        return None
    values = np.zeros(len(arr), dtype=np.int64)
    for j in range(width):  # one pass per character position, not per row
        values = values * 10 + (data[:, j] - 48)
    return values


def _encode_period(raw: pd.Series) -> tuple[IntArray, BoolArray, BoolArray]:
    """Integer month numbers, with masks of missing and of non-integer values."""
    n = len(raw)
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return np.zeros(n, dtype=np.int64), raw.isna().to_numpy(), raw.notna().to_numpy()
    if isinstance(dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        missing = raw.isna().to_numpy()
        months = raw.dt.year * 12 + raw.dt.month
        return months.fillna(0).to_numpy(dtype=np.int64), missing, np.zeros(n, dtype=bool)
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return raw.to_numpy(dtype=np.int64), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        number = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(number)
    else:
        text = raw.astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~missing & ~(np.isfinite(number) & (number == np.round(number)))
        bad |= ~missing & (np.abs(number) > 2**53)
    ok = ~(missing | bad)
    return np.where(ok, number, 0).astype(np.int64), missing, bad


def _state_setup(
    states: Sequence[str] | None, absorbing: Sequence[str] | None
) -> tuple[tuple[str, ...] | None, BoolArray | None]:
    if isinstance(states, str) or isinstance(absorbing, str):
        raise MigrationMatrixError(
            "states and absorbing are sequences of state names, not one string"
        )
    if states is None:
        if absorbing is not None:
            raise MigrationMatrixError(
                "absorbing= needs states= too: name every state of the chain"
            )
        return None, None
    chosen = tuple(canonical_state(s) for s in states)
    if len(set(chosen)) != len(chosen) or not chosen:
        raise MigrationMatrixError(
            f"states must be distinct names (aliases count as their state): {states}"
        )
    if absorbing is None:
        return chosen, np.isin(np.array(chosen, dtype=object), ABSORBING_STATES)
    named = [canonical_state(s) for s in absorbing]
    unknown = [s for s in named if s not in chosen]
    if unknown:
        raise MigrationMatrixError(
            f"absorbing states {unknown} are not among states {list(chosen)}"
        )
    return chosen, np.isin(np.array(chosen, dtype=object), named)


def _encode_states(
    raw: pd.Series, chosen: tuple[str, ...] | None
) -> tuple[NDArray[np.int16], tuple[str, ...], BoolArray, BoolArray]:
    """State codes into the chosen states (found in the data when ``None``)."""
    codes, uniques = pd.factorize(raw)
    texts = [str(u).strip() for u in uniques]
    if chosen is None:
        found = {canonical_state(t) for t in texts}
        chosen = tuple(s for s in STATES if s in found)
        lookup = {s: s for s in chosen}
    else:
        lookup = {_norm(s): s for s in chosen}
        lookup.update({s: s for s in chosen})
    position = {s: i for i, s in enumerate(chosen)}
    mapped = []
    for text in texts:
        target = lookup.get(_norm(text), lookup.get(canonical_state(text)))
        mapped.append(position[target] if target is not None else (-2 if text == "" else -1))
    table = np.array([*mapped, -2], dtype=np.int16)  # code -1 (missing) -> -2
    state = table[codes]
    if min(mapped, default=0) >= 0 and (codes >= 0).all():
        none = np.zeros(state.size, dtype=bool)
        return state, chosen, none, none
    missing = state == -2
    unknown = state == -1
    return np.where(state >= 0, state, 0).astype(np.int16), chosen, missing, unknown


# --- Projection ------------------------------------------------------------------------------


def project(
    portfolio: Portfolio | TableSource, matrix: MigrationMatrix, months: float
) -> pd.DataFrame:
    """Project every loan ``months`` months ahead from its current class.

    Each loan starts in its ``classification`` (substandard / doubtful / loss); its row
    of the result is its one-hot start times ``P^k`` (the matrix over ``months`` months,
    :meth:`MigrationMatrix.to_period`). Returns one row per loan: ``loan_id``,
    ``classification`` (start), ``balance`` (CNY yuan), ``npl_age_months`` (today's age
    plus ``months``: the age of a loan still in the NPL classes), ``p_<state>`` for every
    state of the matrix (each row sums to 1), ``npl_probability`` (the sum over the NPL
    classes) and ``expected_npl_balance`` (balance x npl_probability, CNY yuan).
    """
    pf = portfolio if isinstance(portfolio, Portfolio) else read_portfolio(portfolio)
    months = _check_months(months, "months")
    loans = pf.loans
    start = pd.Categorical(loans["classification"])
    used = [str(c) for c in start.categories[np.unique(start.codes[start.codes >= 0])]]
    absent = [c for c in used if c not in matrix.states]
    if absent:
        raise MigrationMatrixError(
            f"the portfolio has loans in {', '.join(absent)} but the matrix has no such state "
            f"(its states: {', '.join(matrix.states)}); estimate or give a matrix with them"
        )
    lookup = np.array(
        [matrix.states.index(str(c)) if str(c) in matrix.states else -1 for c in start.categories]
    )
    state = lookup[np.asarray(start.codes)]
    moved = matrix.to_period(months).matrix
    probs = moved[state]
    npl = [j for j, s in enumerate(matrix.states) if s in NPL_STATES]
    npl_prob = probs[:, npl].sum(axis=1)
    balance = loans["balance"].to_numpy(dtype=np.float64)
    columns: dict[str, object] = {
        "loan_id": loans["loan_id"],
        "classification": loans["classification"],
        "balance": balance,
        "npl_age_months": loans["npl_age_months"].to_numpy(dtype=np.float64) + months,
    }
    columns.update({f"p_{s}": probs[:, j] for j, s in enumerate(matrix.states)})
    columns["npl_probability"] = npl_prob
    columns["expected_npl_balance"] = balance * npl_prob
    return pd.DataFrame(columns, index=loans.index)


# --- Files -----------------------------------------------------------------------------------


def write_matrix(matrix: MigrationMatrix, path: str | os.PathLike[str]) -> Path:
    """Write the matrix as CSV (DESIGN section 5): ``from_state`` then one column per to-state.

    The file is written to a temporary name and moved into place, so a failure leaves
    no partial file. Returns the path.
    """
    target = Path(path)
    table = matrix.frame().reset_index()
    table.columns.name = None
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            table.to_csv(out, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_matrix(source: MatrixSource, months: float = 1) -> MigrationMatrix:
    """Read a matrix written by :func:`write_matrix` (or any from-state x to-state table)."""
    if isinstance(source, pd.DataFrame):
        return MigrationMatrix.from_frame(source, months)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; give the path of a matrix CSV")
    frame = pd.read_csv(path, encoding="utf-8-sig")
    if "from_state" not in frame.columns:
        frame = frame.set_index(frame.columns[0])
    try:
        return MigrationMatrix.from_frame(frame, months)
    except MigrationMatrixError as exc:
        raise MigrationMatrixError(f"{path.name}: {exc}") from exc


# --- Synthetic histories ---------------------------------------------------------------------


def make_history(
    n_loans: int,
    n_months: int,
    seed: int | None = 0,
    matrix: MigrationMatrix | None = None,
    initial: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A synthetic loan-month history of a known chain (default :data:`EXAMPLE_MATRIX`).

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

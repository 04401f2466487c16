"""Migration matrices: the probabilities that a loan in one state is in another a period later.

A :class:`MigrationMatrix` holds ``P[i, j]``, the probability that a loan in state ``i``
is in state ``j`` one period (``months``) later; it converts to other periods, projects
a distribution forward and gives default and absorption probabilities.
:func:`project` projects a portfolio's loans; :func:`write_matrix` and
:func:`read_matrix` keep a matrix in a CSV file. Time is in months throughout.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.exceptions import MigrationMatrixError, MigrationWarning
from npl_disposal.io.csv_output import check_encoding
from npl_disposal.io.output import write_file
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.tables import TableSource
from npl_disposal.valuation.states import (
    DEFAULT_STATES,
    NPL_STATES,
    STATES,
    canonical_state,
)

__all__ = ["EXAMPLE_MATRIX", "MigrationMatrix", "project", "read_matrix", "write_matrix"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
MatrixSource = Union[pd.DataFrame, str, "os.PathLike[str]"]

_ROW_SUM_TOL = 1e-9
_ABSORBING_TOL = 1e-12


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
            from scipy.linalg import fractional_matrix_power  # 0.3 s to import; rarely needed

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


def write_matrix(
    matrix: MigrationMatrix, path: str | os.PathLike[str], encoding: str = "utf-8"
) -> Path:
    """Write the matrix as CSV: ``from_state``, then one column per to-state.

    ``encoding``: one of ``npl_disposal.io.csv_output.CSV_ENCODINGS`` (the command line
    writes UTF-8 with a byte-order mark).

    This is the file ``npl-disposal migration`` writes. It is written to a temporary
    name and moved into place, so a failure leaves no partial file. Returns the path.
    """
    check_encoding(encoding)
    table = matrix.frame().reset_index()
    table.columns.name = None
    return write_file(path, lambda p: table.to_csv(p, index=False, encoding=encoding))


def read_matrix(source: MatrixSource, months: float = 1) -> MigrationMatrix:
    """Read a matrix written by :func:`write_matrix` (or any from-state x to-state table)."""
    if isinstance(source, pd.DataFrame):
        return MigrationMatrix.from_frame(source, months)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; give the path of a matrix CSV")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except UnicodeDecodeError:  # written with --encoding gb18030
        frame = pd.read_csv(path, encoding="gb18030")
    if "from_state" not in frame.columns:
        frame = frame.set_index(frame.columns[0])
    try:
        return MigrationMatrix.from_frame(frame, months)
    except MigrationMatrixError as exc:
        raise MigrationMatrixError(f"{path.name}: {exc}") from exc



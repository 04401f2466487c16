"""A thin, array-in / array-out wrapper around HiGHS (``highspy``).

Models are ``minimise c @ z`` subject to ``row_lower <= A @ z <= row_upper`` and
``col_lower <= z <= col_upper``, with ``A`` a scipy sparse matrix. No Python
object per variable is created.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from npl_disposal.exceptions import SolverUnavailableError

__all__ = ["ArrayModel", "ArraySolution", "HighsSession", "run_highs"]


@dataclass(frozen=True, eq=False)
class ArrayModel:
    """A linear (mixed-integer) model in arrays, minimised."""

    cost: np.ndarray
    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ArraySolution:
    """What HiGHS returned.

    ``status`` is one of optimal, target (a MIP stopped at its objective
    target), infeasible, time_limit, no_solution, unbounded, error; ``bound``
    is the proven lower bound (MIP) or the objective (LP).
    """

    status: str
    x: np.ndarray
    row_dual: np.ndarray
    objective: float
    bound: float
    seconds: float
    message: str


def _highspy():  # type: ignore[no-untyped-def]
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - highspy is a core dependency
        raise SolverUnavailableError(
            "HiGHS is not installed; install it with: pip install highspy"
        ) from exc
    return highspy


_BANNER_SHOWN = False
#: LPs with more columns than this go to HiGHS's interior point method.
IPM_COLUMNS = 40_000


def _new_highs(hs):  # type: ignore[no-untyped-def]
    """A Highs object; the first one's copyright banner (written to fd 1) is silenced."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return hs.Highs()
    _BANNER_SHOWN = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return hs.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def run_highs(
    model: ArrayModel,
    time_limit: float | None = None,
    mip_gap: float = 1e-9,
    feasibility: float = 1e-9,
    threads: int | None = None,
    abs_gap: float | None = None,
    method: str | None = None,
    target: float | None = None,
    presolve: bool = True,
) -> ArraySolution:
    """Solve ``model`` with HiGHS; tolerances and ``abs_gap`` in the model's (scaled) units.

    ``presolve=False`` turns HiGHS's presolve off: it does not check the time
    limit throughout a MIP presolve (ERGO-Code/HiGHS#1501): on a large whole-loan
    model it ran for minutes past the limit.

    ``target`` (MIP) stops the search at the first plan whose objective is at or
    below it (status ``"target"``): used when a bound proven elsewhere already
    certifies any such plan.

    ``method`` is HiGHS's ``solver`` option; by default LPs of more than
    ``IPM_COLUMNS`` columns use the interior point method with crossover (a
    basic solution, so duals and split loans stay exact), which measured
    faster than dual simplex on these models.
    """
    session = HighsSession(model, mip_gap, feasibility, threads, abs_gap, method)
    if not presolve:
        session.h.setOptionValue("presolve", "off")
    if target is not None and math.isfinite(target):
        session.h.setOptionValue("objective_target", float(target))
    return session.run(time_limit)


class HighsSession:
    """One HiGHS model kept alive between solves, so a grown model restarts from its basis.

    Rows and columns may be added and row limits changed between :meth:`run`
    calls (HiGHS keeps the last basis: the new columns start at their bounds,
    the new rows' slacks basic).
    """

    def __init__(
        self,
        model: ArrayModel,
        mip_gap: float = 1e-9,
        feasibility: float = 1e-9,
        threads: int | None = None,
        abs_gap: float | None = None,
        method: str | None = None,
    ) -> None:
        hs = _highspy()
        self._hs = hs
        h = _new_highs(hs)
        h.setOptionValue("output_flag", False)
        h.setOptionValue("primal_feasibility_tolerance", feasibility)
        h.setOptionValue("dual_feasibility_tolerance", feasibility)
        h.setOptionValue("mip_feasibility_tolerance", feasibility)
        h.setOptionValue("mip_rel_gap", mip_gap)
        if abs_gap is not None:
            h.setOptionValue("mip_abs_gap", max(float(abs_gap), 1e-9))
        self.is_mip = model.integer is not None and bool(model.integer.any())
        if method is None and not self.is_mip and model.cost.size > IPM_COLUMNS:
            method = "ipm"
        if method is not None:
            h.setOptionValue("solver", method)
        if threads is not None:
            h.setOptionValue("threads", int(threads))
        self.h = h
        self.inf = h.getInfinity()
        self.n_cols, self.n_rows = model.matrix.shape[1], model.matrix.shape[0]
        self.passed = self._pass(model)

    def _clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(values, dtype=np.float64), -self.inf, self.inf)

    def _pass(self, model: ArrayModel) -> bool:
        hs, h = self._hs, self.h
        a = model.matrix.tocsc()
        a.sort_indices()
        integrality = (
            np.asarray(model.integer, dtype=np.int32)
            if self.is_mip
            else np.zeros(a.shape[1], dtype=np.int32)
        )
        status = h.passModel(
            a.shape[1],
            a.shape[0],
            int(a.nnz),
            int(hs.MatrixFormat.kColwise),
            int(hs.ObjSense.kMinimize),
            0.0,
            np.asarray(model.cost, dtype=np.float64),
            self._clip(model.col_lower),
            self._clip(model.col_upper),
            self._clip(model.row_lower),
            self._clip(model.row_upper),
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
            integrality,
        )
        return bool(status != hs.HighsStatus.kError)

    def add_rows(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Append empty rows (their entries come with :meth:`add_columns`); their indices."""
        count = int(lower.size)
        empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
        self.h.addRows(count, self._clip(lower), self._clip(upper), 0,
                       np.zeros(count, dtype=np.int32), empty_i, empty_f)  # fmt: skip
        first = self.n_rows
        self.n_rows += count
        return np.arange(first, self.n_rows)

    def add_columns(
        self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, matrix: sp.csc_matrix
    ) -> np.ndarray:
        """Append columns (``matrix`` has one column each, over all rows); their indices."""
        a = matrix.tocsc()
        a.sort_indices()
        count = a.shape[1]
        self.h.addCols(
            count,
            np.asarray(cost, dtype=np.float64),
            self._clip(lower),
            self._clip(upper),
            int(a.nnz),
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
        )
        first = self.n_cols
        self.n_cols += count
        return np.arange(first, self.n_cols)

    def swap_into_basis(self, cols: np.ndarray, rows: np.ndarray) -> bool:
        """Make ``cols`` basic in place of the slacks of ``rows`` (then at their lower limit).

        After :meth:`add_rows` and :meth:`add_columns` HiGHS keeps its basis with the
        new rows' slacks basic and the new columns at zero. When the new columns are a
        fixed loan's option at the share it held (the row limits moved by the same
        usage), this swap keeps the basis primal feasible, and the next solve starts
        where the last one ended (about twenty times fewer simplex iterations per grow,
        benchmarks/README.md, design measurements). Before the first solve the swap is
        made in the slack basis (every column at zero). False (basis unchanged) if the
        counts differ or HiGHS rejects the basis.
        """
        if cols.size != rows.size:
            return False
        status = self._hs.HighsBasisStatus
        basis = self.h.getBasis()
        if basis.valid:
            col_status, row_status = basis.col_status, basis.row_status
        else:
            basis = self._hs.HighsBasis()
            col_status, row_status = [status.kLower] * self.n_cols, [status.kBasic] * self.n_rows
            basis.valid = True
        # One entry per entering loan (thousands), set in the lists HiGHS hands over.
        for c in cols.tolist():
            col_status[c] = status.kBasic
        for r in rows.tolist():
            row_status[r] = status.kLower
        basis.col_status, basis.row_status = col_status, row_status
        return bool(self.h.setBasis(basis) == self._hs.HighsStatus.kOk)

    def set_row_limits(self, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Change the limits of ``rows``."""
        self.h.changeRowsBounds(int(rows.size), rows.astype(np.int32), self._clip(lower),
                                self._clip(upper))  # fmt: skip

    def set_column_limits(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Change the bounds of columns ``cols``."""
        self.h.changeColsBounds(int(cols.size), cols.astype(np.int32), self._clip(lower),
                                self._clip(upper))  # fmt: skip

    def use(self, method: str) -> None:
        """Switch HiGHS's LP method (``simplex`` restarts from the basis; ``ipm`` does not)."""
        self.h.setOptionValue("solver", method)

    def run(self, time_limit: float | None = None) -> ArraySolution:
        """Solve (again) and read the solution."""
        h = self.h
        if not self.passed:
            return ArraySolution(
                "error", np.zeros(0), np.zeros(0), math.nan, math.nan, 0.0,
                "HiGHS rejected the model",
            )  # fmt: skip
        if time_limit is not None and math.isfinite(time_limit):
            h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        start = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - start
        status_text = h.modelStatusToString(h.getModelStatus())
        status = _status(status_text)
        info = h.getInfo()
        sol = h.getSolution()
        x = np.asarray(sol.col_value, dtype=float) if sol.value_valid else np.zeros(0)
        duals = np.asarray(sol.row_dual, dtype=float) if sol.dual_valid else np.zeros(0)
        objective = float(info.objective_function_value) if x.size else math.nan
        bound = float(info.mip_dual_bound) if self.is_mip else objective
        if status == "time_limit" and not x.size:
            status = "no_solution"
        return ArraySolution(status, x, duals, objective, bound, seconds, status_text)


def _status(text: str) -> str:
    lowered = text.lower()
    if lowered == "optimal":
        return "optimal"
    if "infeasible" in lowered:
        return "infeasible"
    if "time limit" in lowered or "iteration limit" in lowered:
        return "time_limit"
    if "unbounded" in lowered:
        return "unbounded"
    if "target for objective" in lowered:
        return "target"
    return "error"

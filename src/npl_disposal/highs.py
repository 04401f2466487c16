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

__all__ = ["ArrayModel", "ArraySolution", "run_highs"]


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

    ``status`` is one of optimal, infeasible, time_limit, no_solution, unbounded,
    error; ``bound`` is the proven lower bound (MIP) or the objective (LP).
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
) -> ArraySolution:
    """Solve ``model`` with HiGHS; tolerances and ``abs_gap`` in the model's (scaled) units.

    ``method`` is HiGHS's ``solver`` option; by default LPs of more than
    ``IPM_COLUMNS`` columns use the interior point method with crossover (a
    basic solution, so duals and split loans stay exact), which measured
    faster than dual simplex on these models.
    """
    hs = _highspy()
    h = _new_highs(hs)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("primal_feasibility_tolerance", feasibility)
    h.setOptionValue("dual_feasibility_tolerance", feasibility)
    h.setOptionValue("mip_feasibility_tolerance", feasibility)
    h.setOptionValue("mip_rel_gap", mip_gap)
    if abs_gap is not None:
        h.setOptionValue("mip_abs_gap", max(float(abs_gap), 1e-9))
    is_mip = model.integer is not None and bool(model.integer.any())
    if method is None and not is_mip and model.cost.size > IPM_COLUMNS:
        method = "ipm"
    if method is not None:
        h.setOptionValue("solver", method)
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    if time_limit is not None and math.isfinite(time_limit):
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    a = model.matrix.tocsc()
    a.sort_indices()
    n_col, n_row = a.shape[1], a.shape[0]
    integrality = (
        np.asarray(model.integer, dtype=np.int32) if is_mip else np.zeros(n_col, dtype=np.int32)
    )
    inf = h.getInfinity()
    clip = lambda v: np.clip(np.asarray(v, dtype=np.float64), -inf, inf)  # noqa: E731
    passed = h.passModel(
        n_col,
        n_row,
        int(a.nnz),
        int(hs.MatrixFormat.kColwise),
        int(hs.ObjSense.kMinimize),
        0.0,
        np.asarray(model.cost, dtype=np.float64),
        clip(model.col_lower),
        clip(model.col_upper),
        clip(model.row_lower),
        clip(model.row_upper),
        a.indptr[:-1].astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        integrality,
    )
    if passed == hs.HighsStatus.kError:
        return ArraySolution(
            "error", np.zeros(0), np.zeros(0), math.nan, math.nan, 0.0, "HiGHS rejected the model"
        )
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
    bound = float(info.mip_dual_bound) if is_mip else objective
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
    return "error"

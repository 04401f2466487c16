"""The PuLP backend: the model of ``docs/model.md`` for any solver PuLP can drive.

``solve(problem, solver="cbc")`` (or ``"GUROBI"``, ``"pulp:highs"``...) lands
here. The PuLP model is built from the problem's arrays in as few Python
objects as PuLP allows (one variable per *eligible* option, one expression per
row built from the sparse row in one call) and is written in the same form as
the native array model of :mod:`npl_disposal.solvers._formulation`:

* it **minimises** ``-(sum v_im x_im - F_sec y_sec)`` in **CNY millions**
  (:data:`~npl_disposal.solvers._formulation.MONEY_SCALE`), and money rows are in
  millions too (count rows stay in loans), so every solver sees well-scaled
  numbers;
* each row's dual is therefore the solver's ``d(objective) / d(limit)`` of a
  minimisation in scaled units -- the convention of the HiGHS path
  (``Restricted.resource_duals``). Writing the model as a minimisation keeps that
  convention for every solver: PuLP passes a maximisation's duals through with
  solver-specific signs (its HiGHS API reports them for the negated objective).

The solver's own status is read (``LpProblem.status`` and ``sol_status``), never
just "Optimal": a MILP stopped at its time limit reports ``time_limit`` even when
PuLP calls it optimal. :func:`~npl_disposal.solvers.solve.solve` verifies every plan.
"""

from __future__ import annotations

import gc
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pulp
import scipy.sparse as sp

from npl_disposal.exceptions import SolverError, SolverUnavailableError
from npl_disposal.model.problem import MONEY, AllocationProblem
from npl_disposal.solvers._formulation import MONEY_SCALE, row_scale
from npl_disposal.solvers._outcome import Outcome, failed, plan_value
from npl_disposal.solvers._pricing import lagrangian_bound, reduced_values
from npl_disposal.solvers._pulp_run import cbc_bound, run_within

__all__ = [
    "PulpBackend",
    "PulpHandles",
    "available_solvers",
    "build_pulp_model",
    "get_solver",
    "solve_pulp",
]

#: Friendly names (lower case) and the PuLP solvers they mean, first available wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "cbc": ("COIN_CMD", "PULP_CBC_CMD"),
    "coin": ("COIN_CMD", "PULP_CBC_CMD"),
    "highs": ("HiGHS",),
    "highs_pulp": ("HiGHS",),
    "pulp:highs": ("HiGHS",),
    "pulp_highs": ("HiGHS",),
    "highspy": ("HiGHS",),
    "highs_cmd": ("HiGHS_CMD",),
    "glpk": ("GLPK_CMD",),
    "gurobi": ("GUROBI", "GUROBI_CMD"),
    "gurobipy": ("GUROBI",),
    "cplex": ("CPLEX_PY", "CPLEX_CMD"),
    "scip": ("SCIP_PY", "SCIP_CMD"),
    "xpress": ("XPRESS_PY", "XPRESS"),
    "mosek": ("MOSEK",),
    "copt": ("COPT", "COPT_CMD"),
}

_CBC_HINT = (
    "PuLP 3 bundles CBC (PULP_CBC_CMD); PuLP 4 dropped it: install it with "
    "`apt-get install coinor-cbc` (or `pip install pulp[cbc]`) or use solver='highs'"
)
#: What to install to make each PuLP solver available.
INSTALL_HINTS: dict[str, str] = {
    "PULP_CBC_CMD": _CBC_HINT,
    "COIN_CMD": _CBC_HINT,
    "HiGHS": "`pip install highspy` (or use solver='highs', the native backend)",
    "HiGHS_CMD": "put the `highs` executable on PATH (or use solver='highs')",
    "GLPK_CMD": "`apt-get install glpk-utils` (the `glpsol` executable)",
    "PYGLPK": "`pip install glpk`",
    "GUROBI": "`pip install gurobipy` and a Gurobi licence (free for academics)",
    "GUROBI_CMD": "install Gurobi (`gurobi_cl` on PATH) and a licence",
    "CPLEX_PY": "`pip install cplex` (the community edition is limited to 1,000 "
    "variables) and a CPLEX licence",
    "CPLEX_CMD": "install CPLEX (`cplex` on PATH) and a licence",
    "SCIP_PY": "`pip install pyscipopt`",
    "SCIP_CMD": "install SCIP (`scip` on PATH)",
    "FSCIP_CMD": "install SCIP with FiberSCIP (`fscip` on PATH)",
    "XPRESS_PY": "`pip install xpress` and a FICO licence",
    "XPRESS": "install FICO Xpress (`optimizer` on PATH) and a licence",
    "MOSEK": "`pip install mosek` and a MOSEK licence",
    "COPT": "`pip install coptpy` and a COPT licence",
    "COPT_DLL": "install COPT and a licence",
    "COPT_CMD": "install COPT (`copt_cmd` on PATH) and a licence",
    "CyLP": "`pip install cylp`",
    "CUOPT": "`pip install cuopt` (needs an NVIDIA GPU)",
}

#: Extra options tightening tolerances to 1e-9 (scaled units: a thousandth of a
#: yuan), as the native HiGHS path does, so plans pass
#: :func:`~npl_disposal.model.verify.verify_plan` (a cent of tolerance). CBC gets its
#: integrality tolerance only: tighter primal/dual tolerances made it stall on a
#: 150-loan MILP, and its solution file's 8 digits are the limit anyway (see
#: :func:`_polish`).
_PRECISION: dict[str, dict[str, Any]] = {
    "HiGHS": {
        "primal_feasibility_tolerance": 1e-9,
        "dual_feasibility_tolerance": 1e-9,
        "mip_feasibility_tolerance": 1e-9,
    },
    "PULP_CBC_CMD": {"options": ["integerT 1e-9"]},
    "COIN_CMD": {"options": ["integerT 1e-9"]},
}


def available_solvers() -> list[str]:
    """Solver names usable here: ``"highs"`` (the native array backend) first, then PuLP's."""
    return ["highs", *pulp.listSolvers(onlyAvailable=True)]


def _candidates(name: str, known: Sequence[str]) -> tuple[str, ...]:
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    exact = [s for s in known if s.lower() == key]
    return tuple(dict.fromkeys(exact))


def get_solver(
    name: str,
    time_limit: float | None = None,
    mip_gap: float | None = None,
    msg: bool = False,
    mip: bool = True,
) -> Any:
    """A PuLP solver object for ``name`` (any PuLP name or alias, any case).

    Aliases: ``"cbc"`` (``COIN_CMD`` if a system CBC is installed, else PuLP 3's
    bundled ``PULP_CBC_CMD``), ``"highs_pulp"`` / ``"pulp:highs"`` (PuLP's highspy
    API ``HiGHS``), ``"glpk"``, ``"gurobi"``, ``"cplex"``, ``"scip"``, ``"xpress"``,
    ``"mosek"``, ``"copt"``. ``time_limit`` is in seconds, ``mip_gap`` relative;
    ``mip=False`` solves an LP (with its duals). HiGHS's feasibility and CBC's
    integrality tolerances are tightened to 1e-9 (scaled units).

    Raises :class:`~npl_disposal.SolverUnavailableError` naming the solvers
    available here and what to install when ``name`` is unknown or not usable.
    """
    known = pulp.listSolvers()
    candidates = _candidates(name, known)
    available = pulp.listSolvers(onlyAvailable=True)
    here = ", ".join(["highs", *available])
    if not candidates:
        raise SolverUnavailableError(
            f"unknown solver {name!r}; available here: {here}. PuLP also knows "
            f"{', '.join(s for s in known if s not in available)} (install them to use them); "
            "aliases: " + ", ".join(sorted(ALIASES))
        )
    usable = [c for c in candidates if c in available]
    if not usable:
        hints = "; ".join(
            f"{c}: {INSTALL_HINTS.get(c, 'see the PuLP documentation on solvers')}"
            for c in candidates
        )
        raise SolverUnavailableError(
            f"solver {name!r} ({' or '.join(candidates)}) is not available here; "
            f"available here: {here}. To use it: {hints}"
        )
    chosen = usable[0]
    kwargs: dict[str, Any] = {"msg": msg, "mip": mip, **_PRECISION.get(chosen, {})}
    if time_limit is not None and math.isfinite(time_limit):
        kwargs["timeLimit"] = float(time_limit)
    if mip_gap is not None and mip:
        kwargs["gapRel"] = float(mip_gap)
    with warnings.catch_warnings():
        # PuLP 3.3 warns that PULP_CBC_CMD goes away in PuLP 4: the alias "cbc"
        # already prefers COIN_CMD, and the hint above says how to install it.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.getSolver(chosen, **kwargs)
    if not solver.available():
        raise SolverUnavailableError(
            f"solver {chosen} is listed by PuLP but reports itself unavailable; "
            f"available here: {here}. To use it: {INSTALL_HINTS.get(chosen, 'see PuLP docs')}"
        )
    return solver


@dataclass(frozen=True)
class PulpBackend:
    """Any solver PuLP drives, by PuLP's name or an alias (``"PULP_CBC_CMD"``, ``"cbc"``...).

    One model of every loan is built through PuLP's objects (no decomposition), so it
    suits small and medium portfolios; the bound is what :func:`solve_pulp` says.
    """

    solver: str

    @property
    def name(self) -> str:
        """How the result names the backend: ``pulp:SOLVER``."""
        return f"pulp:{self.solver}"

    def check(self) -> None:
        """Raise :class:`~npl_disposal.SolverUnavailableError` if the solver is not usable."""
        get_solver(self.solver)

    def solve(
        self,
        problem: AllocationProblem,
        mode: str,
        method: str,
        time_limit: float | None,
        mip_gap: float,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[Outcome, str]:
        """The outcome of one PuLP model of every loan (``method`` is always ``direct``)."""
        return solve_pulp(problem, mode, self.solver, time_limit, mip_gap), "direct"


@dataclass(frozen=True, eq=False)
class PulpHandles:
    """Where the problem's variables and rows live in a PuLP model.

    ``x[j]`` is the share of flattened option ``cols[j]`` (``loan * n_channels +
    channel``; eligible options only); ``y`` the blocks' on/off variables;
    ``loan_rows[i]`` loan i's ``sum x = 1`` row; ``resource_rows[k]`` the PuLP
    constraints (none, one, or two for a ranged row) of resource row ``k``.
    """

    x: list[Any]
    cols: np.ndarray
    y: list[Any]
    loan_rows: list[Any]
    resource_rows: list[list[Any]]
    mode: str

    def shares(self, problem: AllocationProblem) -> np.ndarray:
        """The solution as an ``(n_loans, n_channels)`` share grid; NaN where unsolved."""
        grid = np.zeros(problem.n_loans * problem.n_channels)
        grid[self.cols] = _values(self.x)
        return grid.reshape(problem.n_loans, problem.n_channels)

    def duals(self) -> np.ndarray:
        """Each resource row's dual (scaled units, min form; 0 where the solver gives none)."""
        return np.array(
            [sum(float(c.pi or 0.0) for c in cons) for cons in self.resource_rows], dtype=float
        )


def _values(variables: list[Any]) -> np.ndarray:
    return np.array(
        [math.nan if v.varValue is None else v.varValue for v in variables], dtype=float
    )


def variable_factory(prob: Any) -> Any:
    """``prob.add_variable`` (PuLP >= 3.3; no deprecation warning) or ``pulp.LpVariable``."""
    return getattr(prob, "add_variable", pulp.LpVariable)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (restored on exit, as it was).

    A PuLP model is millions of small objects with no cycles to collect; at
    100k loans the collector's repeated scans of them took 40 % of the build.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_pulp_model(
    problem: AllocationProblem, mode: str | None = None
) -> tuple[Any, PulpHandles]:
    """The allocation model over every loan as a ``pulp.LpProblem``.

    Minimises ``-(value of the plan)`` in CNY millions (see the module notes);
    money rows are in CNY millions, count rows in loans. ``mode`` (default: the
    policy's) ``"whole_loan"`` makes ``x`` and ``y`` binary, ``"fractional"``
    continuous in [0, 1]. Returns the model and its :class:`PulpHandles`.
    """
    with _collector_paused():
        return _build(problem, mode or problem.mode)


def _build(problem: AllocationProblem, mode: str) -> tuple[Any, PulpHandles]:
    whole = mode == "whole_loan"
    cat = pulp.LpBinary if whole else pulp.LpContinuous
    n, m = problem.n_loans, problem.n_channels
    prob = pulp.LpProblem("npl_disposal", pulp.LpMinimize)
    new_var = variable_factory(prob)
    cols = np.flatnonzero(problem.eligible.ravel())
    loan, chan = np.divmod(cols, m)
    xs = [
        new_var(f"x_{i}_{j}", 0, 1, cat) for i, j in zip(loan.tolist(), chan.tolist(), strict=True)
    ]
    ys = [
        new_var(f"y_{_UNSAFE.sub('_', b.name)}", 0, 1, cat if b.integer else pulp.LpContinuous)
        for b in problem.blocks
    ]
    cost = np.concatenate([-problem.value.ravel()[cols], -problem.block_cost]) * MONEY_SCALE
    allvars = xs + ys
    nz = np.flatnonzero(cost).tolist()
    prob.setObjective(pulp.LpAffineExpression([(allvars[j], float(cost[j])) for j in nz]))
    starts = np.searchsorted(loan, np.arange(n + 1)).tolist()
    loan_rows = []
    for i in range(n):
        expr = pulp.LpAffineExpression(zip(xs[starts[i] : starts[i + 1]], repeat(1.0)))
        con = pulp.LpConstraint(expr, pulp.LpConstraintEQ, name=f"loan_{i}", rhs=1.0)
        prob.addConstraint(con)
        loan_rows.append(con)
    resource_rows = _resource_rows(prob, problem, xs, ys, cols)
    return prob, PulpHandles(xs, cols, ys, loan_rows, resource_rows, mode)


def _resource_rows(
    prob: Any, problem: AllocationProblem, xs: list[Any], ys: list[Any], cols: np.ndarray
) -> list[list[Any]]:
    """Add every resource row (scaled) to ``prob``; return each row's constraints."""
    rows = problem.rows
    scale = row_scale(problem)
    sub = sp.csr_matrix((sp.diags(scale) @ rows.matrix).tocsc()[:, cols])
    sub.sort_indices()
    blocks = rows.blocks * scale[:, None]
    x_arr = np.empty(len(xs), dtype=object)
    x_arr[:] = xs
    # Limits are not tightened: a block's rows have limit 0, so tightening them
    # would forbid the block's off state; tight solver tolerances do the job.
    lower = np.where(np.isfinite(rows.lower), rows.lower * scale, -np.inf)
    upper = np.where(np.isfinite(rows.upper), rows.upper * scale, np.inf)
    out: list[list[Any]] = []
    for k in range(len(rows)):
        a, b = sub.indptr[k], sub.indptr[k + 1]
        terms = list(zip(x_arr[sub.indices[a:b]].tolist(), sub.data[a:b].tolist(), strict=True))
        nzb = np.flatnonzero(blocks[k])
        terms += [(ys[j], float(blocks[k, j])) for j in nzb.tolist()]
        lo, hi = float(lower[k]), float(upper[k])
        if not terms and lo <= 0.0 <= hi:
            out.append([])  # an empty row that holds: nothing to add
            continue
        tag = _UNSAFE.sub("_", f"r{k}_{rows.rule[k]}")
        expr = pulp.LpAffineExpression(terms)
        if lo == hi:
            sides = [(pulp.LpConstraintEQ, lo, tag)]
        else:
            ranged = math.isfinite(lo) and math.isfinite(hi)
            sides = [
                (sense, rhs, tag + suffix if ranged else tag)
                for sense, rhs, suffix in (
                    (pulp.LpConstraintGE, lo, "_lo"),
                    (pulp.LpConstraintLE, hi, "_hi"),
                )
                if math.isfinite(rhs)
            ]
        cons = []
        for sense, rhs, name in sides:
            con = pulp.LpConstraint(
                expr if len(sides) == 1 else pulp.LpAffineExpression(expr),
                sense,
                name=name,
                rhs=rhs,
            )
            prob.addConstraint(con)
            cons.append(con)
        out.append(cons)
    return out


def solve_pulp(
    problem: AllocationProblem,
    mode: str,
    solver: str,
    time_limit: float | None = None,
    mip_gap: float = 1e-6,
) -> Outcome:
    """Solve the whole model with a PuLP solver; shares, bound and duals as an :class:`Outcome`.

    ``time_limit`` (seconds) covers building PuLP's model and the solve: the solver
    gets what is left after the build, and a command-line solver still running at the
    limit is stopped (:func:`~npl_disposal.solvers._pulp_run.run_within`); a build
    that uses it all up returns no plan. ``objective`` and ``bound`` are CNY yuan, the
    objective recomputed from the plan. The bound: fractional mode, the Lagrangian
    ``L(duals)`` (a certified bound, equal to the LP optimum at exact duals);
    whole-loan mode, the best bound the solver proves (HiGHS's MIP dual bound, CBC's
    read from its log), else the LP relaxation's Lagrangian bound from the same
    solver when time is left, else every loan at its best channel with the budgets
    ignored (valid, loose). ``duals`` (fractional mode) are the rows'
    duals in the HiGHS path's convention: scaled units, min form.
    """
    whole = mode == "whole_loan"
    gap = mip_gap / 10  # as the native path: leave room for our own gap definition
    start = time.perf_counter()
    deadline = start + (time_limit if time_limit is not None else math.inf)
    prob, handles = build_pulp_model(problem, mode)
    built = time.perf_counter()
    if built >= deadline:
        return failed(problem, "no_solution", f"the time limit ({time_limit:g} s) was spent "
                      f"building the PuLP model ({built - start:.1f} s); no plan. Raise the time "
                      "limit or use solver='highs'")  # fmt: skip
    left = deadline - built if time_limit is not None else None
    pulp_solver = get_solver(solver, left, gap if whole else None, msg=False, mip=whole)
    k = len(problem.rows)
    try:
        run = run_within(prob, pulp_solver, deadline)
    except pulp.PulpSolverError as exc:
        raise SolverError(
            f"PuLP solver {pulp_solver.name} failed: {exc}. Try another solver "
            f"(available here: {', '.join(available_solvers())}) or solver='highs'."
        ) from exc
    seconds = {"build": built - start, "solve": run.seconds}
    if run.stopped:
        return failed(problem, "no_solution", f"{pulp_solver.name} was stopped at the time "
                      f"limit ({time_limit:g} s) before it found a plan")  # fmt: skip
    status, message = _read_status(prob, pulp_solver, whole, left, run.seconds)
    proven = _proven_bound(prob, run.log)
    if proven is not None and status == "no_solution":
        message += f"; it proved that no plan is worth more than CNY {proven / 1e6:,.2f}m"
    if status not in ("optimal", "time_limit"):
        return failed(problem, status, message)
    x, y = _values(handles.x), _values(handles.y)
    if np.isnan(x).any() or np.isnan(y).any():
        return failed(problem, "no_solution", message)
    if whole:
        integer = np.array([b.integer for b in problem.blocks], dtype=bool)
        x, y = np.round(x), np.where(integer, np.round(y), np.clip(y, 0.0, 1.0))
    else:
        x, y = _polish(problem, handles.cols, np.clip(x, 0.0, 1.0), np.clip(y, 0.0, 1.0))
    grid = np.zeros(problem.n_loans * problem.n_channels)
    grid[handles.cols] = x
    shares = grid.reshape(problem.eligible.shape)
    objective = plan_value(problem, shares, y)
    duals = np.zeros(k) if whole else handles.duals()
    bound = _bound(problem, status, whole, objective, duals, proven, solver, deadline)
    return Outcome(status=status, shares=shares, y=y, objective=objective, bound=bound,
                   duals=duals, shortfall=np.zeros(k), iterations=1, free_loans=problem.n_loans,
                   seconds=seconds, message=message)  # fmt: skip


#: At most this many fractional variables are polished (a vertex has few; see :func:`_polish`).
_POLISH_LIMIT = 5_000


def _polish(
    problem: AllocationProblem, cols: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Restore an LP vertex's tight rows exactly after a solver's limited precision.

    CBC's solution file prints 8 significant digits: a share 5e-9 off on a loan
    of CNY 10m moves a budget by 5 cents, past verify_plan's one cent. Shares
    within 1e-7 of 0 or 1 are snapped; the fractional ones get the least-norm
    correction that meets exactly their loans' ``sum = 1`` rows and every row
    within 1e-6 of its limit (relative to its largest coefficient). The result is
    kept only if it breaks no row by more than the solver's plan did.
    """
    rows, m = problem.rows, problem.n_channels
    nx = x.size
    z = np.concatenate([x, y])
    at = (z <= 1e-7) | (z >= 1.0 - 1e-7)
    free = np.flatnonzero(~at)
    snapped = z.copy()
    snapped[at] = np.round(z[at])
    a_res = sp.hstack([rows.matrix[:, cols], sp.csr_matrix(rows.blocks)]).tocsr()
    loans = cols // m
    a_loan = sp.csr_matrix(
        (np.ones(nx), (loans, np.arange(nx))), shape=(problem.n_loans, nx + y.size)
    )
    limit = np.where(np.isfinite(rows.lower), rows.lower, rows.upper)
    tol = np.where(np.array(rows.unit) == MONEY, 0.01, 1e-7) + 1e-9 * np.abs(
        np.where(np.isfinite(limit), limit, 0.0)
    )  # verify_plan's tolerance

    def violation(v: np.ndarray) -> float:
        act = a_res @ v
        over = np.maximum(np.maximum(act - rows.upper, rows.lower - act), 0.0) / tol
        return float(max(over.max(initial=0.0), np.abs(a_loan @ v - 1.0).max(initial=0.0) / 1e-7))

    best = min((z, snapped), key=violation)
    if free.size == 0 or free.size > _POLISH_LIMIT:
        return best[:nx], best[nx:]
    act = a_res @ snapped
    width = np.abs(a_res).max(axis=1).toarray().ravel() + 1e-12
    near_lo = np.isfinite(rows.lower) & (np.abs(act - rows.lower) <= 1e-6 * width)
    near_hi = np.isfinite(rows.upper) & (np.abs(act - rows.upper) <= 1e-6 * width)
    tight = np.flatnonzero(near_lo | near_hi)
    target = np.where(near_lo, rows.lower, rows.upper)[tight]
    touched = np.unique(loans[free[free < nx]])
    system = sp.vstack([a_loan[touched], a_res[tight]]).tocsr()
    residual = np.concatenate([np.ones(touched.size), target]) - system @ snapped
    sub = system[:, free].toarray()
    norm = np.abs(sub).max(axis=1) + 1e-12
    step = np.linalg.lstsq(sub / norm[:, None], residual / norm, rcond=None)[0]
    polished = snapped.copy()
    polished[free] = np.clip(snapped[free] + step, 0.0, 1.0)
    best = min((best, polished), key=violation)
    return best[:nx], best[nx:]


def _read_status(
    prob: Any, solver: Any, whole: bool, time_limit: float | None, elapsed: float
) -> tuple[str, str]:
    """Map PuLP's status and solution status to an :class:`Outcome` status, with the text."""
    st, sol = prob.status, prob.sol_status
    text = f"{solver.name}: {pulp.LpStatus.get(st, st)} / {pulp.LpSolution.get(sol, sol)}"
    native = _highs_status(prob)
    if native:
        text += f" (HiGHS: {native})"
    hit_limit = time_limit is not None and elapsed >= 0.99 * time_limit
    if st == pulp.LpStatusOptimal:
        if sol == pulp.LpSolutionOptimal and not (native and native != "Optimal"):
            if whole and hit_limit:
                # A MILP run that used up its time is not a proof, whatever it says.
                return "time_limit", text + f"; stopped at the time limit ({time_limit} s)"
            return "optimal", text
        return "time_limit", text
    if st == pulp.LpStatusInfeasible:
        return "infeasible", text
    if st == pulp.LpStatusNotSolved and (hit_limit or "limit" in native.lower()):
        return "no_solution", text + f"; no plan within the time limit ({time_limit} s)"
    return "error", text


def _highs_status(prob: Any) -> str:
    """HiGHS's own model status text when the solver was PuLP's highspy API, else ''."""
    model = getattr(prob, "solverModel", None)
    if model is None or not hasattr(model, "getModelStatus"):
        return ""
    try:
        return str(model.modelStatusToString(model.getModelStatus()))
    except Exception:  # an old highspy without these calls: no extra text
        return ""


def _proven_bound(prob: Any, log: str) -> float | None:
    """The bound (CNY yuan, on the plan's value) the MIP solver proved, if it says one."""
    model = getattr(prob, "solverModel", None)
    if model is not None and hasattr(model, "getInfo"):  # PuLP's highspy API
        dual_bound = float(model.getInfo().mip_dual_bound)
        if math.isfinite(dual_bound):
            return -dual_bound / MONEY_SCALE
    lower = cbc_bound(log)  # CBC minimises -value in CNY millions
    return None if lower is None else -lower / MONEY_SCALE


def _bound(
    problem: AllocationProblem,
    status: str,
    whole: bool,
    objective: float,
    duals: np.ndarray,
    proven: float | None,
    solver_name: str,
    deadline: float,
) -> float:
    """An upper bound (CNY yuan) on the best plan; see :func:`solve_pulp`."""
    if not whole:
        return max(objective, lagrangian_bound(problem, duals, reduced_values(problem, duals)))
    if proven is not None:
        return max(objective, proven)
    left = deadline - time.perf_counter()
    if status == "optimal" and left > 0:
        # A solver that claims the optimum but states no bound: the LP relaxation's
        # Lagrangian bound from the same solver is a certificate.
        limit = left if math.isfinite(left) else None
        relaxed = solve_pulp(problem, "fractional", solver_name, time_limit=limit)
        if relaxed.status == "optimal" and math.isfinite(relaxed.bound):
            return max(objective, relaxed.bound)
    zero = np.zeros(len(problem.rows))
    return max(objective, lagrangian_bound(problem, zero, reduced_values(problem, zero)))

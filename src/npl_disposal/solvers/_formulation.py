"""Array models of the allocation problem, for all loans or a restricted subset.

Columns are ``[x options..., y blocks..., slacks...]``; rows are one equality per
free loan (its shares sum to 1) followed by the resource rows. Loans outside the
free set are fixed: their usage is subtracted from the row limits. Money is
scaled to CNY millions inside the model (HiGHS warns about yuan-sized numbers);
count rows stay in loans.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from npl_disposal.model.problem import MONEY, AllocationProblem
from npl_disposal.solvers._highs import IPM_COLUMNS, ArrayModel, ArraySolution, HighsSession

#: Objective and money rows are in CNY millions inside every model.
MONEY_SCALE = 1e-6
#: Free loans above which a restricted LP with scenario rows is re-solved cold.
COLD_FREE = 4000
#: Scaled miss (CNY m, or loans) above which a lazy row is enforced: a tenth of a yuan.
SLACK_TOL = 1e-7
#: Rules whose rows a restricted LP leaves out until a solution misses them.
LAZY_RULES = ("risk.shortfall",)
#: Fewest lazy rows enforced per solve when more are missed (else a tenth of those left).
LAZY_STEP = 16
#: HiGHS's ``simplex_strategy`` values: the dual and the primal simplex.
DUAL, PRIMAL = 1, 4
#: Cost, in scaled objective units per scaled unit, of violating a row in the elastic model.
PENALTY = 1e5


def row_scale(problem: AllocationProblem) -> np.ndarray:
    """Factor applied to each resource row: 1e-6 for CNY rows, 1 for loan counts."""
    return np.where(np.array(problem.rows.unit) == MONEY, MONEY_SCALE, 1.0)


def lazy_rows(problem: AllocationProblem) -> np.ndarray:
    """Mask of the rows a restricted LP may leave out until a solution misses them.

    The tail model's scenario rows hold only block levels, and most scenarios sit far
    above the tail, where their rows never bind.
    """
    return np.isin(np.array(problem.rows.rule, dtype=object), LAZY_RULES)


def scaled_columns(problem: AllocationProblem, cols: np.ndarray) -> sp.coo_matrix:
    """The resource rows' columns ``cols``, scaled (money rows in CNY millions).

    Taken from the column-stored matrix and scaled after slicing, so no scaled
    copy of the whole matrix is kept.
    """
    sub = sp.csc_matrix(problem.rows.matrix[:, cols]).tocoo()
    sub.data = sub.data * row_scale(problem)[sub.row]
    return sub


@dataclass(frozen=True, eq=False)
class Restricted:
    """A model over the free loans, with the map back to the problem's grid."""

    model: ArrayModel
    loans: np.ndarray
    cols: np.ndarray
    n_blocks: int
    slack_rows: np.ndarray
    slack_sign: np.ndarray
    used: np.ndarray  # each row's usage by the fixed loans (natural units)

    @property
    def n_x(self) -> int:
        """Number of option columns."""
        return self.cols.size

    def resource_duals(self, row_dual: np.ndarray) -> np.ndarray:
        """Duals of the resource rows (scaled units, min form)."""
        return row_dual[self.loans.size :]

    def slack(self, x: np.ndarray) -> np.ndarray:
        """Violation of each resource row (scaled units) in a solution.

        Positive where the row is below its lower limit (it needs more), negative
        where it is above its upper limit (it needs less).
        """
        out = np.zeros(self.model.row_lower.size - self.loans.size)
        np.add.at(out, self.slack_rows, self.slack_sign * x[self.n_x + self.n_blocks :])
        return out


def restricted_model(
    problem: AllocationProblem,
    free: np.ndarray,
    fixed_shares: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    integer: bool = False,
    elastic: bool = True,
    rhs_factor: np.ndarray | None = None,
    cost_factor: float = 1.0,
    phase_one: bool = False,
    fix_blocks: np.ndarray | None = None,
) -> Restricted:
    """Build the model over loans ``free`` (bool mask), the rest fixed at ``fixed_shares``.

    The rows of free loans in ``fixed_shares`` are ignored (they may hold a start plan).

    ``allowed`` narrows the options of free loans (default: ``problem.eligible``);
    ``rhs_factor`` scales each row's limits and block coefficients (used to solve
    a sample of the loans); ``phase_one`` drops the values to find a feasible plan;
    ``fix_blocks`` fixes the block variables (0 or 1 each; NaN leaves one free).
    """
    rows = problem.rows
    k, m = len(rows), problem.n_channels
    allowed = problem.eligible if allowed is None else allowed
    loans = np.flatnonzero(free)
    cols = np.flatnonzero((allowed & free[:, None]).ravel())
    scale = row_scale(problem)
    factor = np.ones(k) if rhs_factor is None else rhs_factor
    used = rows.matrix @ fixed_shares.ravel() if fixed_shares is not None else np.zeros(k)
    if fixed_shares is not None and loans.size:  # take the free loans' rows back out
        own = (loans[:, None] * m + np.arange(m)).ravel()
        used -= rows.matrix[:, own] @ fixed_shares[loans].ravel()
    finite_lo, finite_hi = np.isfinite(rows.lower), np.isfinite(rows.upper)
    lower = np.where(
        finite_lo, (np.where(finite_lo, rows.lower, 0.0) * factor - used) * scale, -np.inf
    )
    upper = np.where(
        finite_hi, (np.where(finite_hi, rows.upper, 0.0) * factor - used) * scale, np.inf
    )
    block_coef = rows.blocks * (factor * scale)[:, None]
    nb = len(problem.blocks)
    lo_rows, hi_rows = np.flatnonzero(np.isfinite(lower)), np.flatnonzero(np.isfinite(upper))
    slack_rows = np.concatenate([lo_rows, hi_rows]) if elastic else np.zeros(0, dtype=np.int64)
    slack_sign = np.concatenate([np.ones(lo_rows.size), -np.ones(hi_rows.size)])
    n_x, n_free = cols.size, loans.size
    ordinal = np.searchsorted(loans, cols // m)
    sub = scaled_columns(problem, cols)
    b_r, b_c = np.nonzero(block_coef)
    s_n = slack_rows.size
    r = np.concatenate([ordinal, sub.row + n_free, b_r + n_free, slack_rows + n_free])
    c = np.concatenate([np.arange(n_x), sub.col, b_c + n_x, np.arange(s_n) + n_x + nb])
    v = np.concatenate([np.ones(n_x), sub.data, block_coef[b_r, b_c], slack_sign[:s_n]])
    matrix = sp.csc_matrix((v, (r, c)), shape=(n_free + k, n_x + nb + s_n))
    values = np.zeros(n_x) if phase_one else -problem.value.ravel()[cols] * MONEY_SCALE
    block_cost = np.zeros(nb) if phase_one else -problem.block_cost * MONEY_SCALE * cost_factor
    penalty = np.full(s_n, 1.0 if phase_one else PENALTY)
    cost = np.concatenate([values, block_cost, penalty])
    eq = np.ones(n_free)
    col_upper = np.concatenate([np.ones(n_x + nb), np.full(s_n, np.inf)])
    col_lower = np.zeros(n_x + nb + s_n)
    if fix_blocks is not None:
        fixed = np.flatnonzero(np.isfinite(fix_blocks))
        col_lower[n_x + fixed] = col_upper[n_x + fixed] = fix_blocks[fixed]
    block_integer = np.array([b.integer for b in problem.blocks], dtype=bool)
    model = ArrayModel(
        cost=cost,
        matrix=matrix,
        row_lower=np.concatenate([eq, lower]),
        row_upper=np.concatenate([eq, upper]),
        col_lower=col_lower,
        col_upper=col_upper,
        integer=np.concatenate([np.ones(n_x, dtype=bool), block_integer, np.zeros(s_n, bool)])
        if integer
        else None,
    )
    return Restricted(model, loans, cols, nb, slack_rows, slack_sign[:s_n], used)


def shares_from(
    problem: AllocationProblem, restricted: Restricted, x: np.ndarray, base: np.ndarray
) -> np.ndarray:
    """The full share grid: ``base`` for fixed loans, the solution for free ones."""
    shares = base.copy()
    shares[restricted.loans] = 0.0
    flat = shares.reshape(-1)
    flat[restricted.cols] = np.clip(x[: restricted.n_x], 0.0, 1.0)
    return shares


class GrowingLP:
    """The restricted LP of :func:`restricted_model`, grown in place as loans are freed.

    Freeing a loan takes its fixed usage off the row limits and adds its
    equality row and option columns; HiGHS then restarts from the last basis
    instead of solving the larger LP from scratch. Column generation's usual
    loop (price, add, re-solve) thereby costs little more than its final LP.

    ``start`` (a grid of whole options) gives the first LP its basis: each free loan on
    its option there, solved by the dual simplex. A freed loan enters the basis at the
    option it was fixed to. Both cut the simplex iterations about twentyfold
    (benchmarks/README.md, design measurements). ``fixed_shares`` may hold the start
    plan in the free loans' rows too; with ``own`` it becomes :attr:`base` itself (its
    free rows cleared) instead of a copy, sparing a loans x channels grid. ``enforced``
    marks lazy rows (:func:`lazy_rows`) held from the first solve, e.g. those an earlier
    solve priced.
    """

    def __init__(
        self,
        problem: AllocationProblem,
        free: np.ndarray,
        fixed_shares: np.ndarray,
        phase_one: bool = False,
        fix_blocks: np.ndarray | None = None,
        start: np.ndarray | None = None,
        *,
        own: bool = False,
        enforced: np.ndarray | None = None,
    ) -> None:
        self.problem = problem
        self.phase_one = phase_one
        self.first = restricted_model(
            problem, free, fixed_shares, phase_one=phase_one, fix_blocks=fix_blocks
        )
        held = start[self.first.loans] if start is not None else None  # the free loans' start
        # From a start basis the dual simplex beats the interior point method with its
        # crossover (benchmarks/README.md, design measurements).
        self.session = HighsSession(
            self.first.model, method="simplex" if start is not None else None
        )
        self.free = free.copy()
        self.base = fixed_shares if own else fixed_shares.copy()  # own: the caller's, kept
        self.base[self.first.loans] = 0.0
        k = len(problem.rows)
        self.resource = np.arange(self.first.loans.size, self.first.loans.size + k)
        self.used = row_scale(problem) * self.first.used  # the fixed loans' usage, known
        self._grown = 0  # loans freed since the last solve
        self.lazy = lazy_rows(problem)  # scenario rows left out until a solution misses them
        if enforced is not None:
            self.lazy &= ~enforced
        # The lazy rows' block coefficients, their only entries (a few dozen each).
        self._lazy_blocks = sp.csr_matrix(problem.rows.blocks[self.lazy])
        if self.lazy.any():
            self.session.set_row_limits(self.resource, *self._limits())
        self._cols = [self.first.cols]
        self._pos = [np.arange(self.first.n_x)]
        self._ipm = start is None and self.first.model.cost.size > IPM_COLUMNS
        if held is not None:
            first, m = self.first, problem.n_channels
            ordinal = np.searchsorted(first.loans, first.cols // m)
            self._enter(held, ordinal * m + first.cols % m, np.arange(first.n_x),
                        np.arange(first.loans.size), ordinal)  # fmt: skip

    def _enter(
        self,
        shares: np.ndarray,
        cols: np.ndarray,
        pos: np.ndarray,
        eq: np.ndarray,
        ordinal: np.ndarray,
    ) -> None:
        """Start the next simplex with the loans of rows ``eq`` wholly on their ``shares``.

        Grid columns ``cols`` (model columns ``pos``, of loan ``ordinal`` among
        ``eq``) held at 1 enter the basis for the rows' slacks. Skipped unless
        every such loan holds exactly one option.
        """
        held = shares.reshape(-1)[cols] == 1.0
        if np.array_equal(np.bincount(ordinal[held], minlength=eq.size), np.ones(eq.size)):
            self.session.swap_into_basis(pos[held], eq[ordinal[held]])

    @property
    def n_free(self) -> int:
        """Loans in the model."""
        return int(self.free.sum())

    def grow(self, loans: np.ndarray) -> int:
        """Free the loans of mask ``loans`` that are still fixed; how many were."""
        problem, m = self.problem, self.problem.n_channels
        idx = np.flatnonzero(loans & ~self.free)
        if idx.size == 0:
            return 0
        rows, scale = problem.rows, row_scale(problem)
        gone = (idx[:, None] * m + np.arange(m)).ravel()
        self.used -= scale * (rows.matrix[:, gone] @ self.base[idx].ravel())
        self.session.set_row_limits(self.resource, *self._limits())
        eq = self.session.add_rows(np.ones(idx.size), np.ones(idx.size))
        mask = np.zeros(problem.n_loans, dtype=bool)
        mask[idx] = True
        cols = np.flatnonzero((problem.eligible & mask[:, None]).ravel())
        ordinal = np.searchsorted(idx, cols // m)
        sub = scaled_columns(problem, cols)
        n_rows, n_x = self.session.n_rows, cols.size
        matrix = sp.csc_matrix(
            (
                np.concatenate([np.ones(n_x), sub.data]),
                (np.concatenate([eq[ordinal], self.resource[sub.row]]),
                 np.concatenate([np.arange(n_x), sub.col])),
            ),
            shape=(n_rows, n_x),
        )  # fmt: skip
        cost = np.zeros(n_x) if self.phase_one else -problem.value.ravel()[cols] * MONEY_SCALE
        pos = self.session.add_columns(cost, np.zeros(n_x), np.ones(n_x), matrix)
        self._pos.append(pos)
        self._cols.append(cols)
        # Each freed loan starts at the option it was fixed to: the row limits gave back
        # that usage, so the basis stays primal feasible.
        self._enter(self.base, cols, pos, eq, ordinal)
        if idx.size > self.n_free and cols.size > IPM_COLUMNS:
            # More than doubled (rows met by freeing thousands of loans at once): the dual
            # simplex spends seconds repairing so new a basis; the interior point method
            # took 4.2 s where it took 8.2 s (1M loans over four quarters).
            self.session.use("ipm")
            self._ipm = True
        self.free[idx] = True
        self.base[idx] = 0.0
        self._grown += int(idx.size)
        return int(idx.size)

    def _limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Each resource row's limits (scaled) less the fixed loans' usage; lazy rows free."""
        rows, scale = self.problem.rows, row_scale(self.problem)
        lower = np.where(np.isfinite(rows.lower), rows.lower * scale - self.used, -np.inf)
        upper = np.where(np.isfinite(rows.upper), rows.upper * scale - self.used, np.inf)
        lower[self.lazy], upper[self.lazy] = -np.inf, np.inf
        return lower, upper

    def _enforce_missed(self, x: np.ndarray) -> int:
        """Enforce the lazy rows a solution ``x`` misses (block rows only); how many."""
        if not self.lazy.any():
            return 0
        rows, scale = self.problem.rows, row_scale(self.problem)
        at = np.flatnonzero(self.lazy)
        level = self._lazy_blocks @ self.y(x)
        miss = np.maximum(rows.lower[at] - level, level - rows.upper[at]) * scale[at]
        missed = at[miss > SLACK_TOL]
        if missed.size > (cap := max(LAZY_STEP, at.size // 10)):  # the most missed first
            missed = missed[np.argsort(-miss[miss > SLACK_TOL], kind="stable")[:cap]]
        if missed.size:
            self._lazy_blocks = self._lazy_blocks[np.flatnonzero(~np.isin(at, missed))]
            self.lazy[missed] = False
            self.session.set_row_limits(self.resource[missed], *(v[missed] for v in
                                                                 self._limits()))  # fmt: skip
        return int(missed.size)

    def fix_blocks(self, levels: np.ndarray) -> None:
        """Fix the block variables at ``levels`` (NaN: free in [0, 1]) for the next solves."""
        cols = np.arange(self.first.n_x, self.first.n_x + self.first.n_blocks)
        fixed = np.isfinite(levels)
        lower = np.where(fixed, np.nan_to_num(levels), 0.0)
        upper = np.where(fixed, np.nan_to_num(levels), 1.0)
        self.session.set_column_limits(cols, lower, upper)

    def solve(self, time_limit: float | None = None) -> ArraySolution:
        """Solve from the last basis (the first solve may use the interior point method).

        With the tail model's scenario rows a cold solve (presolve, then simplex) of
        an LP grown by more than a tenth beats restarting from the last basis about
        threefold, so the basis is then dropped; a few loans more restart from it, by
        the primal simplex (the freed loans enter on their fixed option, so the basis
        stays primal feasible; should it end without a status, the LP is solved cold by
        the dual simplex). Lazy rows (:func:`lazy_rows`) a solution misses are
        enforced and the LP solved again by the dual simplex (benchmarks/README.md,
        design measurements).
        """
        tail = self.problem.has_tail
        primal = False
        if tail and self.n_free > COLD_FREE and 10 * self._grown > self.n_free:
            self.session.h.clearSolver()
        else:
            primal = tail and self._grown > 0
        self._grown = 0
        deadline = time.perf_counter() + (time_limit if time_limit is not None else math.inf)
        while True:
            if tail:
                self.session.h.setOptionValue("simplex_strategy", PRIMAL if primal else DUAL)
            sol = self.session.run(max(deadline - time.perf_counter(), 0.05))
            if primal and sol.status == "error":  # the primal simplex gave up: solve cold
                self.session.h.setOptionValue("simplex_strategy", DUAL)
                self.session.h.clearSolver()
                sol = self.session.run(max(deadline - time.perf_counter(), 0.05))
            primal = False
            if self._ipm:
                self.session.use("simplex")
                self._ipm = False
            if sol.status != "optimal" or self._enforce_missed(sol.x) == 0:
                return sol

    def resource_duals(self, row_dual: np.ndarray) -> np.ndarray:
        """Duals of the resource rows (scaled units, min form)."""
        return row_dual[self.resource]

    def slack(self, x: np.ndarray) -> np.ndarray:
        """Violation of each resource row (scaled units), as :meth:`Restricted.slack`."""
        first = self.first
        return first.slack(x[: first.n_x + first.n_blocks + first.slack_rows.size])

    def y(self, x: np.ndarray) -> np.ndarray:
        """Levels of the on/off blocks."""
        return x[self.first.n_x : self.first.n_x + self.first.n_blocks]

    def shares(self, x: np.ndarray) -> np.ndarray:
        """The full share grid: fixed loans at their channel, free ones from ``x``."""
        shares = self.base.copy()
        flat = shares.reshape(-1)
        for cols, pos in zip(self._cols, self._pos, strict=True):
            flat[cols] = np.clip(x[pos], 0.0, 1.0)
        return shares

"""The grown restricted LP: restarts from a primal feasible basis, same optimum as cold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npl_disposal import build_problem, read_portfolio
from npl_disposal.datasets import make_portfolio
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._formulation import GrowingLP
from npl_disposal.solvers._pricing import argmax_shares, plan_value, reduced_values
from npl_disposal.valuation import value_options


@pytest.fixture(scope="module")
def problem() -> AllocationProblem:
    data = make_portfolio(400, 6, seed=3)
    return build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                         data.options)  # fmt: skip


def _iterations(lp: GrowingLP) -> int:
    return int(lp.session.h.getInfo().simplex_iteration_count)


def _objective(lp: GrowingLP) -> float:
    """The plan's value (CNY yuan), fixed loans included."""
    sol = lp.solve()
    assert sol.status == "optimal"
    return plan_value(lp.problem, lp.shares(sol.x), lp.y(sol.x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_start_basis_changes_the_path_not_the_optimum(
    problem: AllocationProblem, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    free = rng.random(problem.n_loans) < 0.3
    base = argmax_shares(np.where(problem.eligible, problem.value, -np.inf))
    fixed = np.where(free[:, None], 0.0, base)
    cold, warm = GrowingLP(problem, free, fixed), GrowingLP(problem, free, fixed, start=base)
    # The start plan in the free loans' rows of the fixed grid itself, the grid kept (own).
    owned = GrowingLP(problem, free, base.copy(), start=base, own=True)
    assert np.array_equal(owned.base, fixed)
    np.testing.assert_allclose(owned.first.model.row_lower, warm.first.model.row_lower)
    np.testing.assert_allclose(owned.first.model.row_upper, warm.first.model.row_upper)
    assert _objective(warm) == pytest.approx(_objective(cold), rel=1e-9, abs=1e-9)
    assert _objective(owned) == pytest.approx(_objective(cold), rel=1e-9, abs=1e-9)
    more = free | (rng.random(problem.n_loans) < 0.3)
    for lp in (cold, warm, owned):
        lp.grow(more)
    assert _objective(warm) == pytest.approx(_objective(cold), rel=1e-9, abs=1e-9)
    assert _objective(owned) == pytest.approx(_objective(cold), rel=1e-9, abs=1e-9)
    assert np.array_equal(warm.free, more)


def test_loans_freed_at_their_best_option_leave_the_basis_optimal(
    problem: AllocationProblem,
) -> None:
    """The freed loans enter the basis at their fixed option: nothing is left to pivot."""
    free = np.zeros(problem.n_loans, dtype=bool)
    free[::4] = True
    base = argmax_shares(np.where(problem.eligible, problem.value, -np.inf))
    lp = GrowingLP(problem, free, np.where(free[:, None], 0.0, base), start=base)
    sol = lp.solve()
    assert sol.status == "optimal"
    # Fix every other loan at its best option at the LP's prices, then free those loans.
    reduced = reduced_values(problem, lp.resource_duals(sol.row_dual))
    held = np.take_along_axis(reduced, lp.base.argmax(axis=1)[:, None], axis=1)[:, 0]
    priced_right = ~lp.free & (reduced.max(axis=1) - held <= 1e-6)  # CNY yuan
    assert priced_right.sum() >= 20
    before = plan_value(problem, lp.shares(sol.x), lp.y(sol.x))
    assert lp.grow(priced_right) == int(priced_right.sum())
    again = lp.solve()
    assert again.status == "optimal"
    assert _iterations(lp) == 0
    assert plan_value(problem, lp.shares(again.x), lp.y(again.x)) == pytest.approx(
        before, rel=1e-12
    )


@given(st.lists(st.integers(-1, 6), max_size=60))
def test_each_branch_lists_its_loans_in_order(codes: list[int]) -> None:
    from npl_disposal.model.rows import _loans_by_branch

    branch_of = np.array(codes, dtype=np.int64)
    loans_of = _loans_by_branch(branch_of)
    for b in range(int(branch_of.max(initial=-1)) + 3):  # and branches without loans after
        assert loans_of(b).tolist() == np.flatnonzero(branch_of == b).tolist()


def test_row_reach_recorded_at_build_equals_the_matrix() -> None:
    data = make_portfolio(300, 4, seed=5)
    problem = build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                            value_options(data.loans))  # fmt: skip
    matrix = problem.rows.matrix
    direct = np.bincount(matrix.indices, weights=np.abs(matrix.data), minlength=matrix.shape[0])
    np.testing.assert_allclose(problem.rows.reach, direct, rtol=1e-12)


@given(
    st.integers(1, 30),
    st.integers(1, 4),
    st.lists(st.lists(st.integers(0, 10**6), max_size=25), max_size=8),
    st.sampled_from(["1", "3"]),
)
def test_rows_built_by_column_equal_scipys_conversion(
    n: int, m: int, rows: list[list[int]], threads: str
) -> None:
    """Each row's options (distinct, ascending) land in their columns, rows in order."""
    import os

    import scipy.sparse as sp

    from npl_disposal.model.rows import RowBuilder

    os.environ["NPL_DISPOSAL_THREADS"] = threads
    try:
        builder = RowBuilder(n, m, ())
        expected = []
        for r, seeds in enumerate(rows):
            cols = np.unique(np.array(seeds, dtype=np.int64) % (n * m))
            vals = np.arange(1, cols.size + 1) * (r + 1.5)
            builder.add(f"r{r}", "rule", "CNY", cols, vals)
            expected.append(sp.csr_matrix((vals, cols, [0, cols.size]), shape=(1, n * m)))
        got = builder.build().matrix
    finally:
        del os.environ["NPL_DISPOSAL_THREADS"]
    want = sp.vstack(expected, format="csc") if expected else sp.csc_matrix((0, n * m))
    assert got.shape == want.shape
    assert (got != want).nnz == 0
    assert got.has_sorted_indices  # each column's rows ascending (checked, not assumed)


def test_a_row_listing_an_option_twice_is_refused() -> None:
    from npl_disposal.model.rows import RowBuilder

    builder = RowBuilder(3, 2, ())
    builder.add("r", "rule", "CNY", np.array([1, 1, 4]), np.ones(3))
    with pytest.raises(AssertionError, match="lists an option twice"):
        builder.build()

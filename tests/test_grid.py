"""Per-loan grid reductions equal NumPy's, ties and -inf included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npl_disposal import _grid as grid
from npl_disposal._grid import best_two, row_argmax, row_max

# Few distinct values, so that ties and all -inf rows are common.
values = st.sampled_from([-np.inf, -2.5, -1.0, 0.0, 0.0, 1.0, 3.25, 1e12])
grids = st.integers(1, 6).flatmap(
    lambda m: arrays(np.float64, st.tuples(st.integers(0, 40), st.just(m)), elements=values)
)


@settings(max_examples=200, deadline=None)
@given(grids, st.sampled_from([1, 3, 7, 32_768]))
def test_reductions_equal_numpy(values: np.ndarray, block: int) -> None:
    old = grid.BLOCK_ROWS
    grid.BLOCK_ROWS = block  # small blocks exercise the block edges
    try:
        best, top, second = best_two(values)
        np.testing.assert_array_equal(best, values.argmax(axis=1))
        np.testing.assert_array_equal(top, values.max(axis=1))
        np.testing.assert_array_equal(row_max(values), values.max(axis=1))
        some = np.arange(values.shape[1])[::2]  # a subset of the columns, as a closed channel
        np.testing.assert_array_equal(row_max(values, some), values[:, some].max(axis=1))
        mask = values > np.median(values) if values.size else values > 0
        np.testing.assert_array_equal(
            row_max(values, where=mask, fill=0.0), np.where(mask, values, 0.0).max(axis=1)
        )
        np.testing.assert_array_equal(row_argmax(values), values.argmax(axis=1))
        if values.shape[1] > 1:
            expected = np.sort(values, axis=1)[:, -2]
        else:
            expected = np.full(len(values), -np.inf)
        np.testing.assert_array_equal(second, expected)
    finally:
        grid.BLOCK_ROWS = old


def test_non_contiguous_views_and_no_columns() -> None:
    base = np.arange(60.0).reshape(10, 6)[::2, ::2] * np.array([1.0, -1.0, 0.5])
    np.testing.assert_array_equal(row_max(base), base.max(axis=1))
    np.testing.assert_array_equal(best_two(base)[0], base.argmax(axis=1))
    empty = np.zeros((4, 0))
    assert np.all(row_max(empty) == -np.inf)
    best, top, second = best_two(empty)
    assert best.tolist() == [0] * 4 and np.all(top == -np.inf) and np.all(second == -np.inf)


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (5, 1)])
def test_edge_shapes(shape: tuple[int, int]) -> None:
    values = np.random.default_rng(1).normal(size=shape)
    best, top, second = best_two(values)
    np.testing.assert_array_equal(best, values.argmax(axis=1) if shape[0] else [])
    np.testing.assert_array_equal(top, values.max(axis=1) if shape[0] else [])
    assert np.all(second == -np.inf)


@given(
    st.lists(st.tuples(st.integers(0, 50), st.floats(0.01, 10.0)), min_size=0, max_size=300),
    st.floats(0.0, 400.0),
    st.integers(1, 8),
)
def test_cheapest_cover_takes_the_lowest_ratios_until_the_need_is_met(
    pairs: list[tuple[int, float]], need: float, first: int
) -> None:
    """As a full stable sort would: lowest ratio first, until the gains reach the need."""
    import npl_disposal.solvers._pricing as d

    ratio = np.array([float(r) for r, _ in pairs])
    gain = np.array([g for _, g in pairs])
    reference = np.argsort(ratio, kind="stable")
    want = reference[: np.searchsorted(np.cumsum(gain[reference]), need) + 1]
    got = d._cheapest_cover(ratio, gain, need, first=first)
    assert sorted(ratio[got]) == sorted(ratio[want])
    total = np.cumsum(gain[got])
    if got.size:
        assert total[-1] >= need or got.size == ratio.size
        assert got.size == 1 or total[-2] < need

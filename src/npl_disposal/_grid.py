"""Per-loan reductions over the loan x channel grid, one pass per channel.

The grids (value, reduced value, shares) are ``(loans, channels)`` arrays in row order
with a handful of channels. NumPy reduces such an array along its short rows slowly.
Here each block of rows that fits in the processor's cache is reduced by one vectorised
pass per channel, several times faster (benchmarks/README.md, design measurements). The
results equal NumPy's, ties included (the first best channel wins, as in ``argmax``);
the grids hold no NaN (an ineligible option is -inf).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Rows reduced at a time: a block's few float64 columns stay in cache.
BLOCK_ROWS = 32_768


def row_max(
    grid: np.ndarray,
    columns: Sequence[int] | np.ndarray | None = None,
    where: np.ndarray | None = None,
    fill: float = -np.inf,
) -> np.ndarray:
    """Each row's maximum, as ``grid.max(axis=1)`` (rows with no columns: -inf).

    ``columns`` limits it to those columns, as ``grid[:, columns].max(axis=1)``;
    ``where`` (a boolean grid) counts only its cells, the others as ``fill``, as
    ``np.where(where, grid, fill).max(axis=1)``; neither copies the grid.
    """
    n = grid.shape[0]
    cols = list(range(grid.shape[1])) if columns is None else [int(j) for j in columns]
    if not cols:
        return np.full(n, -np.inf)
    top = np.empty(n)
    for start in range(0, n, BLOCK_ROWS):
        block, out = grid[start : start + BLOCK_ROWS], top[start : start + BLOCK_ROWS]
        mask = where[start : start + BLOCK_ROWS] if where is not None else None
        for i, j in enumerate(cols):
            column = block[:, j] if mask is None else np.where(mask[:, j], block[:, j], fill)
            if i == 0:
                out[:] = column
            else:
                np.maximum(out, column, out=out)
    return top


def row_argmax(grid: np.ndarray) -> np.ndarray:
    """Each row's first position of its maximum, as ``grid.argmax(axis=1)``."""
    return best_two(grid)[0]


def best_two(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: position of the best column, its value, and the second best value.

    The second best is the largest value in any other column (-inf with a
    single column); the best position is the first maximum, as ``argmax``.
    """
    n, m = grid.shape
    if m == 0:
        return np.zeros(n, dtype=np.intp), np.full(n, -np.inf), np.full(n, -np.inf)
    if m > np.iinfo(np.int16).max:
        return grid.argmax(axis=1), grid.max(axis=1), _second_by_sort(grid)
    best = np.zeros(n, dtype=np.int16)
    top = np.empty(n)
    second = np.full(n, -np.inf)
    size = min(BLOCK_ROWS, n)
    column, lower = np.empty(size), np.empty(size)
    better, step = np.empty(size, dtype=bool), np.empty(size, dtype=np.int16)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        k, block = stop - start, grid[start:stop]
        b_best, b_top, b_second = best[start:stop], top[start:stop], second[start:stop]
        col, low, up, pos = column[:k], lower[:k], better[:k], step[:k]
        b_top[:] = block[:, 0]
        for j in range(1, m):
            np.copyto(col, block[:, j])
            np.greater(col, b_top, out=up)
            # Branch-free "best = j where better": j exceeds every earlier position.
            np.multiply(up, np.int16(j), out=pos)
            np.maximum(b_best, pos, out=b_best)
            # The loser of (best so far, this column) competes for second place.
            np.minimum(b_top, col, out=low)
            np.maximum(b_second, low, out=b_second)
            np.maximum(b_top, col, out=b_top)
    return best.astype(np.intp), top, second


def _second_by_sort(grid: np.ndarray) -> np.ndarray:
    if grid.shape[1] < 2:
        return np.full(grid.shape[0], -np.inf)
    return np.partition(grid, -2, axis=1)[:, -2]

"""Blocks of loans on threads: every slice once, errors raised, the thread count read."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npl_disposal._threads import THREADS_VARIABLE, for_blocks, thread_count


@given(n=st.integers(0, 500), size=st.integers(1, 60), threads=st.integers(1, 4))
def test_every_position_is_handled_once(n: int, size: int, threads: int) -> None:
    import os

    os.environ[THREADS_VARIABLE] = str(threads)
    try:
        seen = np.zeros(n, dtype=np.int64)
        lengths: list[int] = []
        lock = threading.Lock()

        def work(piece: slice) -> None:
            seen[piece] += 1
            with lock:
                lengths.append(piece.stop - piece.start)

        for_blocks(n, size, work)
    finally:
        del os.environ[THREADS_VARIABLE]
    assert (seen == 1).all()
    assert all(0 < k <= size for k in lengths)
    assert len(lengths) == -(-n // size)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_an_error_in_a_block_is_raised(threads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, threads)

    def work(piece: slice) -> None:
        if piece.start == 20:
            raise ZeroDivisionError("block 20")

    with pytest.raises(ZeroDivisionError, match="block 20"):
        for_blocks(50, 10, work)


def test_one_thread_runs_the_blocks_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    order: list[int] = []
    names: set[str] = set()

    def work(piece: slice) -> None:
        order.append(piece.start)
        names.add(threading.current_thread().name)

    for_blocks(35, 10, work)
    assert order == [0, 10, 20, 30]
    assert names == {threading.current_thread().name}


def test_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, " 3 ")
    assert thread_count() == 3
    monkeypatch.delenv(THREADS_VARIABLE)
    assert thread_count() >= 1
    for bad in ["0", "-2", "two", "1.5"]:
        monkeypatch.setenv(THREADS_VARIABLE, bad)
        with pytest.raises(ValueError, match=f"{THREADS_VARIABLE}={bad!r}: give a positive"):
            thread_count()


def test_for_each_calls_every_item_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from npl_disposal._threads import for_each

    monkeypatch.setenv(THREADS_VARIABLE, "2")
    out = np.zeros(6)

    def work(i: int) -> None:
        out[i] += i + 1

    for_each(work, list(range(6)))
    assert out.tolist() == [1, 2, 3, 4, 5, 6]

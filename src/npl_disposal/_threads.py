"""Blocks of loans on the machine's cores.

NumPy releases the interpreter lock inside its array loops, so independent blocks of
tens of thousands of loans run side by side on threads (benchmarks/README.md, design
measurements). The number of threads is the cores this process may use, or
``NPL_DISPOSAL_THREADS`` when set (``1`` runs every block in the calling thread, in
order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["for_blocks", "for_each", "thread_count"]

T = TypeVar("T")

#: Environment variable that sets the number of threads (a positive integer).
THREADS_VARIABLE = "NPL_DISPOSAL_THREADS"


def thread_count() -> int:
    """Threads to use: ``NPL_DISPOSAL_THREADS`` if set, else the cores available."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if text:
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(
                f"{THREADS_VARIABLE}={text!r}: give a positive whole number of threads "
                "(1 runs on one core), or unset it to use every core available"
            )
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def for_blocks(n: int, size: int, work: Callable[[slice], object]) -> None:
    """Call ``work(piece)`` for consecutive slices of ``size`` over ``range(n)``.

    The slices run on :func:`thread_count` threads; ``work`` must write only to its
    own slice of shared outputs. The first error raised by any block is raised here.
    """
    for_each(work, [slice(start, min(start + size, n)) for start in range(0, n, size)])


def for_each(work: Callable[[T], object], items: Sequence[T]) -> None:
    """Call ``work(item)`` for every item, on :func:`thread_count` threads.

    The calls must be independent (each writes only its own outputs). The first
    error raised by any call is raised here.
    """
    threads = min(thread_count(), len(items))
    if threads <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="npl-block") as pool:
        for _ in pool.map(work, items):
            pass

"""Blocks of loans on the machine's cores.

NumPy releases the interpreter lock inside its array loops, so independent blocks of
tens of thousands of loans run side by side on threads (benchmarks/README.md, design
measurements). The number of threads is the cores this process may use, or
``NPL_DISPOSAL_THREADS`` when set (``1`` runs every block in the calling thread, in
order).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
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
    # The calling thread takes items too, beside threads - 1 started for the call: a
    # plan makes a dozen such calls, each a few milliseconds of work, and starting a
    # pool's threads and waiting on them cost about as much again.
    order = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[tuple[int, BaseException]] = []

    def take() -> None:
        while True:
            with lock:
                i = next(order, None) if not errors else None
            if i is None:
                return
            try:
                work(items[i])
            except BaseException as exc:  # raised in the calling thread below
                with lock:
                    errors.append((i, exc))

    helpers = [threading.Thread(target=take, name=f"npl-block_{k}", daemon=True)
               for k in range(threads - 1)]  # fmt: skip
    for helper in helpers:
        helper.start()
    take()
    for helper in helpers:
        helper.join()
    if errors:  # the first item's error, as a loop over the items would raise
        raise min(errors, key=lambda e: e[0])[1]

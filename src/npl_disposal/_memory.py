"""Memory freed by the large steps: handed back to the system, or kept for reuse.

Both are process-wide, so the library never calls them itself: a program does (the
``npl-disposal`` command line calls both), a service decides for itself.

Arrow's allocator (mimalloc or jemalloc) keeps freed blocks for reuse, and
glibc keeps freed heap pages: after a large options table is read and matched,
the process holds a good part of it that it no longer uses. Released, the solve
that follows peaks that much lower. Releasing takes a few milliseconds.

A batch job that runs one large plan gains more from the opposite:
:func:`keep_freed_memory` (the command line calls it) has glibc place large
arrays in its heap and keep freed pages there, so the next array reuses them
instead of faulting fresh pages in from the kernel, which took a third of a
ten-million-loan job's time (benchmarks/README.md, design measurements).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

__all__ = ["keep_freed_memory", "release_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_keeping = False


def release_memory() -> None:
    """Return freed but cached memory to the system (Arrow's pool; glibc's heap on Linux).

    After :func:`keep_freed_memory`, glibc's heap is kept: only Arrow's pool is released.
    """
    pyarrow = sys.modules.get("pyarrow")  # only if already in use: never import it here
    if pyarrow is not None:
        with contextlib.suppress(AttributeError, NotImplementedError):  # older pyarrow
            pyarrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux") and not _keeping:
        with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl)
            ctypes.CDLL(None).malloc_trim(0)


def keep_freed_memory() -> bool:
    """Keep memory this process frees for its own reuse (glibc on Linux); True if set.

    Process-wide and for the rest of the process: arrays of any size come from
    glibc's heap (no mapping per array), and freed memory at the top of the heap is
    kept up to 2 GB. The peak stays about the same (what is freed is what the next
    step reuses), but the process hands little back until it exits: right for a batch
    job, not for a long-lived service between jobs. Elsewhere this does nothing.
    """
    global _keeping
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = (
        mallopt(_M_MMAP_MAX, 0)
        and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        and mallopt(_M_TOP_PAD, 256 * 2**20)
    )
    _keeping = _keeping or bool(done)
    return bool(done)

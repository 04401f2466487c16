"""``memory.release_unused`` hands Arrow's cached blocks back to the system."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from npl_disposal.memory import release_unused


def _rss_mb() -> float:
    resident = Path("/proc/self/statm").read_text().split()[1]
    return int(resident) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_freed_arrow_memory_leaves_the_process() -> None:
    pa = pytest.importorskip("pyarrow")
    pc = pytest.importorskip("pyarrow.compute")
    release_unused()
    base = _rss_mb()
    big = pc.add(pa.array(np.arange(25_000_000, dtype=np.float64)), 1.0)  # 200 MB in Arrow
    assert _rss_mb() - base > 150
    del big
    release_unused()
    assert _rss_mb() - base < 100


def test_release_is_harmless_without_arrow_in_use() -> None:
    release_unused()
    release_unused()

"""``memory.release_memory`` hands Arrow's cached blocks back to the system."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from npl_disposal._memory import release_memory


def _rss_mb() -> float:
    resident = Path("/proc/self/statm").read_text().split()[1]
    return int(resident) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_freed_arrow_memory_leaves_the_process() -> None:
    pa = pytest.importorskip("pyarrow")
    pc = pytest.importorskip("pyarrow.compute")
    release_memory()
    base = _rss_mb()
    big = pc.add(pa.array(np.arange(25_000_000, dtype=np.float64)), 1.0)  # 200 MB in Arrow
    assert _rss_mb() - base > 150
    del big
    release_memory()
    assert _rss_mb() - base < 100


def test_release_never_imports_arrow_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Arrow is not in use, releasing does not import it (and works twice)."""
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    release_memory()
    release_memory()
    assert "pyarrow" not in sys.modules


_REUSE = """
import resource, numpy as np
from npl_disposal._memory import keep_freed_memory, release_memory
kept = {keep}
if kept:
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(40_000_000).sum()  # 320 MB, faulted in, then freed
release_memory()
before = faults()
np.ones(40_000_000).sum()  # the same size again
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_kept_memory_is_reused_without_faulting_it_in_again() -> None:
    """With freed memory kept, a second array of the same size needs almost no new pages."""
    counts = {}
    for keep in (False, True):
        done = subprocess.run(
            [sys.executable, "-c", _REUSE.format(keep=keep)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if keep and done.returncode != 0 and "AssertionError" in done.stderr:
            pytest.skip("mallopt is not available (not glibc)")
        assert done.returncode == 0, done.stderr
        counts[keep] = int(done.stdout.split()[-1])
    assert counts[True] * 10 < max(counts[False], 1)

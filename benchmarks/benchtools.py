"""Helpers the benchmark scripts share: memory readings, child processes, tables.

Memory is read from the operating system, not traced: ``tracemalloc`` slows a
1M-loan run several-fold. ``peak_rss_mb`` is the process's high-water resident
set (``getrusage`` ``ru_maxrss``); on Linux ``reset_peak`` restarts that mark
(``/proc/self/clear_refs``), so a stage's own peak can be read after it.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

import npl_disposal

#: Lines a child process prints for its parent start with this.
RECORD_PREFIX = "@npl-bench "


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (since start or the last reset)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KB


def rss_mb() -> float | None:
    """Current resident set size in MB (``None`` where ``/proc`` is missing)."""
    try:
        resident = Path("/proc/self/statm").read_text().split()[1]
    except OSError:
        return None
    return int(resident) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> bool:
    """Restart the peak-RSS mark (Linux >= 4.0); False where the system cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def child_env() -> dict[str, str]:
    """Environment for a child Python that must import this ``npl_disposal`` and conftest."""
    here = str(Path(__file__).resolve().parent)
    package_root = str(Path(npl_disposal.__file__).resolve().parents[1])
    paths = [package_root, here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def fmt(value: object, spec: str = ",.2f", missing: str = "-") -> str:
    """Format a number for a table (``missing`` for None or NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return missing
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False, left: int = 1
) -> str:
    """A plain-text (or Markdown) table; the first ``left`` columns left-aligned, the rest right."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts)

    if markdown:
        rule = (
            "|"
            + "|".join(
                ":" + "-" * (w + 1) if i < left else "-" * (w + 1) + ":"
                for i, w in enumerate(widths)
            )
            + "|"
        )
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])

"""The Dask cluster: connecting or starting one, and workers' memory readings."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from npl_disposal.distributed._deps import _distributed


@contextmanager
def _connect(client: Any, n_workers: int | None, n_parts: int) -> Iterator[Any]:
    """The client to use: the one given, one connected to an address, or a local cluster."""
    dist = _distributed()
    if isinstance(client, dist.Client):
        yield client
        return
    if isinstance(client, str):
        remote = dist.Client(client)
        try:
            yield remote
        finally:
            remote.close()
        return
    if client is not None:
        raise TypeError(
            f"client must be a distributed.Client, a scheduler address or None, not {client!r}"
        )
    workers = n_workers or max(1, min(n_parts, os.cpu_count() or 1))
    cluster = dist.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    local = dist.Client(cluster)
    try:
        yield local
    finally:
        local.close()
        cluster.close()


def _pick(pair: tuple[Any, ...], i: int) -> Any:
    return pair[i]


def _peak_memory_mb() -> float:
    """Peak resident memory of the calling process, MB (Linux: VmHWM; else ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return math.nan
    # ru_maxrss survives fork + exec, so a worker started by a large process reports its size
    scale = 1024.0 if os.uname().sysname != "Darwin" else 1.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6

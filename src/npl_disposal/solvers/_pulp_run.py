"""Running a PuLP solver within a deadline, and reading the bound it proved.

PuLP passes the time limit to the solver, but a command-line solver honours it only
where it looks at the clock: CBC, for one, does not during its first LP, which took
17 s of a 1 s limit on 100,000 loans. :func:`run_within` watches the clock itself
and stops the solver's process at the deadline (PuLP then finds no solution file and
the backend reports no plan). Solvers PuLP calls in-process (its highspy API) stop
by their own time limit.

CBC proves a bound it does not hand to PuLP; with ``logPath`` it writes its log, and
:func:`cbc_bound` reads the bound there.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pulp

__all__ = ["Run", "cbc_bound", "run_within"]

#: The solvers that write a CBC log when given ``logPath``.
CBC_SOLVERS = ("PULP_CBC_CMD", "COIN_CMD")

#: One watched solve at a time changes a PuLP module's ``subprocess`` (see :class:`_Watched`).
_SWAP = threading.Lock()


@dataclass(frozen=True)
class Run:
    """How a solve ended: stopped at the deadline by us, the seconds, the solver's log."""

    stopped: bool
    seconds: float
    log: str


def run_within(prob: Any, solver: Any, deadline: float) -> Run:
    """``prob.solve(solver)``, its process stopped at ``deadline`` (``time.perf_counter``).

    A command-line solver's files (model, solution, CBC's log, returned in
    :attr:`Run.log`) go to a temporary folder removed afterwards, even when the
    process was stopped. Raises what ``prob.solve`` raises, except when it fails
    because the process was stopped (then ``stopped`` is true).
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="npl_disposal-pulp-") as folder:
        if hasattr(solver, "tmpDir"):
            solver.tmpDir = folder
        log_path = os.path.join(folder, "cbc.log") if solver.name in CBC_SOLVERS else None
        if log_path is not None:
            solver.optionsDict["logPath"] = log_path
        with _watched(sys.modules.get(type(solver).__module__), deadline) as watch:
            try:
                prob.solve(solver)
            except pulp.PulpSolverError:
                if not watch.stopped:
                    raise
        return Run(watch.stopped, time.perf_counter() - start, _read(log_path))


def _read(path: str | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


#: ``Lower bound: -51345.211`` in CBC's closing lines: its global bound when it stopped.
_LOWER = re.compile(r"^Lower bound:\s*(\S+)", re.MULTILINE)
#: ``Cuts at root node changed objective from -17.6451 to -17.5315``: the root bound.
_ROOT = re.compile(r"^Cuts at root node changed objective from \S+ to (\S+)", re.MULTILINE)
#: ``Continuous objective value is -17.6451 - 0.00 seconds``: the LP relaxation.
_CONTINUOUS = re.compile(r"^Continuous objective value is (\S+)", re.MULTILINE)


def cbc_bound(log: str) -> float | None:
    """The lower bound CBC proved on its minimisation (its units), read from its log.

    ``Lower bound:`` where CBC writes one (it stopped before the end of its search),
    else the root node's bound after its cuts, else its LP relaxation. A plain
    "Optimal solution found" is not read as a bound: CBC once claimed an optimum
    2.6e-7 (relative) short of a plan HiGHS found, with a relative gap of 1e-7.
    None when the log says none of these.
    """
    for pattern in (_LOWER, _ROOT, _CONTINUOUS):
        found = _number(pattern.findall(log))
        if found is not None:
            return found
    return None


def _number(found: list[str]) -> float | None:
    try:
        value = float(found[-1]) if found else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class _Watched:
    """A stand-in for the ``subprocess`` module that remembers the processes it starts.

    Only processes started by the thread that asked are remembered; the watchdog
    kills them at the deadline.
    """

    def __init__(self, real: ModuleType, owner: int) -> None:
        self._real, self._owner = real, owner
        self.started: list[Any] = []
        self.stopped = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def Popen(self, *args: Any, **kwargs: Any) -> Any:
        process = self._real.Popen(*args, **kwargs)
        if threading.get_ident() == self._owner:
            self.started.append(process)
        return process

    def call(self, *args: Any, **kwargs: Any) -> int:
        with self.Popen(*args, **kwargs) as process:
            return int(process.wait())

    def check_call(self, *args: Any, **kwargs: Any) -> int:
        code = self.call(*args, **kwargs)
        if code:
            raise self._real.CalledProcessError(code, args[0] if args else kwargs.get("args"))
        return 0

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                self.stopped = True


@contextlib.contextmanager
def _watched(module: ModuleType | None, deadline: float) -> Iterator[_Watched]:
    """While inside, ``module.subprocess`` records processes; they are killed at ``deadline``."""
    real = getattr(module, "subprocess", None)
    if module is None or not isinstance(real, ModuleType) or not math.isfinite(deadline):
        yield _Watched(sys.modules["subprocess"], threading.get_ident())
        return
    watch = _Watched(real, threading.get_ident())
    done = threading.Event()

    def watchdog() -> None:  # past the deadline, any process the solve starts is stopped
        while not done.wait(min(0.05, max(deadline - time.perf_counter(), 0.0)) or 0.05):
            if time.perf_counter() >= deadline:
                watch.stop()

    with _SWAP:
        module.subprocess = watch  # type: ignore[attr-defined]
        thread = threading.Thread(target=watchdog, name="npl_disposal-deadline", daemon=True)
        thread.start()
        try:
            yield watch
        finally:
            done.set()
            thread.join()
            module.subprocess = real  # type: ignore[attr-defined]

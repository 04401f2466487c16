"""Solver backends by name: HiGHS from arrays (the default), or any solver PuLP drives.

``get_backend("highs")`` is :class:`~npl_disposal.solvers.highs_backend.HighsBackend`;
any other name is a PuLP solver (:class:`~npl_disposal.solvers.pulp_backend.PulpBackend`),
checked against what PuLP finds installed. :func:`available_solvers` lists what works
here. A backend solves a problem in one mode and hands back an
:class:`~npl_disposal.solvers._outcome.Outcome`, which :func:`~npl_disposal.solve`
verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from npl_disposal.exceptions import SolverUnavailableError
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.solvers._outcome import Outcome
from npl_disposal.solvers.highs_backend import HighsBackend

__all__ = ["BACKENDS", "Backend", "available_solvers", "get_backend"]


class Backend(Protocol):
    """What :func:`~npl_disposal.solve` asks of a backend."""

    @property
    def name(self) -> str:
        """How results name the backend (``highs``, ``pulp:PULP_CBC_CMD``)."""
        ...

    def solve(
        self,
        problem: AllocationProblem,
        mode: str,
        method: str,
        time_limit: float | None,
        mip_gap: float,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[Outcome, str]:
        """The raw outcome of one solve, and the method used."""
        ...


def available_solvers() -> list[str]:
    """The solvers usable here: ``highs`` and what PuLP finds installed.

    PuLP is imported here, not with this module: a plan on HiGHS never needs it.
    """
    from npl_disposal.solvers.pulp_backend import available_solvers as pulp_solvers

    return pulp_solvers()


def _highs() -> Backend:
    try:
        import highspy  # noqa: F401
    except ImportError as exc:  # pragma: no cover - highspy is a core dependency
        raise SolverUnavailableError(
            "HiGHS is not installed; install it with: pip install highspy"
        ) from exc
    return HighsBackend()


#: Backends known by name (lower case); any other name goes to PuLP.
BACKENDS: dict[str, Callable[[], Backend]] = {"highs": _highs}


def get_backend(name: str) -> Backend:
    """The backend called ``name``: ``"highs"``, or a PuLP solver name or alias.

    Raises :class:`~npl_disposal.SolverUnavailableError` naming what is available here
    and what to install when ``name`` cannot be used.
    """
    factory = BACKENDS.get(name.strip().lower())
    if factory is not None:
        return factory()
    from npl_disposal.solvers.pulp_backend import PulpBackend, get_solver

    get_solver(name)  # unknown or not installed: say so now, before any work
    return PulpBackend(name)

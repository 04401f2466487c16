"""The ``npl-disposal`` command line (also ``python -m npl_disposal``).

Exit status: 0 done, 2 bad input (the message names file, row, loan_id and
column; or a file that cannot be read or written, a disk full, an unusable solver
setting), 3 the
policy cannot be met, 4 no feasible plan within the time limit, 130 / 143 stopped by
Ctrl-C / SIGTERM, 141 standard output closed early. Nothing is written unless the whole
run succeeds, and an output folder is replaced as one. ``--progress`` (and
``-v/--verbose``) show each stage and its seconds on standard error; standard
output carries only the command's results.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from npl_disposal._memory import keep_freed_memory
from npl_disposal.cli._exits import (
    EXIT_BAD_INPUT,
    EXIT_INFEASIBLE,
    EXIT_NO_PLAN,
    EXIT_OK,
    EXIT_PIPE,
)
from npl_disposal.cli._parser import build_parser
from npl_disposal.exceptions import (
    ChannelWarning,
    ExcelUnavailableError,
    InfeasiblePolicyError,
    MigrationWarning,
    OutputError,
    PolicyError,
    PortfolioValidationError,
    SolverError,
    SolverUnavailableError,
)

if TYPE_CHECKING:
    from npl_disposal.cli._commands import Command

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INFEASIBLE",
    "EXIT_NO_PLAN",
    "EXIT_OK",
    "EXIT_PIPE",
    "build_parser",
    "main",
    "run",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse arguments, run the command, map errors to exit statuses.

    Ctrl-C and SIGTERM stop the run with one line and 130 / 143 (outputs are written all
    or nothing, so an output folder stays as it was); standard output closed early (as
    by ``| head``) ends the run quietly with 141.
    """
    args = build_parser().parse_args(argv)
    try:
        with _stoppable(), warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _dispatch(args)
    except Stopped as stop:
        name = signal.Signals(stop.signum).name
        done = "its output was written first" if getattr(args, "written", False) else (
            "nothing was written"
        )
        print(f"npl-disposal: stopped by {name}; {done}", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None,
                  line: str | None = None) -> None:  # fmt: skip
    """The library's warnings as one line a user reads; others as Python shows them."""
    if issubclass(category, (ChannelWarning, MigrationWarning)):
        print(f"npl-disposal: warning: {message}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def _dispatch(args: argparse.Namespace) -> int:
    func: Command = args.func
    try:
        return func(args)
    except (PortfolioValidationError, PolicyError, OutputError, SolverUnavailableError,
            ExcelUnavailableError, FileNotFoundError) as exc:  # fmt: skip
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfeasiblePolicyError as exc:
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return EXIT_INFEASIBLE
    except SolverError as exc:
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"npl-disposal: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        raise
    except OSError as exc:  # a disk full, a folder not writable, a file not readable
        done = "its output was written first" if getattr(args, "written", False) else (
            "nothing was written; an output folder there was left as it was"
        )
        print(f"npl-disposal: {_os_problem(exc)}; {done}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _os_problem(exc: OSError) -> str:
    """``/data/out: No space left on device``: the path and the system's reason."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


class Stopped(BaseException):
    """The run was stopped by a signal (Ctrl-C, SIGTERM); ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    # The first signal stops the run; later ones wait until its clean-up is done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped(signum)


@contextlib.contextmanager
def _stoppable() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise :class:`Stopped` while the command runs (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _quiet_stdout() -> None:
    """Point standard output at nothing, so the interpreter's last flush cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run() -> int:
    """The ``npl-disposal`` program: :func:`main` in a process that keeps freed memory.

    A job runs one large plan, so memory its steps free is kept for the next step
    rather than faulted in afresh (:func:`npl_disposal.keep_freed_memory`), and the
    process ends without tearing that plan down object by object. The cyclic garbage
    collector is off for the run: a plan's large objects are arrays and frames freed by
    reference counting, and the few objects left in cycles (about 1,500 at 100,000
    loans) are freed with the process, while the collector's passes over every object
    the imports and the tables create cost 0.05-0.15 s of CPU at 100,000 loans.
    NumPy's OpenBLAS runs on one thread (:func:`_one_blas_thread`).
    """
    _one_blas_thread()
    keep_freed_memory()
    gc.disable()
    _end_process(main())


#: Environment variable OpenBLAS reads, when NumPy is imported, for its thread count.
BLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"


def _one_blas_thread() -> None:
    """Have NumPy's OpenBLAS use one thread, unless ``OPENBLAS_NUM_THREADS`` says otherwise.

    A plan's BLAS calls are dot products and matrix-vector products over the loans,
    a millisecond or less each; OpenBLAS's extra threads then wait for work by
    spinning, which at 100,000 loans cost 0.4 s of CPU of a 1.8 s run and, on a
    busy machine, the wall-clock time of waking them. Set before NumPy is imported
    (the command line imports it only when a command runs); a value already in the
    environment is kept.
    """
    os.environ.setdefault(BLAS_THREADS_VARIABLE, "1")


def _end_process(status: int) -> NoReturn:
    """Leave the process at once with ``status``, standard output and error flushed.

    Every output file is written and in place by now; what a normal exit would add is the
    interpreter freeing a large plan's objects one by one, a tenth of a second and more at
    100,000 loans, which serves nobody. Standard output closed early ends with 141.
    """
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _quiet_stdout()
        status = EXIT_PIPE
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(run())

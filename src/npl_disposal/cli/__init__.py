"""The ``npl-disposal`` command line (also ``python -m npl_disposal``).

Exit status: 0 done, 2 bad input (the message names file, row, loan_id and
column), 3 the policy cannot be met, 4 no feasible plan within the time limit.
Nothing is written unless the whole run succeeds. ``--progress`` (and
``-v/--verbose``) show each stage and its seconds on standard error; standard
output carries only the command's results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from npl_disposal._memory import keep_freed_memory
from npl_disposal.cli._commands import (
    EXIT_BAD_INPUT,
    EXIT_INFEASIBLE,
    EXIT_NO_PLAN,
    EXIT_OK,
    Command,
)
from npl_disposal.cli._parser import build_parser
from npl_disposal.exceptions import (
    InfeasiblePolicyError,
    PolicyError,
    PortfolioValidationError,
    SolverError,
    SolverUnavailableError,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INFEASIBLE",
    "EXIT_NO_PLAN",
    "EXIT_OK",
    "build_parser",
    "main",
    "run",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse arguments, run the command, map errors to exit statuses."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except (PortfolioValidationError, PolicyError, FileNotFoundError) as exc:
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfeasiblePolicyError as exc:
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return EXIT_INFEASIBLE
    except (SolverUnavailableError, SolverError) as exc:
        print(f"npl-disposal: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"npl-disposal: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def run() -> int:
    """The ``npl-disposal`` program: :func:`main` in a process that keeps freed memory.

    A job runs one large plan, so memory its steps free is kept for the next step
    rather than faulted in afresh (:func:`npl_disposal.keep_freed_memory`).
    """
    keep_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(run())

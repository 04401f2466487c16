"""The ``npl-disposal`` command line (also ``python -m npl_disposal``).

Exit status: 0 done, 2 bad input (the message names file, row, loan_id and
column), 3 the policy cannot be met, 4 no feasible plan within the time limit.
Nothing is written unless the whole run succeeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from npl_disposal import __version__
from npl_disposal.exceptions import (
    InfeasiblePolicyError,
    PolicyError,
    PortfolioValidationError,
    SolverError,
    SolverUnavailableError,
)
from npl_disposal.portfolio import Portfolio, read_portfolio

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 2, 3, 4

Command = Callable[[argparse.Namespace], int]


def sample_path(name: str) -> Path:
    """Path of a file of the bundled sample (portfolio.csv, branches.csv, ...)."""
    return Path(str(resources.files("npl_disposal") / "data" / name))


def _print_table(title: str, frame: pd.DataFrame, money: Sequence[str] = ()) -> None:
    shown = frame.copy()
    for col in money:
        if col in shown:
            shown[col] = shown[col] / 1e6
    shown = shown.rename(columns={c: f"{c} (CNY m)" for c in money if c in shown})
    print(f"\n{title}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(shown.to_string(float_format=lambda x: f"{x:,.3f}"))


def print_portfolio(portfolio: Portfolio) -> None:
    """Print the summaries a risk officer wants first."""
    print(portfolio.summary())
    money = ("balance", "provision")
    _print_table("By class", portfolio.by_class(), money)
    _print_table("By NPL age", portfolio.by_age(), money)
    _print_table("By branch", portfolio.by_branch(), money)
    if portfolio.branches is not None:
        _print_table(
            "Inclusive small/micro NPL ratio by branch (before disposal)",
            portfolio.branch_ratios(),
            ("inclusive_npl", "inclusive_loans"),
        )


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a portfolio (and branch table) and print its summaries."""
    portfolio = read_portfolio(args.portfolio, branches=args.branches)
    print_portfolio(portfolio)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the job on the bundled sample."""
    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    print("npl-disposal demo: the bundled synthetic sample\n")
    print_portfolio(portfolio)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="npl-disposal",
        description="Plan the disposal of small/micro non-performing loans.",
    )
    parser.add_argument("--version", action="version", version=f"npl-disposal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole job on the bundled sample")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check", help="validate a portfolio and print its summaries")
    check.add_argument("portfolio", help="loans: CSV or Parquet (DESIGN section 5 columns)")
    check.add_argument("--branches", help="branch table: CSV or Parquet")
    check.set_defaults(func=cmd_check)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())

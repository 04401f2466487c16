"""The command line's arguments: one parser, a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from npl_disposal._version import __version__

if TYPE_CHECKING:
    from npl_disposal.io.schema import Column

#: ``reporting.excel.WORKBOOK_NAME``, written here so that ``--help`` imports no pandas.
WORKBOOK_NAME = "report.xlsx"


class _Jobs:
    """``commands.cmd_plan`` etc.: each job's module (pandas and all) is imported when it runs."""

    def __getattr__(self, name: str) -> Callable[[argparse.Namespace], int]:
        def job(args: argparse.Namespace) -> int:
            forget = _read_portfolio_ahead(args) if name == "cmd_plan" else None
            try:
                run: Callable[[argparse.Namespace], int] = getattr(
                    importlib.import_module("npl_disposal.cli._commands"), name
                )
                return run(args)
            finally:
                if forget is not None:
                    forget()

        job.__name__ = job.__qualname__ = name
        return job


commands = _Jobs()


#: Largest options file read ahead, bytes: a larger one would be held beside the
#: portfolio's validation, raising the run's peak memory.
OPTIONS_AHEAD_BYTES = 64 << 20


def _read_portfolio_ahead(args: argparse.Namespace) -> Callable[[], None]:
    """Have Arrow parse the plan's CSV files on a thread while the plan's modules import.

    The portfolio, then ``--options`` where the plan reads it as given (a policy without
    ``[schedule]``) and it is not large. Pandas is imported first, here (the reading
    thread imports nothing the main thread may be importing);
    :func:`npl_disposal.io.tables.read_ahead` says the rest. Returns what drops the reads
    the run never takes.
    """
    from npl_disposal.io.schema import LOAN_COLUMNS, OPTION_COLUMNS
    from npl_disposal.io.tables import forget_read_ahead, read_ahead

    tables: list[tuple[object, tuple[Column, ...]]] = [(args.portfolio, LOAN_COLUMNS)]
    if getattr(args, "options", None) is not None and _options_read_as_given(args):
        tables.append((args.options, OPTION_COLUMNS))
    read_ahead(tables)
    return forget_read_ahead


def _options_read_as_given(args: argparse.Namespace) -> bool:
    """Whether the options file is small and the policy has no ``[schedule]``.

    The policy is read by :func:`~npl_disposal.policy.load_policy`, as the plan reads
    it; a file it refuses leaves the options to the plan (which then says why).
    """
    from npl_disposal.exceptions import NplDisposalError
    from npl_disposal.policy import load_policy

    try:
        if os.path.getsize(args.options) > OPTIONS_AHEAD_BYTES:
            return False
        return load_policy(args.policy).schedule is None
    except (OSError, NplDisposalError):
        return False


__all__ = ["build_parser"]


def _plan_arguments(command: argparse.ArgumentParser, out_help: str) -> None:
    """The arguments ``plan`` and ``report`` share; ``out_help`` says what ``--out`` holds."""
    command.add_argument("portfolio", help="loans: CSV, Parquet or Excel")
    command.add_argument("--branches", required=True, help="branch table: CSV, Parquet or Excel")
    command.add_argument("--policy", required=True, help="policy.toml")
    command.add_argument(
        "--options",
        help="options table (loan_id, channel, value, pnl, derecognised); "
        "default: the library's own valuation",
    )
    command.add_argument(
        "--path",
        help="a schedule's path.csv (loan_id, period, balance: the NPL balance at the end of "
        "each period if kept); default: today's balances",
    )
    command.add_argument(
        "--branch-periods",
        help="a schedule's branch_periods.csv (branch, period, inclusive_loans, new_npl); "
        "default: today's inclusive loans, no new NPL",
    )
    _scenarios_argument(command)
    command.add_argument("--out", required=True, help=out_help)
    command.add_argument("--mode", choices=["whole_loan", "fractional"], help="overrides [mode]")
    command.add_argument(
        "--solver", default=None, help="highs (default) or a PuLP solver name; else [solver]"
    )
    command.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds for the solve. When the limit stops a whole_loan solve that has a plan, "
        'the best verified plan is written with status "feasible" and its gap (summary.json: '
        "status, objective, bound, gap); when no plan was found in time: exit 4, nothing "
        "written",
    )
    command.add_argument(
        "--mip-gap", type=float, default=None, help="relative gap (whole_loan; default 1e-6)"
    )
    _progress_arguments(command)


def _scenarios_argument(command: argparse.ArgumentParser, required: bool = False) -> None:
    command.add_argument(
        "--scenarios",
        required=required,
        help="scenarios.csv (scenario, probability, channel, segment, factor): the plan "
        "weighs its tail mean by [risk]; summary.json adds each scenario's value",
    )


def _frontier_arguments(command: argparse.ArgumentParser) -> None:
    """``frontier``: the tables of ``plan``, the scenarios and the aversions."""
    command.add_argument("portfolio", help="loans: CSV, Parquet or Excel")
    command.add_argument("--branches", required=True, help="branch table: CSV, Parquet or Excel")
    command.add_argument("--policy", required=True, help="policy.toml ([risk] alpha, floor)")
    command.add_argument("--options", help="options table; default: the library's own valuation")
    _scenarios_argument(command, required=True)
    command.add_argument(
        "--aversion",
        default="0,0.5,1,2",
        help="aversions (lambda >= 0) separated by commas; default 0,0.5,1,2",
    )
    command.add_argument("--out", required=True, help="folder for frontier.csv (and .png)")
    command.add_argument("--mode", choices=["whole_loan", "fractional"], help="overrides [mode]")
    command.add_argument(
        "--solver", default=None, help="highs (default) or a PuLP solver name; else [solver]"
    )
    command.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    command.add_argument(
        "--mip-gap", type=float, default=None, help="relative gap (whole_loan; default 1e-6)"
    )
    _progress_arguments(command)


def _lang_argument(command: argparse.ArgumentParser, what: str) -> None:
    """``--lang``: the language of what a person reads (files keep their English columns)."""
    command.add_argument(
        "--lang",
        choices=["en", "zh"],
        default="en",
        help=f"language of {what}: en (default; money in CNY m) or zh (中文; money in 万元, "
        "totals in 亿元); CSV and JSON files keep their English column names and keys",
    )


def _progress_arguments(command: argparse.ArgumentParser) -> None:
    """``--progress`` and ``-v/--verbose``: stages and seconds on standard error."""
    command.add_argument(
        "--progress",
        action="store_true",
        help="show each stage (read, value, build, solve, ..., write) and its seconds on "
        "stderr: one updating line on a terminal, a line per stage start and end otherwise",
    )
    command.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="a line per stage start and end with seconds, and every solver step, on stderr",
    )


def _encoding_argument(command: argparse.ArgumentParser) -> None:
    """``--encoding``: how the command's CSV files are written."""
    command.add_argument(
        "--encoding",
        choices=["utf-8-sig", "utf-8", "gb18030"],
        default="utf-8-sig",
        help="of the CSV files written: utf-8-sig (default: UTF-8 with a byte-order mark, "
        "which Excel needs to show Chinese text), utf-8 (no mark) or gb18030",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="npl-disposal",
        description="Plan the disposal of small/micro non-performing loans.",
    )
    parser.add_argument("--version", action="version", version=f"npl-disposal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole job on the bundled sample")
    _progress_arguments(demo)
    _lang_argument(demo, "the printed tables")
    demo.set_defaults(func=commands.cmd_demo)

    check = sub.add_parser("check", help="validate a portfolio and print its summaries")
    check.add_argument("portfolio", help="loans: CSV, Parquet or Excel")
    check.add_argument("--branches", help="branch table: CSV, Parquet or Excel")
    _lang_argument(check, "the printed tables")
    check.set_defaults(func=commands.cmd_check)

    plan = sub.add_parser("plan", help="allocate every loan to a disposal channel")
    report = sub.add_parser(
        "report", help="plan and write a self-contained HTML report and an Excel workbook "
        "(a whole-loan schedule: with its gain over all-now and myopic plans)",
    )
    report.add_argument("--title", help="report title")
    report.add_argument(
        "--excel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"also write {WORKBOOK_NAME} (default: when openpyxl is installed; --excel "
        "without it is an error); --no-excel: the HTML report only",
    )
    report.add_argument(
        "--tapes",
        action="store_true",
        help="also write tapes/: a loan tape per bulk-transfer package and securitisation "
        "pool (and per user channel and window): PACKAGE.csv (--encoding), PACKAGE.xlsx "
        "with a one-page summary (with openpyxl), packages.csv and fields.csv",
    )
    _lang_argument(report, "the report, the workbook and the tapes' workbooks")
    _encoding_argument(report)
    report.set_defaults(func=commands.cmd_report)
    _plan_arguments(plan, "folder for plan.csv (a schedule: schedule.csv), branches.csv, "
                    "summary.json")  # fmt: skip
    _plan_arguments(report, f"folder for report.html, {WORKBOOK_NAME} (with openpyxl) and, "
                    "with --tapes, tapes/")  # fmt: skip
    _encoding_argument(plan)
    _lang_argument(plan, "the printed tables")
    plan.set_defaults(func=commands.cmd_plan)

    frontier = sub.add_parser(
        "frontier", help="the optimal plan's expected value and tail mean at several aversions"
    )
    _frontier_arguments(frontier)
    _encoding_argument(frontier)
    _lang_argument(frontier, "the printed lines and frontier.png")
    frontier.set_defaults(func=commands.cmd_frontier)

    value = sub.add_parser("value", help="value every channel of every loan: options.csv")
    value.add_argument("portfolio", help="loans: CSV, Parquet or Excel")
    value.add_argument("--policy", help="policy.toml (its [valuation] section is used)")
    value.add_argument("--out", required=True, help="options CSV to write")
    _progress_arguments(value)
    _encoding_argument(value)
    _lang_argument(value, "the printed line")
    value.set_defaults(func=commands.cmd_value)

    tolerance = sub.add_parser("tolerance", help="check the per-branch NPL tolerance")
    tolerance.add_argument("portfolio", help="loans: CSV, Parquet or Excel")
    tolerance.add_argument("--branches", required=True, help="branch table: CSV, Parquet or Excel")
    tolerance.add_argument("--policy", required=True, help="policy.toml with [tolerance]")
    tolerance.add_argument("--plan", help="plan.csv (loan_id, channel, share): check after it")
    tolerance.add_argument("--options", help="options table of the plan (default: own valuation)")
    tolerance.add_argument(
        "--out", help="CSV to write the table to (CNY yuan and ratios, 15 significant digits)"
    )
    _encoding_argument(tolerance)
    _lang_argument(tolerance, "the printed table")
    tolerance.set_defaults(func=commands.cmd_tolerance)

    migration = sub.add_parser("migration", help="estimate a migration matrix from a history")
    migration.add_argument("history", help="loan-month history: loan_id, period, state")
    migration.add_argument("--out", required=True, help="matrix CSV to write")
    migration.add_argument("--method", choices=["cohort", "aalen_johansen"], default="cohort")
    _encoding_argument(migration)
    _lang_argument(migration, "the printed tables")
    migration.set_defaults(func=commands.cmd_migration)

    sample = sub.add_parser(
        "sample", help="write the bundled sample's files (portfolio, branches, options, "
        "policy, schedule policy, scenarios, loan-month history)",
    )
    sample.add_argument("--out", required=True, help="folder to write them into (new or empty)")
    sample.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that is not empty, replacing the sample's files there",
    )
    sample.set_defaults(func=commands.cmd_sample)
    return parser


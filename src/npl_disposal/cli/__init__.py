"""The ``npl-disposal`` command line (also ``python -m npl_disposal``).

Exit status: 0 done, 2 bad input (the message names file, row, loan_id and
column), 3 the policy cannot be met, 4 no feasible plan within the time limit.
Nothing is written unless the whole run succeeds. ``--progress`` (and
``-v/--verbose``) show each stage and its seconds on standard error; standard
output carries only the command's results.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from npl_disposal import __version__
from npl_disposal._memory import keep_freed_memory
from npl_disposal.cli.progress import PlainRenderer, Progress
from npl_disposal.datasets import sample_path
from npl_disposal.exceptions import (
    InfeasiblePolicyError,
    PolicyError,
    PortfolioValidationError,
    SolverError,
    SolverUnavailableError,
)
from npl_disposal.io.options import read_options
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.schema import Column
from npl_disposal.io.tables import read_table, write_csv
from npl_disposal.model.figures import BRANCH_FIGURES, branch_figures
from npl_disposal.model.problem import build_problem
from npl_disposal.policy import load_policy
from npl_disposal.reporting.report import (
    REPORT_NAME,
    WORKBOOK_NAME,
    ExcelUnavailableError,
    render_report,
    render_workbook,
    require_openpyxl,
)
from npl_disposal.solvers.solve import AllocationResult, Status, solve
from npl_disposal.valuation import MigrationEstimator, value_options, write_matrix

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 2, 3, 4

PLAN_COLUMNS = (
    Column("loan_id", "id", True, "identifier"),
    Column("channel", "id", True, "channel name"),
    Column("share", "share", True, "share of the loan"),
)

Command = Callable[[argparse.Namespace], int]


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


def write_outputs(out: Path, files: dict[str, Callable[[Path], object]]) -> None:
    """Write every file into a scratch folder first, then move them into ``out``.

    A failure while writing leaves ``out`` as it was: nothing half-written.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".npl-") as scratch:
        for name, write in files.items():
            write(Path(scratch) / name)
        for name in files:
            shutil.move(str(Path(scratch) / name), str(out / name))


def branch_table(result: AllocationResult) -> pd.DataFrame:
    """``branches.csv``: the branch figures of DESIGN section 4 after the plan."""
    figures = result.branch_figures()
    extra = [c for c in ("growth", "growth_restored") if c in figures]
    rest = [c for c in figures.columns if c not in ["branch", *BRANCH_FIGURES, *extra]]
    return figures[["branch", *BRANCH_FIGURES, *extra, *rest]]


def reporter_for(args: argparse.Namespace) -> Progress:
    """The progress reporter the flags ask for, writing to standard error.

    ``-v/--verbose``: plain lines (stage start and end with seconds) and every
    solver step; ``--progress``: one updating line per stage on a terminal, plain
    stage lines otherwise (logs); neither: stages are timed but nothing is shown.
    """
    if getattr(args, "verbose", False):
        return Progress(PlainRenderer(notes=True))
    if getattr(args, "progress", False):
        return Progress.to_stderr()
    return Progress()


def _solver_notes(reporter: Progress) -> Callable[[str], None] | None:
    return reporter.note if reporter.renderer is not None else None


def _outcome(result: AllocationResult) -> str:
    if result.status is Status.NO_SOLUTION:
        return "no plan within the time limit"
    return f"{result.status.value}, gap {result.gap:.2e}"


def _plan(args: argparse.Namespace, reporter: Progress) -> AllocationResult:
    with reporter.stage("read"):
        portfolio = read_portfolio(args.portfolio, branches=args.branches)
        policy = load_policy(args.policy)
        options = read_options(args.options, portfolio) if args.options is not None else None
    if options is None:
        with reporter.stage("value"):
            options = value_options(portfolio, policy=policy)
    with reporter.stage("build"):
        problem = build_problem(portfolio, policy, options)
    with reporter.stage("solve") as stage:
        result = solve(
            problem,
            mode=args.mode,
            solver=args.solver,
            time_limit=args.time_limit,
            mip_gap=args.mip_gap,
            progress=_solver_notes(reporter),
        )
        stage.result = _outcome(result)
    return result


def _write(reporter: Progress, out: Path, files: dict[str, Callable[[Path], object]]) -> None:
    """:func:`write_outputs` as the ``write`` stage, one unit of work per file."""

    def counted(write: Callable[[Path], object]) -> Callable[[Path], object]:
        def run(path: Path) -> object:
            done = write(path)
            reporter.advance()
            return done

        return run

    with reporter.stage("write", total=len(files)):
        write_outputs(out, {name: counted(write) for name, write in files.items()})


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan the disposal and write plan.csv, branches.csv and summary.json."""
    reporter = reporter_for(args)
    result = _plan(args, reporter)
    if result.status is Status.NO_SOLUTION:
        print(
            f"npl-disposal: no feasible plan was found within the time limit of "
            f"{args.time_limit} s; raise --time-limit or use --mode fractional",
            file=sys.stderr,
        )
        return EXIT_NO_PLAN
    with reporter.stage("figures"):
        branches = branch_table(result)
        summary = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    _write(
        reporter,
        Path(args.out),
        {
            "plan.csv": lambda p: write_csv(result.plan, p),
            "branches.csv": lambda p: branches.to_csv(p, index=False),
            "summary.json": lambda p: p.write_text(summary, encoding="utf-8"),
        },
    )
    print(result.summary())
    print(f"wrote plan.csv, branches.csv and summary.json to {args.out}")
    return EXIT_OK


def _excel_wanted(requested: bool | None) -> tuple[bool, str]:
    """Whether ``report`` writes the workbook, and why not (the install hint) if not.

    ``requested`` is ``--excel`` (True), ``--no-excel`` (False) or neither (None:
    write it when openpyxl is installed). ``--excel`` without openpyxl raises
    :class:`~npl_disposal.reporting.report.ExcelUnavailableError`.
    """
    if requested is False:
        return False, ""
    try:
        require_openpyxl()
    except ExcelUnavailableError as exc:
        if requested:
            raise
        return False, str(exc)
    return True, ""


def cmd_report(args: argparse.Namespace) -> int:
    """Plan as ``plan`` does; write report.html and (with openpyxl) report.xlsx into ``--out``."""
    try:
        excel, why_not = _excel_wanted(args.excel)
    except ExcelUnavailableError as exc:  # --excel asked for what cannot be done: fail first
        print(f"npl-disposal: --excel: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    reporter = reporter_for(args)
    result = _plan(args, reporter)
    if result.status is Status.NO_SOLUTION:
        print("npl-disposal: no feasible plan was found within the time limit", file=sys.stderr)
        return EXIT_NO_PLAN
    priced = result
    if result.mode != "fractional":
        with reporter.stage("price"):  # the LP relaxation's shadow prices
            priced = solve(result.problem, mode="fractional", time_limit=args.time_limit,
                           progress=_solver_notes(reporter))  # fmt: skip
            if not math.isfinite(priced.objective):  # no LP within the limit: no shadow prices
                priced = result
    with reporter.stage("figures"):
        html = render_report(result, title=args.title, priced=priced)
        files: dict[str, Callable[[Path], object]] = {
            REPORT_NAME: lambda p: p.write_text(html, encoding="utf-8")
        }
        if excel:
            workbook = render_workbook(result, title=args.title, priced=priced)
            files[WORKBOOK_NAME] = lambda p: p.write_bytes(workbook)
    _write(reporter, Path(args.out), files)
    print(result.summary())
    print(f"wrote {' and '.join(str(Path(args.out) / name) for name in files)}")
    if why_not:
        print(f"{WORKBOOK_NAME} not written: {why_not}")
    return EXIT_OK


def print_plan(result: AllocationResult, priced: AllocationResult | None = None) -> None:
    """Print the channel mix, the binding budgets and the branch tolerance table."""
    print(result.summary())
    _print_table("Channel mix", result.channel_mix(), ("balance", "value", "pnl"))
    if priced is not None:
        binding = priced.binding()[["name", "unit", "usage", "limit", "shadow_price"]]
        print(
            "\nBinding budgets in the LP relaxation (shadow price: CNY of value per CNY or "
            "per loan of extra budget)"
        )
        print(binding.to_string(index=False, float_format=lambda x: f"{x:,.4f}"))
    figures = branch_table(result)[["branch", *BRANCH_FIGURES]]
    _print_table(
        "Branch tolerance and wage pool after the plan",
        figures.set_index("branch"),
        ("npl_loss", "profit_after", "relief", "wage_pool"),
    )


def cmd_value(args: argparse.Namespace) -> int:
    """Write the library's own options table (value every channel of every loan)."""
    reporter = reporter_for(args)
    with reporter.stage("read"):
        portfolio = read_portfolio(args.portfolio)
        policy = load_policy(args.policy) if args.policy else None
    with reporter.stage("value"):
        options = value_options(portfolio, policy=policy)
    out = Path(args.out)
    _write(reporter, out.parent, {out.name: lambda p: _write_options(options, p)})
    print(f"valued {portfolio.n_loans:,} loans: {len(options):,} eligible options written to {out}")
    return EXIT_OK


def _write_options(options: pd.DataFrame, path: Path) -> None:
    write_csv(options[["loan_id", "channel", "value", "pnl", "derecognised"]], path)


def cmd_migration(args: argparse.Namespace) -> int:
    """Estimate the one-period (cohort) migration matrix from a loan-month history."""
    estimator = MigrationEstimator(method=args.method).fit(args.history)
    matrix = estimator.matrix_
    out = Path(args.out)
    write_outputs(out.parent, {out.name: lambda p: write_matrix(matrix, p)})
    print(matrix.summary())
    print(f"wrote {out}")
    return EXIT_OK


def cmd_tolerance(args: argparse.Namespace) -> int:
    """Print (and optionally write) the per-branch tolerance check, before or after a plan."""
    portfolio = read_portfolio(args.portfolio, branches=args.branches)
    policy = load_policy(args.policy)
    if policy.tolerance is None:
        raise ValueError(f"{args.policy}: the tolerance check needs a [tolerance] section")
    plan = options = None
    if args.plan is not None:
        plan = read_table(args.plan, PLAN_COLUMNS)
        options = (
            read_options(args.options, portfolio)
            if args.options is not None
            else value_options(portfolio, policy=policy)
        )
    figures = branch_figures(portfolio, policy, plan, options)
    columns = ["branch", "ratio_before", "ratio_after", "threshold", "within", "headroom",
               "inclusive_npl", "inclusive_loans", "derecognised"]  # fmt: skip
    table = figures[columns]
    when = "after the plan" if plan is not None else "today (before disposal)"
    _print_table(f"Inclusive small/micro NPL tolerance {when}", table.set_index("branch"),
                 ("headroom", "inclusive_npl", "inclusive_loans", "derecognised"))  # fmt: skip
    outside = table.loc[~table["within"], "branch"].tolist()
    print(
        f"\n{len(outside)} branch(es) outside tolerance"
        + (f": {', '.join(outside)}" if outside else "")
    )
    if args.out:
        out = Path(args.out)
        write_outputs(out.parent, {out.name: lambda p: table.to_csv(p, index=False)})
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a portfolio (and branch table) and print its summaries."""
    portfolio = read_portfolio(args.portfolio, branches=args.branches)
    print_portfolio(portfolio)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the job on the bundled sample."""
    reporter = reporter_for(args)
    notes = _solver_notes(reporter)
    with reporter.stage("read"):
        portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
        policy = load_policy(sample_path("policy.toml"))
    print("npl-disposal demo: the bundled synthetic sample\n")
    print_portfolio(portfolio)
    with reporter.stage("value"):
        options = value_options(portfolio, policy=policy)
    print(f"\nValued every channel of every loan: {len(options):,} eligible options")
    with reporter.stage("build"):
        problem = build_problem(portfolio, policy, options)
    print(problem.summary() + "\n")
    with reporter.stage("solve") as stage:
        result = solve(problem, progress=notes)
        stage.result = _outcome(result)
    with reporter.stage("price"):  # the LP relaxation's shadow prices
        priced = solve(problem, mode="fractional", progress=notes)
    print_plan(result, priced)
    return EXIT_OK


def _plan_arguments(command: argparse.ArgumentParser) -> None:
    """The arguments ``plan`` and ``report`` share."""
    command.add_argument("portfolio", help="loans: CSV or Parquet")
    command.add_argument("--branches", required=True, help="branch table: CSV or Parquet")
    command.add_argument("--policy", required=True, help="policy.toml")
    command.add_argument(
        "--options",
        help="options table (loan_id, channel, value, pnl, derecognised); "
        "default: the library's own valuation",
    )
    command.add_argument(
        "--out", required=True, help="folder for plan.csv, branches.csv, summary.json"
    )
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
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check", help="validate a portfolio and print its summaries")
    check.add_argument("portfolio", help="loans: CSV or Parquet (DESIGN section 5 columns)")
    check.add_argument("--branches", help="branch table: CSV or Parquet")
    check.set_defaults(func=cmd_check)

    plan = sub.add_parser("plan", help="allocate every loan to a disposal channel")
    report = sub.add_parser(
        "report", help="plan and write a self-contained HTML report and an Excel workbook"
    )
    report.add_argument("--title", help="report title")
    report.add_argument(
        "--excel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"also write {WORKBOOK_NAME} (default: when openpyxl is installed; --excel "
        "without it is an error); --no-excel: the HTML report only",
    )
    report.set_defaults(func=cmd_report)
    for command in (plan, report):
        _plan_arguments(command)
    plan.set_defaults(func=cmd_plan)

    value = sub.add_parser("value", help="value every channel of every loan: options.csv")
    value.add_argument("portfolio", help="loans: CSV or Parquet")
    value.add_argument("--policy", help="policy.toml (its [valuation] section is used)")
    value.add_argument("--out", required=True, help="options CSV to write")
    _progress_arguments(value)
    value.set_defaults(func=cmd_value)

    tolerance = sub.add_parser("tolerance", help="check the per-branch NPL tolerance")
    tolerance.add_argument("portfolio", help="loans: CSV or Parquet")
    tolerance.add_argument("--branches", required=True, help="branch table: CSV or Parquet")
    tolerance.add_argument("--policy", required=True, help="policy.toml with [tolerance]")
    tolerance.add_argument("--plan", help="plan.csv (loan_id, channel, share): check after it")
    tolerance.add_argument("--options", help="options table of the plan (default: own valuation)")
    tolerance.add_argument("--out", help="CSV to write the table to")
    tolerance.set_defaults(func=cmd_tolerance)

    migration = sub.add_parser("migration", help="estimate a migration matrix from a history")
    migration.add_argument("history", help="loan-month history: loan_id, period, state")
    migration.add_argument("--out", required=True, help="matrix CSV to write")
    migration.add_argument("--method", choices=["cohort", "aalen_johansen"], default="cohort")
    migration.set_defaults(func=cmd_migration)
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


def run() -> int:
    """The ``npl-disposal`` program: :func:`main` in a process that keeps freed memory.

    A job runs one large plan, so memory its steps free is kept for the next step
    rather than faulted in afresh (:func:`npl_disposal._memory.keep_freed_memory`).
    """
    keep_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(run())

"""The command line's jobs: one function per subcommand, each returning an exit status."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from npl_disposal._memory import release_memory
from npl_disposal.cli._exits import (
    EXIT_BAD_INPUT,
    EXIT_NO_PLAN,
    EXIT_OK,
)
from npl_disposal.cli._show import (
    migration_text,
    plan_headline,
    print_outcome,
    print_plan,
    print_portfolio,
    print_schedule,
    print_table,
)
from npl_disposal.cli.progress import PlainRenderer, Progress
from npl_disposal.exceptions import ExcelUnavailableError, PolicyError
from npl_disposal.io.csv_output import write_csv
from npl_disposal.io.options import read_options
from npl_disposal.io.output import (
    Writer,
    check_file,
    check_folder,
    replace_folder,
    write_file,
)
from npl_disposal.io.portfolio import Portfolio, read_portfolio
from npl_disposal.io.schema import Column
from npl_disposal.io.tables import read_table
from npl_disposal.model.figures import branch_figures
from npl_disposal.model.problem import AllocationProblem, build_problem
from npl_disposal.policy import Policy, load_policy
from npl_disposal.reporting.excel import WORKBOOK_NAME, render_workbook, require_openpyxl
from npl_disposal.reporting.labels import Labels, labels
from npl_disposal.solvers.backends import get_backend
from npl_disposal.solvers.result import AllocationResult, Status
from npl_disposal.solvers.solve import check_settings, solve
from npl_disposal.valuation.options import value_options

if TYPE_CHECKING:
    from npl_disposal.solvers.frontier import RiskFrontier

# What only some commands need (reports, schedules, the sample, migration matrices) is
# imported by those commands: ``plan`` loads none of it.

PLAN_COLUMNS = (
    Column("loan_id", "id", True, "identifier"),
    Column("channel", "id", True, "channel name"),
    Column("share", "share", True, "share of the loan"),
)

Command = Callable[[argparse.Namespace], int]

#: Numbers of a table a person opens (``tolerance --out``): 15 significant digits, so a
#: ratio computed as 0.045899999999999996 reads 0.0459 (a double holds 15-17 digits).
READABLE_FLOAT = "%.15g"


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


def check_solver_flags(args: argparse.Namespace) -> None:
    """``--solver``, ``--time-limit``, ``--mip-gap`` checked as ``[solver]`` is, before any work.

    Raises :class:`~npl_disposal.PolicyError` naming each bad flag, and
    :class:`~npl_disposal.SolverUnavailableError` for a solver not installed here.
    """
    given = {"backend": args.solver, "time_limit": args.time_limit, "mip_gap": args.mip_gap}
    _, problems = check_settings(
        {k: v for k, v in given.items() if v is not None},
        lambda key: "--solver" if key == "backend" else "--" + key.replace("_", "-"),
    )
    if problems:
        raise PolicyError(problems, source="command line")
    if args.solver is not None:
        get_backend(args.solver)


def _load_highs_meanwhile(args: argparse.Namespace) -> None:
    """Import HiGHS on a thread of its own while the tables are read and valued.

    The solve would import it when it starts, about 10 ms of one core; on another core
    it is ready by then. Only where HiGHS solves; an import that fails is left for the
    solve to report.
    """
    if args.solver not in (None, "highs") or "highspy" in sys.modules:
        return
    threading.Thread(target=_import_quietly, args=("highspy",), name="npl-import",
                     daemon=True).start()  # fmt: skip


def _import_quietly(name: str) -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module(name)


def _plan(args: argparse.Namespace, reporter: Progress) -> AllocationResult:
    _load_highs_meanwhile(args)
    with reporter.stage("read"):
        portfolio = read_portfolio(args.portfolio, branches=args.branches)
        release_memory()  # what reading freed leaves the process before the next step
        policy = load_policy(args.policy)
        _check_schedule_flags(args, policy)
        _check_scenario_flags(args, policy)
        options = (read_options(args.options, portfolio)
                   if args.options is not None and policy.schedule is None else None)  # fmt: skip
    if policy.schedule is not None:
        problem = _schedule_problem(args, reporter, portfolio, policy)
    else:
        if options is None:
            with reporter.stage("value"):
                options = value_options(portfolio, policy=policy)
        with reporter.stage("build"):
            problem = build_problem(portfolio, policy, options,
                                    scenarios=getattr(args, "scenarios", None))  # fmt: skip
            release_memory()
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


def _check_schedule_flags(args: argparse.Namespace, policy: Policy) -> None:
    """``--path`` and ``--branch-periods`` belong to a policy with ``[schedule]``."""
    given = [f for f, v in (("--path", args.path), ("--branch-periods", args.branch_periods))
             if v is not None]  # fmt: skip
    if given and policy.schedule is None:
        why = "are tables of a schedule; add [schedule] periods = T, or leave them out"
        raise PolicyError([(", ".join(given), why)], source="command line")


def _check_scenario_flags(args: argparse.Namespace, policy: Policy) -> None:
    """``--scenarios`` plans one period: a schedule with scenarios is not modelled yet."""
    if getattr(args, "scenarios", None) is not None and policy.schedule is not None:
        why = ("scenarios are not modelled in a schedule yet; plan one period (no [schedule]) "
               "with --scenarios, or the schedule without them")  # fmt: skip
        raise PolicyError([("--scenarios", why)], source="command line")


def _aversions(text: str) -> list[float]:
    """``--aversion 0,0.5,1,2``: numbers >= 0, each checked, every bad one named."""
    out, problems = [], []
    for item in (part.strip() for part in str(text).split(",")):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            problems.append(("--aversion", f"{item!r} is not a number >= 0 (e.g. 0,0.5,1,2)"))
        else:
            out.append(value)
    if problems:
        raise PolicyError(problems, source="command line")
    return out


def cmd_frontier(args: argparse.Namespace) -> int:
    """Solve at each aversion; write frontier.csv (and frontier.png with matplotlib)."""
    from npl_disposal.reporting.plots import charts_available, png_chart
    from npl_disposal.reporting.risk import frontier_chart
    from npl_disposal.solvers.frontier import risk_frontier

    check_folder(args.out, "--out", kind="frontier")
    check_solver_flags(args)
    aversions = _aversions(args.aversion)
    reporter = reporter_for(args)
    with reporter.stage("read"):
        portfolio = read_portfolio(args.portfolio, branches=args.branches)
        policy = load_policy(args.policy)
        _check_scenario_flags(args, policy)
        options = read_options(args.options, portfolio) if args.options is not None else None
    if options is None:
        with reporter.stage("value"):
            options = value_options(portfolio, policy=policy)
    with reporter.stage("solve"):
        front = risk_frontier(portfolio, policy, options, args.scenarios, aversions,
                              mode=args.mode, solver=args.solver, time_limit=args.time_limit,
                              mip_gap=args.mip_gap, progress=_solver_notes(reporter))  # fmt: skip
    lab = labels(getattr(args, "lang", "en"))
    files: dict[str, Writer] = {
        "frontier.csv": lambda p: write_csv(front.table, p, args.encoding)
    }
    if charts_available():
        files["frontier.png"] = lambda path: png_chart(
            lambda ax, lang: frontier_chart(front, ax, lang), path, lab.lang
        )
    _write(reporter, Path(args.out), files)
    args.written = True
    print(front.summary() if not lab.zh else frontier_text(front, lab))
    print(lab.t("cli_frontier_wrote", files=lab.joined(files), out=args.out))
    return EXIT_OK


def frontier_text(front: RiskFrontier, lab: Labels) -> str:
    """The frontier's lines in ``lab``'s words: expected value and tail mean per aversion."""
    alpha = f"{front.table['alpha'].iloc[0]:g}"
    lines = [lab.t("cli_frontier", alpha=alpha, n=len(front.table))]
    for row in front.table.itertuples(index=False):
        lines.append(lab.t("cli_frontier_row", aversion=f"{row.aversion:g}",
                           expected=lab.money(row.expected_value, total=True),
                           tail=lab.money(row.tail_mean, total=True),
                           status=lab.item(row.status)))  # fmt: skip
    return "\n".join(lines)


def _schedule_problem(
    args: argparse.Namespace, reporter: Progress, portfolio: Portfolio, policy: Policy
) -> AllocationProblem:
    from npl_disposal.model.schedule import build_schedule
    from npl_disposal.valuation.schedule import value_schedule

    options, path = args.options, args.path
    if options is None:
        with reporter.stage("value"):
            periods = policy.schedule.periods if policy.schedule is not None else 1
            months = policy.schedule.period_months if policy.schedule is not None else 3
            valued = value_schedule(portfolio, periods, months, policy=policy)
            options, path = valued.options, valued.path if path is None else path
    with reporter.stage("build"):
        return build_schedule(portfolio, policy, options, path=path,
                              branch_periods=args.branch_periods)  # fmt: skip


def _write(reporter: Progress, out: Path, files: dict[str, Writer]) -> None:
    """:func:`~npl_disposal.io.output.replace_folder` as the ``write`` stage."""
    with reporter.stage("write", total=len(files)):
        replace_folder(out, {name: _counted(reporter, write) for name, write in files.items()})


def _counted(reporter: Progress, write: Writer) -> Writer:
    """``write``, then one unit of the stage's work done."""

    def run(path: Path) -> object:
        done = write(path)
        reporter.advance()
        return done

    return run


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan the disposal and write plan.csv, branches.csv and summary.json."""
    check_folder(args.out, "--out", kind="plan")
    check_solver_flags(args)
    reporter = reporter_for(args)
    result = _plan(args, reporter)
    if result.status is Status.NO_SOLUTION:
        message = getattr(getattr(result, "solver", None), "message", "")
        said = f" ({message})" if message else ""
        print(
            f"npl-disposal: no feasible plan was found within the time limit of "
            f"{args.time_limit} s{said}; raise --time-limit or use --mode fractional",
            file=sys.stderr,
        )
        return EXIT_NO_PLAN
    with reporter.stage("figures"):
        result.branch_figures()  # computed once, for the summary and branches.csv
    with reporter.stage("write"):
        result.write(args.out, encoding=args.encoding)
    args.written = True
    lab = labels(getattr(args, "lang", "en"))
    print_outcome(result, lab.lang)
    files = (result.plan_file, "branches.csv", "summary.json")
    files_text = ", ".join(files[:-1]) + " and " + files[-1] if not lab.zh else lab.joined(files)
    print(lab.t("cli_plan_wrote", files=files_text, out=args.out))
    return EXIT_OK


def _excel_wanted(requested: bool | None) -> tuple[bool, str]:
    """Whether ``report`` writes the workbook, and why not (the install hint) if not.

    ``requested`` is ``--excel`` (True), ``--no-excel`` (False) or neither (None:
    write it when openpyxl is installed). ``--excel`` without openpyxl raises
    :class:`~npl_disposal.ExcelUnavailableError`.
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
    from npl_disposal.reporting.html import REPORT_NAME, render_report
    from npl_disposal.reporting.tapes import TAPES_FOLDER, folder_writer, loan_tapes, tape_files
    from npl_disposal.solvers.schedule_result import ScheduleResult
    from npl_disposal.solvers.timing import timing_value

    check_folder(args.out, "--out", kind="report")
    check_solver_flags(args)
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
    lang = getattr(args, "lang", "en")
    timing = None
    if isinstance(result, ScheduleResult) and result.mode == "whole_loan":
        with reporter.stage("baselines"):  # what the schedule's timing is worth
            timing = timing_value(result.problem, result, time_limit=args.time_limit)
    with reporter.stage("figures"):
        html = render_report(result, title=args.title, priced=priced, lang=lang, timing=timing)
        files: dict[str, Callable[[Path], object]] = {
            REPORT_NAME: lambda p: p.write_text(html, encoding="utf-8")
        }
        if excel:
            workbook = render_workbook(result, title=args.title, priced=priced, lang=lang)
            files[WORKBOOK_NAME] = lambda p: p.write_bytes(workbook)
        tapes = loan_tapes(result) if getattr(args, "tapes", False) else None
        if tapes is not None:
            files[TAPES_FOLDER] = folder_writer(tape_files(tapes, lang, excel, args.encoding))
    _write(reporter, Path(args.out), files)
    args.written = True
    lab = labels(lang)
    print(plan_headline(result, lang))
    print(f"{lab.t('cli_wrote')} {lab.joined(Path(args.out) / name for name in files)}")
    if tapes is not None:
        print(lab.t("cli_tapes", n=len(tapes), folder=Path(args.out) / TAPES_FOLDER))
    if why_not:
        print(f"{WORKBOOK_NAME} not written: {why_not}")
    return EXIT_OK


def cmd_value(args: argparse.Namespace) -> int:
    """Write the library's own options table (value every channel of every loan)."""
    out = check_file(args.out, "--out")
    reporter = reporter_for(args)
    with reporter.stage("read"):
        portfolio = read_portfolio(args.portfolio)
        policy = load_policy(args.policy) if args.policy else None
    with reporter.stage("value"):
        options = value_options(portfolio, policy=policy)
    with reporter.stage("write", total=1):
        write_file(out, lambda p: _write_options(options, p, args.encoding))
        reporter.advance()
    args.written = True
    print(labels(getattr(args, "lang", "en")).t(
        "cli_valued", n=f"{portfolio.n_loans:,}", options=f"{len(options):,}", out=out))
    return EXIT_OK


def _write_options(options: pd.DataFrame, path: Path, encoding: str) -> None:
    write_csv(options[["loan_id", "channel", "value", "pnl", "derecognised"]], path, encoding)


def cmd_migration(args: argparse.Namespace) -> int:
    """Estimate the one-period (cohort) migration matrix from a loan-month history."""
    from npl_disposal.valuation import MigrationEstimator, write_matrix

    out = check_file(args.out, "--out")
    estimator = MigrationEstimator(method=args.method).fit(args.history)
    matrix = estimator.matrix_
    write_matrix(matrix, out, encoding=args.encoding)
    args.written = True
    lab = labels(getattr(args, "lang", "en"))
    print(migration_text(matrix, lab.lang))
    print(f"{lab.t('cli_wrote')} {out}")
    return EXIT_OK


def cmd_tolerance(args: argparse.Namespace) -> int:
    """Print (and optionally write) the per-branch tolerance check, before or after a plan."""
    if args.out:
        check_file(args.out, "--out")
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
    lab = labels(getattr(args, "lang", "en"))
    title = lab.t("tol_after" if plan is not None else "tol_today")
    print_table(title, table.set_index("branch"),
                ("headroom", "inclusive_npl", "inclusive_loans", "derecognised"),
                lab.lang)  # fmt: skip
    outside = table.loc[~table["within"], "branch"].tolist()
    print("\n" + lab.t("tol_outside", n=len(outside))
          + (f": {', '.join(outside)}" if outside else ""))  # fmt: skip
    if args.out:
        write_file(args.out, lambda p: table.to_csv(p, index=False, encoding=args.encoding,
                                                    float_format=READABLE_FLOAT))  # fmt: skip
        args.written = True
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a portfolio (and branch table) and print its summaries."""
    portfolio = read_portfolio(args.portfolio, branches=args.branches)
    print_portfolio(portfolio, getattr(args, "lang", "en"))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the job on the bundled sample."""
    from npl_disposal.datasets import sample_path

    reporter = reporter_for(args)
    notes = _solver_notes(reporter)
    with reporter.stage("read"):
        portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
        policy = load_policy(sample_path("policy.toml"))
    lang = getattr(args, "lang", "en")
    lab = labels(lang)
    print(lab.t("demo_title") + "\n")
    print_portfolio(portfolio, lang)
    with reporter.stage("value"):
        options = value_options(portfolio, policy=policy)
    print("\n" + lab.t("demo_valued", n=f"{len(options):,}"))
    with reporter.stage("build"):
        problem = build_problem(portfolio, policy, options)
    print((problem.summary() if not lab.zh else lab.t(
        "demo_problem", n=f"{problem.n_loans:,}", m=problem.n_channels,
        options=f"{int(problem.eligible.sum()):,}", forced=f"{int(problem.forced_out.sum()):,}"))
        + "\n")  # fmt: skip
    with reporter.stage("solve") as stage:
        result = solve(problem, progress=notes)
        stage.result = _outcome(result)
    with reporter.stage("price"):  # the LP relaxation's shadow prices
        priced = solve(problem, mode="fractional", progress=notes)
    print_plan(result, priced, lang)
    _demo_schedule(portfolio, reporter, notes, lang)
    return EXIT_OK


def _demo_schedule(
    portfolio: Portfolio, reporter: Progress, notes: Callable[[str], None] | None, lang: str
) -> None:
    """The sample over four quarters, and what its timing is worth against two baselines."""
    from npl_disposal.datasets import sample_path
    from npl_disposal.model.schedule import build_schedule
    from npl_disposal.solvers.schedule_result import ScheduleResult
    from npl_disposal.solvers.timing import timing_value
    from npl_disposal.valuation.schedule import value_schedule

    lab = labels(lang)
    policy = load_policy(sample_path("schedule_policy.toml"))
    print("\n" + lab.t("demo_schedule"))
    with reporter.stage("value over time"):
        valued = value_schedule(portfolio, 4, 3, policy=policy)
    with reporter.stage("build schedule"):
        problem = build_schedule(portfolio, policy, valued.options, path=valued.path)
    with reporter.stage("solve schedule") as stage:
        result = solve(problem, progress=notes)
        stage.result = _outcome(result)
    with reporter.stage("baselines"):
        timing = timing_value(problem, result)
    if not lab.zh:
        print(result.summary())
        print("\n" + timing.summary())
        return
    assert isinstance(result, ScheduleResult)  # a problem with a schedule solves to one
    print_schedule(result, lang)
    values = timing.table().set_index("plan")[["value", "gain"]]
    values["share"] = values["gain"] / values["value"].abs()
    values.index = [lab.item(p) for p in values.index]
    print_table(lab.t("timing"), values, ("value", "gain"), lang)


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the bundled sample's files into ``--out``, to run every command on files."""
    from npl_disposal.datasets import write_sample

    written = write_sample(args.out, overwrite=args.force)
    args.written = True
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    out = args.out
    tables = f"{out}/portfolio.csv --branches {out}/branches.csv"
    print(f"try: npl-disposal plan {tables} --policy {out}/policy.toml --options "
          f"{out}/options.csv --out {out}/plan")  # fmt: skip
    print(f"     npl-disposal report {tables} --policy {out}/schedule_policy.toml --tapes "
          f"--lang zh --out {out}/report")  # fmt: skip
    print(f"     npl-disposal frontier {tables} --policy {out}/policy.toml --scenarios "
          f"{out}/scenarios.csv --mode fractional --out {out}/frontier")  # fmt: skip
    print(f"     npl-disposal migration {out}/history.csv --out {out}/matrix.csv")
    return EXIT_OK

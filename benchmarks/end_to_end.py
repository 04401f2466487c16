"""End to end on a synthetic portfolio: where the time and the memory of one job go.

The job ``npl-disposal plan`` does, stage by stage, from files on disk::

    PYTHONPATH=src python benchmarks/end_to_end.py                      # 1M loans, 100 branches
    PYTHONPATH=src python benchmarks/end_to_end.py --loans 10000 --mode fractional --format csv

A child process draws the portfolio (``npl_disposal.datasets.make_portfolio``) and writes
``portfolio``, ``branches`` (CSV or Parquet) and ``policy.toml`` (every constraint of
docs/model.md) into a temporary folder, so this process's memory is the job's only.
Then each stage is timed on its own:

    load+validate  read_portfolio(portfolio, branches) and load_policy(policy.toml)
    value          valuation.value_options: the options table
    build          build_problem
    solve          solve (the plan is verified inside, as always)
    verify         verify.verify_plan again, timed alone (not in the job's total: ``solve``
                   has verified the plan already, and ``npl-disposal plan`` does not repeat it)
    figures        the branch figures of branches.csv (cli.branch_table)
    write          plan.csv, branches.csv, summary.json (cli.write_outputs, as ``plan``)

As the ``npl-disposal`` program does, the process keeps the memory it frees for reuse
(``memory.keep_freed_memory``); ``--release-memory`` runs with the allocator's defaults.

For each stage: seconds, resident memory after it, its own peak (Linux: the peak mark is
reset before each stage) and the process's peak so far (``ru_maxrss``). ``tracemalloc``
is not used: it slows a 1M-loan run several-fold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchtools import RECORD_PREFIX, child_env, fmt, peak_rss_mb, reset_peak, rss_mb, table
from conftest import END_TO_END_LOANS, SEED, branches_for

FORMATS = ("csv", "parquet")
MODES = ("whole_loan", "fractional")


@dataclass
class Stage:
    """One timed stage: seconds and memory in MB."""

    name: str
    seconds: float
    rss_mb: float | None
    stage_peak_mb: float | None
    peak_mb: float
    in_job: bool = True


class Stages:
    """Runs stages one after another and records each."""

    def __init__(self) -> None:
        self.peak = peak_rss_mb()
        self.start_rss = rss_mb()
        self.records: list[Stage] = []

    def run(self, name: str, fn: Callable[[], Any], in_job: bool = True) -> Any:
        """Run ``fn`` as stage ``name`` and record its time and memory."""
        resettable = reset_peak()
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        resident = rss_mb()
        peak = max(peak_rss_mb(), resident or 0.0)
        self.peak = max(self.peak, peak)
        stage_peak = peak if resettable else None
        self.records.append(Stage(name, seconds, resident, stage_peak, self.peak, in_job))
        return out


# --- the input files, drawn in a child process ----------------------------------------------


def input_paths(folder: Path, file_format: str) -> dict[str, Path]:
    """Where the portfolio, branch table and policy of a run are written."""
    return {
        "portfolio": folder / f"portfolio.{file_format}",
        "branches": folder / f"branches.{file_format}",
        "policy": folder / "policy.toml",
    }


def write_inputs(folder: Path, n_loans: int, n_branches: int, file_format: str, seed: int) -> None:
    """Draw the synthetic portfolio and write its files into ``folder``."""
    from npl_disposal import Policy
    from npl_disposal.datasets import make_portfolio

    data = make_portfolio(n_loans, n_branches, seed=seed)
    paths = input_paths(folder, file_format)
    if file_format == "csv":
        data.loans.to_csv(paths["portfolio"], index=False)
        data.branches.to_csv(paths["branches"], index=False)
    else:
        data.loans.to_parquet(paths["portfolio"], index=False)
        data.branches.to_parquet(paths["branches"], index=False)
    Policy.from_dict(data.policy_dict()).to_toml(paths["policy"])


def generate(folder: Path, args: argparse.Namespace) -> Stage:
    """Write the inputs from a child process; its own seconds and peak memory."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--generate-into", str(folder),
        "--loans", str(args.loans), "--branches", str(args.branches),
        "--format", args.format, "--seed", str(args.seed),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"generating the portfolio failed:\n{done.stderr.strip()}")
    record = next(
        json.loads(line[len(RECORD_PREFIX) :])
        for line in done.stdout.splitlines()
        if line.startswith(RECORD_PREFIX)
    )
    return Stage("(generate, child)", seconds, None, record["peak_mb"], record["peak_mb"])


# --- the job ---------------------------------------------------------------------------------


def run_job(folder: Path, out: Path, args: argparse.Namespace) -> tuple[Stages, dict[str, Any]]:
    """Run every stage of the job on the files in ``folder``; outputs go to ``out``."""
    from npl_disposal import build_problem, load_policy, read_portfolio, solve, verify_plan
    from npl_disposal.solvers.result import Status
    from npl_disposal.valuation import value_options

    paths = input_paths(folder, args.format)
    stages = Stages()
    portfolio, policy = stages.run(
        "load+validate",
        lambda: (
            read_portfolio(paths["portfolio"], paths["branches"]),
            load_policy(paths["policy"]),
        ),
    )
    options = stages.run("value", lambda: value_options(portfolio, policy=policy))
    problem = stages.run("build", lambda: build_problem(portfolio, policy, options))
    mode = args.mode or policy.mode
    result = stages.run("solve", lambda: solve(problem, mode=mode, time_limit=args.time_limit))
    info: dict[str, Any] = {
        "loans": portfolio.n_loans,
        "branches": args.branches,
        "options": int(problem.eligible.sum()),
        "rows": len(problem.rows),
        "mode": mode,
        "format": args.format,
        "status": result.status.value,
        "objective": result.objective,
        "bound": result.bound,
        "gap": result.gap,
        "method": result.solver.method,
        "open_loans": result.solver.open_loans,
    }
    if result.status is Status.NO_SOLUTION:
        return stages, info
    check = stages.run(
        "verify",
        lambda: verify_plan(
            problem.portfolio,
            problem.policy,
            problem.options,
            result.plan,
            on=result.blocks,
            whole_loan=mode == "whole_loan",
        ),
        in_job=False,
    )
    if not check.ok:
        raise RuntimeError("the plan does not verify:\n" + check.summary())
    stages.run("figures", result.branch_figures)  # computed once, kept for the write
    stages.run("write", lambda: result.write(out))
    return stages, info


def report(generated: Stage, stages: Stages, info: dict[str, Any], markdown: bool = False) -> str:
    """The stage table with the run's figures above it."""
    total = sum(s.seconds for s in stages.records if s.in_job)
    rows = [["(imports, before the job)", "", "", fmt(stages.start_rss, ",.0f"), "", ""]]
    rows += [
        [s.name if s.in_job else f"({s.name} again, not in the job)", fmt(s.seconds),
         fmt(100 * s.seconds / total if total and s.in_job else None, ".0f"),
         fmt(s.rss_mb, ",.0f"), fmt(s.stage_peak_mb, ",.0f"), fmt(s.peak_mb, ",.0f")]
        for s in stages.records
    ]  # fmt: skip
    rows.append(["total (job)", fmt(total), "100", "", "", fmt(stages.peak, ",.0f")])
    rows.append([generated.name, fmt(generated.seconds), "", "", "",
                 fmt(generated.peak_mb, ",.0f")])  # fmt: skip
    headers = ("stage", "seconds", "% job", "RSS MB", "stage peak MB", "peak RSS MB")
    head = (
        f"{info['loans']:,} loans x {info['options'] / max(info['loans'], 1):.2f} options, "
        f"{info['branches']} branches, {info['rows']} rows, {info['format']} input; "
        f"{info['mode']}: {info['status']}, objective CNY {info['objective'] / 1e6:,.2f}m, "
        f"gap {info['gap']:.1e} ({info['method']}, {info['open_loans']:,} open loans)"
    )
    notes = (
        "RSS: resident after the stage; stage peak: its own high-water mark (blank where "
        "the system cannot reset it); peak RSS: the process's so far (ru_maxrss)."
    )
    return "\n".join([head, "", table(headers, rows, markdown), "", notes])


def parser() -> argparse.ArgumentParser:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loans", type=int, default=END_TO_END_LOANS, help="default: %(default)s")
    p.add_argument("--branches", type=int, help="branches (default: the registry's, 100 at 100k+)")
    p.add_argument("--mode", choices=MODES, help="default: the policy's (whole_loan)")
    p.add_argument("--format", choices=FORMATS, default="parquet", help="input file format")
    p.add_argument("--out", type=Path, help="folder for plan.csv etc. (default: a temporary one)")
    p.add_argument("--time-limit", type=float, help="solver time limit, seconds")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic portfolio")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--release-memory",
        action="store_true",
        help="leave the allocator's defaults (the program keeps freed memory)",
    )
    p.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the inputs, run the job stage by stage and print the table."""
    args = parser().parse_args(argv)
    if args.branches is None:
        args.branches = branches_for(args.loans)
    if args.generate_into is not None:
        write_inputs(args.generate_into, args.loans, args.branches, args.format, args.seed)
        print(RECORD_PREFIX + json.dumps({"peak_mb": peak_rss_mb()}), flush=True)
        return 0
    if not args.release_memory:
        from npl_disposal import keep_freed_memory

        keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="npl-e2e-") as scratch:
        inputs = Path(scratch) / "inputs"
        inputs.mkdir()
        generated = generate(inputs, args)
        out = args.out if args.out is not None else Path(scratch) / "out"
        stages, info = run_job(inputs, out, args)
    print(report(generated, stages, info, args.markdown))
    if args.json is not None:
        record = {"run": info, "generate": asdict(generated),
                  "stages": [asdict(s) for s in stages.records]}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2), encoding="utf-8")
    if info["status"] == "no_solution":
        print("end_to_end.py: no plan within the time limit; nothing verified or written")
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the optimiser scales with loans: one fresh process per size, both modes, one table.

::

    PYTHONPATH=src python benchmarks/scale.py                     # the registry's "scale" sizes
    PYTHONPATH=src python benchmarks/scale.py --sizes 10000,100000 --timeout 1800

Each size runs in a child process (so its peak memory is its own) that draws the
benchmark portfolio (``conftest.synthetic``: ``branches_for(n)`` branches, every
constraint), builds the problem and solves it in fractional and whole-loan mode with our
HiGHS method, verification included. Like the command line, the child hands the memory
each step freed back to the system before the next (``npl_disposal.release_memory``).
The table has per size: build, fractional and whole-loan seconds, the whole-loan gap,
the child's peak RSS (generation included), the build's and the solves' own peaks
(Linux: the mark is reset before each; the generated tables are dropped before
solving), and microseconds per loan, so linearity shows as a flat column.

Limits are enforced from outside: a child still running after ``--timeout`` seconds is
killed and its row shows what it finished. ``--time-limit`` is passed to each solve.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchtools import RECORD_PREFIX, child_env, fmt, peak_rss_mb, reset_peak, rss_mb, table
from conftest import SCALE_SIZES, SCHEDULE, SEED, branches_for, parse_sizes, schedule_policy

MODES = ("fractional", "whole_loan")


def emit(**record: Any) -> None:
    """Print one record for the parent (a JSON line after RECORD_PREFIX)."""
    print(RECORD_PREFIX + json.dumps(record), flush=True)


def child(n_loans: int, modes: Sequence[str], time_limit: float | None, schedule: bool) -> None:
    """Run one size and emit a record after each step (the parent may kill us any time)."""
    from npl_disposal import build_problem, read_portfolio, release_memory, solve
    from npl_disposal.datasets import make_portfolio

    start = time.perf_counter()
    data = make_portfolio(n_loans, branches_for(n_loans), seed=SEED)
    portfolio = read_portfolio(data.loans, data.branches)
    policy = schedule_policy(data) if schedule else data.policy_dict()
    options: Any = data.options
    path = None
    if schedule:  # the options over the schedule's quarters, from the library's valuation
        from npl_disposal.valuation import value_schedule

        valued = value_schedule(portfolio, int(SCHEDULE["periods"]), policy=policy)
        options, path = valued.options, valued.path
    emit(step="generate", seconds=time.perf_counter() - start, peak_mb=peak_rss_mb())
    highest = peak_rss_mb()
    resettable = reset_peak()

    def peaks() -> dict[str, float | None]:
        """The process's peak so far, and this step's own (the mark is reset before each)."""
        nonlocal highest
        now = max(peak_rss_mb(), rss_mb() or 0.0)
        highest = max(highest, now)
        return {"peak_mb": highest, "step_peak_mb": now if resettable else None}

    start = time.perf_counter()
    if schedule:
        from npl_disposal.model.schedule import build_schedule

        problem = build_schedule(portfolio, policy, options, path=path)
    else:
        problem = build_problem(portfolio, policy, options)
    del options, path
    release_memory()  # as the command line does between steps
    emit(step="build", seconds=time.perf_counter() - start, options=int(problem.eligible.sum()),
         rows=len(problem.rows), **peaks())  # fmt: skip
    del data  # the generated tables: the solve holds only the problem
    release_memory()
    for mode in modes:
        resettable = reset_peak()
        start = time.perf_counter()
        result = solve(problem, mode, time_limit=time_limit)
        emit(
            step=mode,
            seconds=time.perf_counter() - start,
            status=result.status.value,
            objective=result.objective,
            bound=result.bound,
            gap=result.gap if math.isfinite(result.gap) else None,
            method=result.solver.method,
            open_loans=result.solver.open_loans,
            **peaks(),
        )


def run_size(
    n_loans: int,
    modes: Sequence[str],
    time_limit: float | None,
    timeout: float | None,
    schedule: bool = False,
) -> dict[str, Any]:
    """Run one size in a child process; the steps it reported, and how it ended."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(n_loans),
               "--modes", ",".join(modes), *(["--schedule"] if schedule else [])]  # fmt: skip
    if time_limit is not None:
        command += ["--time-limit", str(time_limit)]
    row: dict[str, Any] = {"loans": n_loans, "branches": branches_for(n_loans), "end": "done"}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, env=child_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        stdout, stderr = done.stdout, done.stderr
        if done.returncode != 0:
            row["end"] = "error"
            row["error"] = (stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    except subprocess.TimeoutExpired as exc:
        stdout = _text(exc.stdout)
        row["end"] = f"killed after {timeout:g} s"
    row["wall_seconds"] = time.perf_counter() - start
    for line in stdout.splitlines():
        if line.startswith(RECORD_PREFIX):
            record = json.loads(line[len(RECORD_PREFIX) :])
            row[record.pop("step")] = record
    return row


def _text(output: bytes | str | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def _seconds(row: dict[str, Any], step: str) -> float | None:
    return row.get(step, {}).get("seconds")


def _per_loan(seconds: float | None, n_loans: int) -> str:
    return fmt(None if seconds is None else 1e6 * seconds / n_loans, ",.1f")


def rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table rows, one per size."""
    out = []
    for row in results:
        n = row["loans"]
        last = max((row.get(s, {}) for s in ("build", *MODES)), key=lambda r: r.get("peak_mb", 0))
        solves = [row[m]["step_peak_mb"] for m in MODES if row.get(m, {}).get("step_peak_mb")]
        whole = row.get("whole_loan", {})
        whole_cell = fmt(_seconds(row, "whole_loan"))
        if whole and whole.get("status") != "optimal":
            whole_cell += "*"
        out.append([
            f"{n:,}", str(row["branches"]), fmt(_seconds(row, "build")),
            fmt(_seconds(row, "fractional")), whole_cell, fmt(whole.get("gap"), ".1e"),
            fmt(last.get("peak_mb"), ",.0f"),
            fmt(row.get("build", {}).get("step_peak_mb"), ",.0f"),
            fmt(max(solves) if solves else None, ",.0f"),
            _per_loan(_seconds(row, "build"), n), _per_loan(_seconds(row, "fractional"), n),
            _per_loan(_seconds(row, "whole_loan"), n), row["end"],
        ])  # fmt: skip
    return out


HEADERS = (
    "loans", "branches", "build s", "fractional s", "whole-loan s", "gap", "peak RSS MB",
    "build peak MB", "solve peak MB", "us/loan build", "us/loan frac", "us/loan whole", "end",
)  # fmt: skip


def report(results: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The scale table with its notes."""
    notes = [
        "seconds include verifying the plan; gap: whole-loan (bound - objective) / |bound|;",
        "* = stopped before proving the gap (time limit). peak RSS: the child process,",
        "generation included; build / solve peak: the process's resident high-water mark",
        "during the build / the higher of the two solves, the mark reset before each (Linux;",
        "the problem itself is resident). us/loan: microseconds per loan (flat = linear).",
    ]
    return "\n".join([table(HEADERS, rows(results), markdown), "", *notes])


def main(argv: Sequence[str] | None = None) -> int:
    """Run every size in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="scale",
        help="loan counts or conftest.SIZE_SETS names, comma-separated (default: scale = "
        + ",".join(map(str, SCALE_SIZES)) + ")",
    )  # fmt: skip
    parser.add_argument("--modes", default=",".join(MODES), help="default: %(default)s")
    parser.add_argument("--time-limit", type=float, help="seconds given to each solve")
    parser.add_argument("--timeout", type=float, help="seconds before a size's process is killed")
    parser.add_argument("--json", type=Path, help="also write the records to this JSON file")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--schedule", action="store_true",
        help="a four-quarter schedule (conftest.SCHEDULE) instead of one period; generate "
        "then includes valuing every loan over the quarters",
    )  # fmt: skip
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        parser.error(f"--modes: unknown {bad}; choose from {', '.join(MODES)}")
    if args.child is not None:
        child(args.child, modes, args.time_limit, args.schedule)
        return 0
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        parser.error(f"--sizes: {exc}")
    results = []
    for n in sizes:
        print(f"scale.py: {n:,} loans ...", file=sys.stderr, flush=True)
        row = run_size(n, modes, args.time_limit, args.timeout, args.schedule)
        print(f"scale.py: {n:,} loans: {row['end']} in {row['wall_seconds']:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        results.append(row)
    print(report(results, args.markdown))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if all(r["end"] == "done" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

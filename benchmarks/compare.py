"""Speed-up table of one benchmark run: ours against plain HiGHS and naive PuLP + CBC.

Run the solve benchmarks with a JSON report, then read it::

    PYTHONPATH=src pytest benchmarks/test_bench_solve.py --benchmark-json=results.json
    python benchmarks/compare.py results.json            # add --markdown for a Markdown table

One row per loans x mode: the seconds of ``test_solve_ours``,
``test_solve_plain_highs`` and ``test_naive_pulp_cbc_floor`` (all three start from
the same built problem; the naive time is its PuLP build plus the CBC solve), the
speed-up ratios ``plain / ours`` and ``naive / ours``, and the gaps recorded in
``extra_info``. ``build s`` is ``test_build_problem`` (tables to problem), shared by
all three. Ratios are only meaningful within one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchtools import fmt, table

#: The model of each solve benchmark, in table order.
MODELS = {
    "test_solve_ours": "ours",
    "test_solve_plain_highs": "plain_highs",
    "test_naive_pulp_cbc_floor": "naive_pulp_cbc",
}
BUILD = "test_build_problem"
MODE_ORDER = ("fractional", "whole_loan")
STATS = ("min", "median", "mean", "max")


@dataclass
class Run:
    """What one benchmark JSON file holds for the comparison."""

    seconds: dict[tuple[str, int, str], float] = field(default_factory=dict)
    extra: dict[tuple[str, int, str], dict[str, Any]] = field(default_factory=dict)
    build: dict[int, float] = field(default_factory=dict)
    machines: list[str] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)


def _machine(report: dict[str, Any], path: Path) -> str:
    info = report.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    brand = cpu.get("brand_raw") or info.get("processor") or "unknown CPU"
    cores = cpu.get("count")
    when = report.get("datetime", "?")
    commit = (report.get("commit_info") or {}).get("id", "")
    return (
        f"{path.name}: {when} on {info.get('node', '?')} ({brand}"
        + (f", {cores} cores" if cores else "")
        + f"), Python {info.get('python_version', '?')}"
        + (f", commit {commit[:10]}" if commit else "")
    )


def load(paths: Sequence[Path], stat: str = "min") -> Run:
    """Read pytest-benchmark JSON files (a later file wins for the same benchmark)."""
    run = Run()
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        run.machines.append(_machine(report, Path(path)))
        run.nodes.add(str((report.get("machine_info") or {}).get("node")))
        for bench in report.get("benchmarks", []):
            base = str(bench.get("name", "")).split("[")[0]
            params = bench.get("params") or {}
            extra = bench.get("extra_info") or {}
            n_loans = params.get("n_loans", extra.get("n_loans"))
            stats = bench.get("stats") or {}
            if n_loans is None or stat not in stats:
                continue
            if base == BUILD:
                run.build[int(n_loans)] = float(stats[stat])
            elif base in MODELS:
                key = (MODELS[base], int(n_loans), str(params.get("mode", extra.get("mode"))))
                run.seconds[key] = float(stats[stat])
                run.extra[key] = extra
    return run


def _ratio(slow: float | None, fast: float | None) -> str:
    if slow is None or fast is None or fast <= 0:
        return "-"
    return f"x{slow / fast:,.1f}"


def _seconds(run: Run, key: tuple[str, int, str]) -> tuple[float | None, str]:
    """Seconds of a benchmark and its cell ('*' when it stopped before optimality)."""
    if key not in run.seconds:
        return None, "-"
    seconds = run.seconds[key]
    status = run.extra.get(key, {}).get("status", "optimal")
    return seconds, fmt(seconds) + ("" if status == "optimal" else "*")


def _gap(run: Run, key: tuple[str, int, str]) -> str:
    extra = run.extra.get(key)
    if extra is None:
        return "-"
    if extra.get("status") == "no_solution":
        return "no plan"
    return fmt(extra.get("gap"), ".1e")


def _versus_ours(run: Run, key: tuple[str, int, str]) -> str:
    """Relative difference of a model's objective from ours (0 = the same optimum)."""
    extra = run.extra.get(key)
    if extra is None or extra.get("objective") is None or not extra.get("ours"):
        return "-"
    return fmt((extra["objective"] - extra["ours"]) / abs(extra["ours"]), "+.1e")


def rows(run: Run) -> list[list[str]]:
    """Table rows, one per loans x mode that any solve benchmark ran at."""
    cases = sorted(
        {(n, mode) for _, n, mode in run.seconds},
        key=lambda c: (c[0], MODE_ORDER.index(c[1]) if c[1] in MODE_ORDER else 9, c[1]),
    )
    out = []
    for n, mode in cases:
        ours, ours_cell = _seconds(run, ("ours", n, mode))
        plain, plain_cell = _seconds(run, ("plain_highs", n, mode))
        naive, naive_cell = _seconds(run, ("naive_pulp_cbc", n, mode))
        out.append([
            f"{n:,}", mode, fmt(run.build.get(n)), ours_cell, plain_cell, naive_cell,
            _ratio(plain, ours), _ratio(naive, ours),
            _gap(run, ("ours", n, mode)), _gap(run, ("plain_highs", n, mode)),
            _versus_ours(run, ("naive_pulp_cbc", n, mode)),
        ])  # fmt: skip
    return out


HEADERS = (
    "loans", "mode", "build s", "ours s", "plain HiGHS s", "naive PuLP+CBC s",
    "plain/ours", "naive/ours", "ours gap", "plain gap", "naive vs ours",
)  # fmt: skip


def report(run: Run, stat: str = "min", markdown: bool = False) -> str:
    """The comparison table with its notes."""
    notes = [
        f"seconds: the {stat} over rounds; ours and plain HiGHS include verifying the plan;",
        "naive = PuLP build + CBC solve. * = stopped before proving optimality (time limit),",
        "see its gap. naive vs ours = (naive objective - ours) / |ours|. - = not run or skipped.",
    ]
    body = table(HEADERS, rows(run), markdown, left=2)
    return "\n".join([*run.machines, "", body, "", *notes])


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison table of one or more pytest-benchmark JSON files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="pytest --benchmark-json file(s)")
    parser.add_argument("--stat", choices=STATS, default="min", help="statistic (default: min)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    run = load(args.results, args.stat)
    if not run.seconds:
        print(
            "compare.py: no solve benchmarks in "
            + ", ".join(map(str, args.results))
            + "; run them with timing on: pytest benchmarks/test_bench_solve.py "
            "--benchmark-json=results.json (not --benchmark-disable)",
            file=sys.stderr,
        )
        return 1
    if len(run.nodes) > 1:
        print("compare.py: warning: the files come from different machines", file=sys.stderr)
    print(report(run, args.stat, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())

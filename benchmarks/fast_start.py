"""A fast start: ``--help``, ``import npl_disposal`` and the whole ``plan`` from CSV files.

Each is timed as a user meets it, one fresh process per run, wall clock, the median of
``--repeat`` runs; beside them, in the same run, one plain HiGHS model of every loan (the
same LP, ``solve(method="direct")``) reading the same files::

    PYTHONPATH=src python benchmarks/fast_start.py                    # 100k loans, 5 runs each
    PYTHONPATH=src python benchmarks/fast_start.py --repeat 9 --plain-mode whole_loan

A child process draws the synthetic portfolio (``end_to_end.py``'s files: portfolio.csv,
branches.csv, policy.toml) and ``npl-disposal value`` writes options.csv. The package is
byte-compiled first, as ``pip install`` does (a run under ``PYTHONDONTWRITEBYTECODE``
would otherwise compile every module at each start). Timed:

    python                 ``python -c pass``: the interpreter alone
    import                 ``import npl_disposal``
    --help                 ``npl-disposal --help``
    plan                   ``npl-disposal plan`` without ``--options`` (the library values)
    plan --options         the same with options.csv given
    plan fractional        ``--options`` and ``--mode fractional``: the LP
    plain HiGHS LP         read the same files, build, one HiGHS model of every loan, write
    floor                  import numpy, pyarrow.csv and highspy and parse the three files
                           with Arrow: nothing checked, built, solved or written

The floor is the least any Python program that plans from these files with HiGHS pays: it
says how much of the ratio target's time is left for the work itself.

The ratio is the plain model's end to end over ours on the same LP (and over the whole-loan
plan). ``CPU s`` is the child's user + system time (median): on a machine shared with other
work the wall clock also counts the wait for a core; the load average is printed above.
Targets: ``--help`` <= 0.3 s, import <= 0.4 s, plan <= 1.0 s, ratio >= 30.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import end_to_end
from benchtools import child_env, fmt, table
from conftest import FAST_START_LOANS, SEED, branches_for

#: Targets of the fast start, seconds (and the end-to-end ratio).
TARGETS = {"--help": 0.3, "import": 0.4, "plan": 1.0, "plan --options": 1.0}
RATIO_TARGET = 30.0
CLI = "from npl_disposal.cli import run; import sys; sys.exit(run())"
#: The plain model, run in a child: the same reader and builder, one HiGHS model.
PLAIN = """
import sys
from npl_disposal import build_problem, load_policy, read_options, read_portfolio, solve
folder, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
portfolio = read_portfolio(f"{folder}/portfolio.csv", f"{folder}/branches.csv")
policy = load_policy(f"{folder}/policy.toml")
options = read_options(f"{folder}/options.csv", portfolio)
problem = build_problem(portfolio, policy, options)
result = solve(problem, mode=mode, method="direct", time_limit=float(sys.argv[4]))
result.write(out)
print(result.status.value, result.objective)
"""
#: The floor, run in a child: the imports and the Arrow parse of the same files, no more.
FLOOR = """
import sys
import numpy, pyarrow.csv, highspy
for name in ("portfolio.csv", "branches.csv", "options.csv"):
    pyarrow.csv.read_csv(f"{sys.argv[1]}/{name}")
"""


def _cpu_children() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], repeat: int) -> dict[str, Any]:
    """Run ``command`` ``repeat`` times in fresh processes: median, min, max seconds.

    Also the median CPU seconds of the child (user + system): on a machine shared with
    other work, the wall clock waits for a core and CPU time does not.
    """
    seconds, cpu = [], []
    for _ in range(repeat):
        start, used = time.perf_counter(), _cpu_children()
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        cpu.append(_cpu_children() - used)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ...: exit {done.returncode}\n"
                               f"{done.stderr.strip()}")  # fmt: skip
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
            "cpu": statistics.median(cpu), "runs": seconds,
            "stdout": done.stdout.strip().splitlines()[-1:]}  # fmt: skip


def prepare(folder: Path, loans: int, seed: int) -> None:
    """The input files in ``folder`` and the package byte-compiled."""
    import npl_disposal

    compileall.compile_dir(Path(npl_disposal.__file__).parent, quiet=1)
    ns = argparse.Namespace(loans=loans, branches=branches_for(loans), format="csv", seed=seed)
    end_to_end.generate(folder, ns)
    value = [sys.executable, "-c", CLI, "value", str(folder / "portfolio.csv"), "--policy",
             str(folder / "policy.toml"), "--out", str(folder / "options.csv")]  # fmt: skip
    subprocess.run(value, env=child_env(), capture_output=True, check=True)


def commands(folder: Path, out: Path) -> dict[str, list[str]]:
    """What is timed, by name."""
    files = [str(folder / "portfolio.csv"), "--branches", str(folder / "branches.csv"),
             "--policy", str(folder / "policy.toml")]  # fmt: skip
    options = ["--options", str(folder / "options.csv")]
    py = sys.executable
    timed_commands = {
        "python": [py, "-c", "pass"],
        "import": [py, "-c", "import npl_disposal"],
        "--help": [py, "-c", CLI, "--help"],
        "plan": [py, "-c", CLI, "plan", *files, "--out", str(out / "plan")],
        "plan --options": [py, "-c", CLI, "plan", *files, *options, "--out", str(out / "o")],
    }
    fractional = ["--mode", "fractional", "--out", str(out / "f")]
    return {**timed_commands,
            "plan fractional": [py, "-c", CLI, "plan", *files, *options, *fractional],
            "floor": [py, "-c", FLOOR, str(folder)]}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, time everything, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="npl-fast-") as scratch:
        folder, out = Path(scratch) / "inputs", Path(scratch) / "out"
        folder.mkdir()
        out.mkdir()
        prepare(folder, args.loans, args.seed)
        figures = {name: timed(cmd, args.repeat) for name, cmd in commands(folder, out).items()}
        plain = [sys.executable, "-c", PLAIN, str(folder), args.plain_mode, str(out / "plain"),
                 str(args.plain_time_limit)]  # fmt: skip
        figures[f"plain HiGHS {args.plain_mode}"] = timed(plain, args.plain_repeat)
    return figures


def ratios(figures: dict[str, Any], plain_mode: str) -> dict[str, float]:
    """The plain model's end to end over ours: on the same LP, and over each plan."""
    plain = figures[f"plain HiGHS {plain_mode}"]["median"]
    ours = {"plan fractional": "same LP", "plan --options": "whole-loan plan, options given",
            "plan": "whole-loan plan, valued here"}  # fmt: skip
    return {f"{what} ({name})": plain / figures[name]["median"] for name, what in ours.items()}


def report(figures: dict[str, Any], ratio: dict[str, float], loans: int) -> str:
    """The table of medians, with the targets and the ratios under it."""
    rows = []
    for name, f in figures.items():
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if f["median"] <= target else "no")
        spread = [fmt(f[k], ".3f") for k in ("median", "min", "max", "cpu")]
        rows.append([name, *spread, str(len(f["runs"])), fmt(target, ".1f"), ok])
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    head = (f"{loans:,} loans, CSV files; seconds, wall clock, one fresh process per run "
            f"({os.cpu_count()} cores{load})")  # fmt: skip
    headers = ("what", "median", "min", "max", "CPU s", "runs", "target", "met")
    lines = [head, "", table(headers, rows)]
    lines += [""] + [f"plain HiGHS / ours, {k}: x{v:,.1f} (target x{RATIO_TARGET:.0f})"
                     for k, v in ratio.items()]  # fmt: skip
    return "\n".join([*lines, "", headroom(figures)])


def headroom(figures: dict[str, Any]) -> str:
    """What the ratio target leaves for the work, once the floor is paid."""
    plain = next(f["median"] for name, f in figures.items() if name.startswith("plain HiGHS"))
    allowed, floor = plain / RATIO_TARGET, figures["floor"]["median"]
    work = figures["plan fractional"]["median"] - floor
    return (f"x{RATIO_TARGET:.0f} allows {allowed:.3f} s; the floor (imports, Arrow parse) takes "
            f"{floor:.3f} s, leaving {allowed - floor:.3f} s to check, build, solve, verify and "
            f"write: the fractional plan takes {work:.3f} s for that")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loans", type=int, default=FAST_START_LOANS, help="default: %(default)s")
    p.add_argument("--repeat", type=int, default=5, help="runs of each command (median)")
    p.add_argument("--plain-repeat", type=int, default=1, help="runs of the plain model")
    p.add_argument("--plain-mode", choices=end_to_end.MODES, default="fractional",
                   help="mode of the plain HiGHS model (default: the LP)")  # fmt: skip
    p.add_argument("--plain-time-limit", type=float, default=600.0, help="its time limit, s")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic portfolio")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Time the fast start and the plain model side by side; print the table."""
    args = parser().parse_args(argv)
    figures = run(args)
    ratio = ratios(figures, args.plain_mode)
    print(report(figures, ratio, args.loans))
    if args.json is not None:
        record = {"loans": args.loans, "figures": figures, "ratios": ratio}
        args.json.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

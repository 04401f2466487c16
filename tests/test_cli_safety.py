"""The command line never leaves anything half-written, checks its outputs first, misreads nothing.

A run stopped by Ctrl-C or SIGTERM says so in one line and exits 130 / 143 with ``--out``
exactly as it was; the output folder is replaced as one, so a reader never sees a mix and
two runs into one folder leave one run's complete output; ``--out`` and the solver flags
are checked before anything is read; a closed pipe ends quietly; a header-only table and a
number whose comma may be a decimal comma are refused with the file, row and column.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import PolicyError, build_problem, read_portfolio, solve
from npl_disposal.cli import main
from npl_disposal.datasets import make_portfolio, sample_path

FILES = [("portfolio", "csv"), ("branches", "csv"), ("options", "csv"), ("policy", "toml")]
SAMPLE = {name: str(sample_path(f"{name}.{ext}")) for name, ext in FILES}


def _plan(out: Path, *extra: str) -> list[str]:
    inputs = ["--branches", SAMPLE["branches"], "--policy", SAMPLE["policy"]]
    return ["plan", SAMPLE["portfolio"], *inputs, "--options", SAMPLE["options"],
            "--out", str(out), *extra]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with a digest of its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _content(folder: Path) -> dict[str, object]:
    """A plan folder's files, summary.json without its timings (they differ run to run)."""
    out: dict[str, object] = dict(_snapshot(folder))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary.pop("solver")
    out["summary.json"] = summary
    return out


def _siblings(folder: Path) -> list[str]:
    """Hidden folders or files the library may have left beside ``folder``."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}"))


@pytest.fixture
def old_output(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert main(_plan(out, "--mode", "fractional")) == 0
    return out


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_writing_leaves_out_as_it_was(
    old_output: Path, signum: int, status: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    before = _snapshot(old_output)
    capsys.readouterr()

    def half_then_stopped(frame: pd.DataFrame, path: Path) -> None:
        path.write_text("loan_id,channel,share\nL1,retain,", encoding="utf-8")
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the signal's handler raises here, in the main thread

    monkeypatch.setattr("npl_disposal.solvers.result.write_csv", half_then_stopped)
    assert main(_plan(old_output)) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"npl-disposal: stopped by {signal.Signals(signum).name}; nothing was written"]
    assert _snapshot(old_output) == before
    assert _siblings(old_output) == []


_STOPPABLE = """
import sys, time
import npl_disposal.io.csv_output as csv_output
real = csv_output.write_csv
def slow(frame, path):
    real(frame, path)
    print("writing", flush=True)
    time.sleep(30)
import npl_disposal.solvers.result as result
result.write_csv = slow
from npl_disposal.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_from_outside_stops_the_write_cleanly(
    old_output: Path, signum: int, status: int
) -> None:
    before = _snapshot(old_output)
    child = subprocess.Popen(
        [sys.executable, "-c", _STOPPABLE, *_plan(old_output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"  # inside the write stage now
    child.send_signal(signum)
    _, err = child.communicate(timeout=60)
    assert child.returncode == status, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        f"npl-disposal: stopped by {signal.Signals(signum).name}; nothing was written"
    ]
    assert _snapshot(old_output) == before
    assert _siblings(old_output) == []


# --------------------------------------------------------------------------- the folder as one


def test_a_new_run_replaces_the_whole_folder_not_file_by_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = ["report", SAMPLE["portfolio"], "--branches", SAMPLE["branches"], "--policy",
              SAMPLE["policy"], "--options", SAMPLE["options"], "--out", str(out),
              "--mode", "fractional", "--no-excel"]  # fmt: skip
    assert main([*report, "--tapes"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "tapes"]
    assert main(report) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    plan = tmp_path / "plan"
    assert main(_plan(plan, "--mode", "fractional")) == 0
    assert main(_plan(plan, "--mode", "whole_loan", "--encoding", "utf-8")) == 0
    assert sorted(p.name for p in plan.iterdir()) == ["branches.csv", "plan.csv", "summary.json"]
    assert not (plan / "plan.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # the new run's


def test_two_runs_into_one_folder_leave_one_complete_output(tmp_path: Path) -> None:
    expected = {}
    for mode in ("fractional", "whole_loan"):
        assert main(_plan(tmp_path / mode, "--mode", mode)) == 0
        expected[mode] = _content(tmp_path / mode)
    assert expected["fractional"]["plan.csv"] != expected["whole_loan"]["plan.csv"]
    out = tmp_path / "shared"
    for _ in range(3):
        runs = [
            subprocess.Popen([sys.executable, "-m", "npl_disposal", *_plan(out, "--mode", mode)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for mode in ("fractional", "whole_loan")
        ]  # fmt: skip
        for run in runs:
            assert run.wait(timeout=120) == 0
        got = _content(out)
        assert got in (expected["fractional"], expected["whole_loan"]), sorted(got)
        assert _siblings(out) == []


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from npl_disposal.io.output import replace_folder

def slow(path: Path) -> None:
    path.write_text("partial", encoding="utf-8")
    time.sleep(60)

replace_folder(sys.argv[1], {"plan.csv": slow})
"""


def test_a_killed_runs_hidden_folder_is_removed_by_the_next_run(
    old_output: Path, tmp_path: Path
) -> None:
    from npl_disposal.io.output import replace_folder

    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(old_output)])
    live = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(old_output)])
    try:
        deadline = time.monotonic() + 60
        while len(_siblings(old_output)) < 2:  # both runs are writing
            assert child.poll() is None and live.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child.kill()
        assert child.wait(timeout=30) == -signal.SIGKILL
        killed = [n for n in _siblings(old_output) if f"-{child.pid}-" in n]
        assert len(killed) == 1
        (old_output.parent / ".out.npl-1234").mkdir()  # owner unknown: kept
        replace_folder(old_output, {"plan.csv": lambda p: p.write_text("new", encoding="utf-8")})
        left = _siblings(old_output)
        assert killed[0] not in left and ".out.npl-1234" in left
        assert [n for n in left if f"-{live.pid}-" in n]  # a live run's folder is kept
    finally:
        for run in (child, live):
            run.kill()
            run.wait(timeout=30)
    assert (old_output / "plan.csv").read_text(encoding="utf-8") == "new"


# --------------------------------------------------------------------------- checked first


def test_an_out_that_is_a_file_is_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.csv"
    target.write_text("mine", encoding="utf-8")
    args = ["plan", str(tmp_path / "no-such-portfolio.csv"), "--branches", "x.csv",
            "--policy", "x.toml", "--out", str(target)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and "no-such-portfolio" not in err
    assert target.read_text(encoding="utf-8") == "mine"


def test_an_out_below_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("", encoding="utf-8")
    assert main(_plan(tmp_path / "afile" / "out")) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_an_out_holding_other_files_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(_plan(out)) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_out_holding_another_kind_of_output_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("<html>a report</html>", encoding="utf-8")

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the plan was built before the folder was checked")

    monkeypatch.setattr("npl_disposal.cli._commands.build_problem", no_work)
    assert main(_plan(out)) == 2
    err = capsys.readouterr().err
    assert "holds a report (report.html)" in err and "not a plan" in err
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]


def test_a_schedule_is_rerun_into_its_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    inputs = [SAMPLE["portfolio"], "--branches", SAMPLE["branches"], "--policy",
              str(sample_path("schedule_policy.toml")), "--mode", "fractional"]  # fmt: skip
    for _ in range(2):
        assert main(["plan", *inputs, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["branches.csv", "schedule.csv",
                                                     "summary.json"]  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_folder_is_refused_first(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(_plan(locked / "out")) == 2
    finally:
        locked.chmod(0o700)


def test_value_refuses_a_folder_as_its_out_file(tmp_path: Path) -> None:
    assert main(["value", SAMPLE["portfolio"], "--out", str(tmp_path)]) == 2


def test_an_unavailable_solver_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_plan(tmp_path / "out", "--solver", "NO_SUCH_SOLVER")) == 2
    err = capsys.readouterr().err
    assert "NO_SUCH_SOLVER" in err and "available here" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--time-limit", "-1"), ("--time-limit", "0"),
                                         ("--mip-gap", "2"), ("--mip-gap", "-0.1")])  # fmt: skip
def test_solver_flags_are_checked_as_the_policy_is(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_plan(tmp_path / "out", flag, value)) == 2
    assert f"{flag}: must be" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_solve_checks_its_arguments_as_the_policy_is() -> None:
    data = make_portfolio(50, 2, seed=1)
    problem = build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                            data.options)  # fmt: skip
    with pytest.raises(PolicyError, match="argument time_limit: must be a number of seconds"):
        solve(problem, time_limit=-1)
    with pytest.raises(PolicyError, match=r"argument mip_gap: must be a relative gap"):
        solve(problem, mip_gap=2.0)


def test_a_closed_pipe_ends_quietly() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "npl_disposal", "check", SAMPLE["portfolio"], "--branches",
         SAMPLE["branches"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    child.stdout.readline()
    child.stdout.close()  # the reader goes away, as ``| head -1`` does
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert err == ""


# --------------------------------------------------------------------------- misread input


def test_a_header_only_portfolio_says_it_has_no_loans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "portfolio.csv"
    empty.write_text(Path(SAMPLE["portfolio"]).read_text(encoding="utf-8").splitlines()[0] + "\n",
                     encoding="utf-8")  # fmt: skip
    planned = _plan(tmp_path / "out")
    for command in (["check", str(empty)], [planned[0], str(empty), *planned[2:]]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "portfolio.csv" in err and "the table has no loans" in err
        assert "Traceback" not in err and "tuple.index" not in err


def test_a_decimal_comma_is_refused_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loans = pd.read_csv(SAMPLE["portfolio"], dtype=str)
    loans.loc[2, "balance"] = "1.234,56"
    loans.loc[5, "provision"] = "12,5"
    loans.loc[7, "balance"] = "1,234,567.00"  # thousands grouped: read as 1234567
    path = tmp_path / "portfolio.csv"
    loans.to_csv(path, index=False)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and "column balance" in err and "ambiguous number" in err
    assert "row 6" in err and "column provision" in err
    assert "row 8" not in err

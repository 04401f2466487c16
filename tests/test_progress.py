"""Progress reporting: stages with seconds, the plain and terminal renderers, solver notes."""

from __future__ import annotations

import io
import re
import sys
import time
from collections.abc import Callable

import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.cli.progress import PlainRenderer, Progress, TTYRenderer
from npl_disposal.datasets import make_portfolio


class FakeTTY(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def ticking(*times: float) -> Callable[[], float]:
    """A clock returning ``times`` one after the other (then the last one)."""
    values = list(times)

    def clock() -> float:
        return values.pop(0) if len(values) > 1 else values[0]

    return clock


def test_plain_renderer_one_line_per_stage_start_and_end_with_seconds() -> None:
    stream = io.StringIO()
    reporter = Progress(PlainRenderer(stream), clock=ticking(0.0, 1.25, 1.25, 4.0))
    with reporter.stage("read"):
        pass
    with reporter.stage("solve") as stage:
        reporter.note("LP pass 1: not shown without notes")
        stage.result = "optimal, gap 0.00e+00"
    assert stream.getvalue().splitlines() == [
        "read ...",
        "read done in 1.25 s",
        "solve ...",
        "solve done in 2.75 s (optimal, gap 0.00e+00)",
    ]
    assert reporter.seconds() == {"read": 1.25, "solve": 2.75}
    assert [s.name for s in reporter.stages] == ["read", "solve"]


def test_plain_renderer_notes_totals_and_failures() -> None:
    stream = io.StringIO()
    reporter = Progress(PlainRenderer(stream, notes=True))
    with reporter.stage("write", total=3):
        reporter.advance(2)
        reporter.advance()
        reporter.note("two\nlines")
    with pytest.raises(KeyError), reporter.stage("figures"):
        raise KeyError("boom")
    reporter.note("outside any stage")
    lines = stream.getvalue().splitlines()
    assert lines[:3] == ["write ...", "write: two", "write: lines"]
    assert re.fullmatch(r"write done in \d+\.\d\d s \[3/3\]", lines[3])
    assert re.fullmatch(r"figures failed after \d+\.\d\d s", lines[5])
    assert lines[6] == "outside any stage"
    assert reporter.current is None


def test_tty_renderer_redraws_one_line_per_stage_and_ends_it_with_a_newline() -> None:
    stream = FakeTTY()
    reporter = Progress.to_stderr(stream=stream)
    assert isinstance(reporter.renderer, TTYRenderer)
    reporter.renderer.refresh = None  # redraw on updates only: the output is deterministic
    with reporter.stage("write", total=4):
        reporter.advance(4)
    with reporter.stage("solve"):
        reporter.note("LP pass 1 (0.10 s): 12 loans freed")
    text = stream.getvalue()
    assert text.endswith("\n")
    first, second, end = text.split("\n")
    assert first.startswith("\rwrite ") and "\r" in first[1:]
    assert "[####################] 4/4" in first
    assert re.search(r"\rwrite done in \d+\.\d\d s \[4/4\] *$", first)
    assert "LP pass 1 (0.10 s): 12 loans freed" in second
    assert re.search(r"\rsolve done in \d+\.\d\d s *$", second)
    assert end == ""  # one line per stage, each closed by a newline


def test_tty_renderer_fits_the_terminal_width() -> None:
    stream = FakeTTY()
    reporter = Progress(TTYRenderer(stream, width=40, refresh=None))
    with reporter.stage("value", total=10):
        reporter.advance(10)  # complete: always drawn
        reporter.note("a solver note far too long to fit on a line of forty columns")
    draws = stream.getvalue().split("\r")[1:]
    assert all(len(d.rstrip("\n")) <= 39 for d in draws)
    assert any(d.endswith("...") for d in draws)
    # the last line is padded over the longer one before it, then closed
    assert draws[-1].startswith("value done in") and draws[-1].endswith(" \n")


def test_tty_renderer_clock_moves_while_a_stage_runs() -> None:
    stream = FakeTTY()
    reporter = Progress(TTYRenderer(stream, refresh=0.01))
    with reporter.stage("solve"):
        deadline = time.monotonic() + 5.0
        while stream.getvalue().count("\r") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert stream.getvalue().count("\r") >= 4  # the opening, two ticks, the last line
    after = stream.getvalue()
    time.sleep(0.05)
    assert stream.getvalue() == after  # the ticker stopped with the stage
    assert after.endswith("\n")


def test_progress_never_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = Progress.to_stderr(notes=True)  # captured stderr is not a terminal: plain
    assert isinstance(reporter.renderer, PlainRenderer)
    with reporter.stage("solve"):
        reporter.note("LP pass 1")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[:2] == ["solve ...", "solve: LP pass 1"]
    with pytest.raises(ValueError, match="standard error"):
        Progress.to_stderr(stream=sys.stdout)
    with pytest.raises(ValueError, match="standard error"):
        TTYRenderer(sys.stdout)


def test_silent_progress_only_records_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = Progress()
    with reporter.stage("build"):
        reporter.advance()
        reporter.note("kept as the stage's latest note")
    assert capsys.readouterr() == ("", "")
    assert reporter.stages[0].note == "kept as the stage's latest note"
    assert reporter.stages[0].done == 1
    assert reporter.seconds()["build"] >= 0.0


def test_note_is_solves_progress_callback() -> None:
    data = make_portfolio(50, 3, seed=1)
    problem = build_problem(
        read_portfolio(data.loans, branches=data.branches), data.policy_dict(), data.options
    )
    expected: list[str] = []
    solve(problem, mode="whole_loan", method="decomposition", progress=expected.append)
    assert expected  # the structured method reports its steps

    stream = io.StringIO()
    reporter = Progress(PlainRenderer(stream, notes=True))
    with reporter.stage("solve"):
        result = solve(problem, mode="whole_loan", method="decomposition", progress=reporter.note)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "solve ..."
    assert lines[1:-1] == [f"solve: {line}" for line in expected]
    assert lines[-1].startswith("solve done in ")
    assert reporter.stages[0].note == expected[-1]
    assert result.status.value == "optimal"

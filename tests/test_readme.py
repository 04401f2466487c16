"""The README's code, run as tests, so its examples cannot rot.

Every ```python block runs, in order, in one namespace, in a fresh working directory
(as a reader pasting them into one session would). Every ``npl-disposal ...`` command
shown in any code block must name a real subcommand, parse with the real argument
parser once its optional ``[...]`` parts are left out, and use only options that
subcommand has.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from npl_disposal.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_PROGRAMS = ("npl-disposal", "python -m npl_disposal")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first code line (1-based) and text."""

    lang: str
    line: int
    code: str


def _blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(m.group(1).lower(), text.count("\n", 0, m.start(2)) + 1, m.group(2))
        for m in _FENCE.finditer(text)
    ]


PYTHON = [b for b in _blocks() if b.lang == "python"]


def test_readme_has_python_examples() -> None:
    assert len(PYTHON) >= 3


def test_readme_python_blocks_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever the examples write lands here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for block in PYTHON:
        # Pad with blank lines so a traceback names the README's own line numbers.
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(README), "exec"), namespace)
    assert "portfolio" in namespace and "result" in namespace
    capsys.readouterr()  # the examples print; keep the test output quiet


def _commands() -> list[tuple[int, str]]:
    """``(README line, command)`` for every CLI command in any non-Python code block."""
    found = []
    for block in _blocks():
        if block.lang == "python":
            continue
        logical: list[tuple[int, str]] = []
        for offset, raw in enumerate(block.code.splitlines()):
            line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()  # drop comments
            if logical and (raw[:1].isspace() or logical[-1][1].endswith("\\")):
                number, previous = logical[-1]  # a continuation line
                logical[-1] = (number, previous.rstrip("\\").rstrip() + " " + line.strip())
            elif line:
                logical.append((block.line + offset, line))
        for number, line in logical:
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith(_PROGRAMS):
                    found.append((number, part))
    return found


COMMANDS = _commands()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the CLI parser has no subcommands")


def test_readme_shows_cli_commands() -> None:
    assert len(COMMANDS) >= 7


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"README:{n}" for n, _ in COMMANDS])
def test_readme_cli_command_parses(line: int, command: str) -> None:
    program = next(p for p in _PROGRAMS if command.startswith(p))
    shown = command[len(program) :]
    parser = build_parser()
    subcommands = _subparsers(parser)
    tokens = shlex.split(shown.replace("[", " ").replace("]", " "))
    assert tokens and tokens[0] in subcommands, (
        f"README line {line}: {command!r} uses a subcommand the CLI does not have "
        f"(it has: {', '.join(sorted(subcommands))})"
    )
    known = set(subcommands[tokens[0]]._option_string_actions)
    unknown = [t for t in tokens if re.match(r"^--?[A-Za-z]", t) and t not in known]
    assert not unknown, f"README line {line}: {tokens[0]} has no option(s) {unknown}"
    required = shlex.split(re.sub(r"\[[^\]]*\]", " ", shown))  # the optional parts left out
    try:
        parser.parse_args(required)
    except SystemExit as exc:  # argparse reports the problem on stderr and exits
        pytest.fail(f"README line {line}: {command!r} does not parse (exit {exc.code})")

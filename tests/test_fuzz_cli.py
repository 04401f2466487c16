"""Fuzzing the command line: corrupted input files never end in a traceback.

Hypothesis corrupts one of the four input files of ``npl-disposal plan`` (a cell, the
header, the bytes of its encoding, a truncation, or the policy's TOML) in a way that
makes it invalid, runs the command line in-process, and checks what a user sees: exit
status 2, the offending file named on stderr, no traceback, and ``--out`` exactly as
it was (a complete output of an earlier run, left untouched).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal import Policy
from npl_disposal.cli import EXIT_BAD_INPUT, EXIT_OK, main
from npl_disposal.datasets import sample_path

#: Required columns of each table whose cells are checked (text in them is refused).
CHECKED = {
    "portfolio.csv": ["balance", "provision", "classification", "npl_age_months",
                      "small_micro", "inclusive", "branch"],
    "branches.csv": ["inclusive_loans", "profit"],
    "options.csv": ["value", "pnl", "derecognised", "loan_id"],
}  # fmt: skip
#: Cell texts no checked column accepts.
GARBAGE = ["abc", "1.234,56", "12abc", "甲", "--5", "0x1F", "1e", "TRUE?", "#N/A!", "∞∞"]
#: Policy lines that break it: a syntax error, a wrong type, an unknown key, a bad share.
POLICY_BREAKS = [
    "quota 5",
    'months = "thirty six"',
    "[write_off]\nquota = 1\nquota = 2",
    "[long_age]\nmonths = 36\nmonthz = 1",
    "[tolerance]\nbank_npl_ratio = 1.5",
    "[wage_pool]\nrate = -0.1",
    "[mode]\nmode = 'fast'",
    "[nonsense]\nx = 1",
    "= 3",
]


@dataclass(frozen=True)
class Corruption:
    """What to do to which file, and how a report names it."""

    file: str
    kind: str
    apply: Callable[[Path], None]

    def __repr__(self) -> str:
        return f"Corruption({self.file}: {self.kind})"


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


@st.composite
def cell_corruptions(draw: st.DrawFn) -> Corruption:
    file = draw(st.sampled_from(sorted(CHECKED)))
    column = draw(st.sampled_from(CHECKED[file]))
    garbage = draw(st.sampled_from(GARBAGE))
    row = draw(st.integers(1, 20))

    def apply(path: Path) -> None:
        rows = _rows(path)
        rows[min(row, len(rows) - 1)][rows[0].index(column)] = garbage
        _write_rows(path, rows)

    return Corruption(file, f"row {row} {column} = {garbage!r}", apply)


@st.composite
def header_corruptions(draw: st.DrawFn) -> Corruption:
    file = draw(st.sampled_from(sorted(CHECKED)))
    column = draw(st.sampled_from(CHECKED[file]))
    how = draw(st.sampled_from(["drop", "misspell", "duplicate", "blank"]))

    def apply(path: Path) -> None:
        rows = _rows(path)
        at = rows[0].index(column)
        if how == "drop":
            rows = [r[:at] + r[at + 1 :] for r in rows]
        elif how == "misspell":
            rows[0][at] = column[:-1] + "x"
        elif how == "duplicate":
            rows = [[*r, r[at]] for r in rows]
        else:
            rows[0][at] = ""
        _write_rows(path, rows)

    return Corruption(file, f"header: {how} {column}", apply)


@st.composite
def byte_corruptions(draw: st.DrawFn) -> Corruption:
    """Bytes no encoding we read takes, in a row; or the whole file as random bytes."""
    file = draw(st.sampled_from([*sorted(CHECKED), "policy.toml"]))
    whole = draw(st.booleans())
    noise = draw(st.binary(min_size=8, max_size=64)) if whole else b""
    row = draw(st.integers(1, 10))

    def apply(path: Path) -> None:
        if whole:
            path.write_bytes(b"\xff\xfe\xfd" + noise)
            return
        lines = path.read_bytes().split(b"\n")
        at = min(row, len(lines) - 2)
        lines[at] = lines[at][:3] + b"\xff\xfe\x80" + lines[at][3:]
        path.write_bytes(b"\n".join(lines))

    return Corruption(file, "random bytes" if whole else f"bad bytes in line {row}", apply)


@st.composite
def truncations(draw: st.DrawFn) -> Corruption:
    """The file cut in the header, or in a row before its last checked column."""
    file = draw(st.sampled_from(sorted(CHECKED)))
    in_header = draw(st.booleans())
    row = draw(st.integers(1, 20))

    def apply(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        if in_header:
            path.write_text(lines[0][: len(lines[0]) // 2], encoding="utf-8")
            return
        header = lines[0].split(",")
        last = max(header.index(c) for c in CHECKED[file])
        at = min(row, len(lines) - 2)
        cut = ",".join(lines[at].split(",")[:last])  # the row loses its last checked cell
        path.write_text("\n".join([*lines[:at], cut]), encoding="utf-8")

    return Corruption(file, "cut in the header" if in_header else f"cut in row {row}", apply)


@st.composite
def policy_corruptions(draw: st.DrawFn) -> Corruption:
    broken = draw(st.sampled_from(POLICY_BREAKS))
    where = draw(st.sampled_from(["end", "start"]))

    def apply(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        if broken.startswith("["):
            text = text + "\n" + broken + "\n"  # a section: at the end, where it is a table
        elif where == "end":
            text = text + "\n" + broken + "\n"
        else:
            text = broken + "\n" + text
        path.write_text(text, encoding="utf-8")

    return Corruption("policy.toml", f"policy: {broken!r} at the {where}", apply)


CORRUPTIONS = st.one_of(
    cell_corruptions(), header_corruptions(), byte_corruptions(), truncations(),
    policy_corruptions(),
)  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid input set (60 loans of the sample) and a loose policy."""
    folder = tmp_path_factory.mktemp("inputs")
    loans = pd.read_csv(sample_path("portfolio.csv")).head(60)
    loans.to_csv(folder / "portfolio.csv", index=False)
    options = pd.read_csv(sample_path("options.csv"))
    options[options["loan_id"].isin(loans["loan_id"])].to_csv(folder / "options.csv", index=False)
    pd.read_csv(sample_path("branches.csv")).to_csv(folder / "branches.csv", index=False)
    policy = {
        "long_age": {"months": 36},
        "write_off": {"quota": 5e6},
        "tolerance": {"bank_npl_ratio": 0.0159, "enforce": False},
        "wage_pool": {"rate": 0.1, "consider_share": 0.0},
    }
    Policy.from_dict(policy).to_toml(folder / "policy.toml")
    return folder


def _run(folder: Path, out: Path) -> tuple[int, str]:
    args = [
        "plan", str(folder / "portfolio.csv"), "--branches", str(folder / "branches.csv"),
        "--policy", str(folder / "policy.toml"), "--options", str(folder / "options.csv"),
        "--mode", "fractional", "--out", str(out),
    ]  # fmt: skip
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_the_uncorrupted_inputs_plan(inputs: Path, tmp_path: Path) -> None:
    code, err = _run(inputs, tmp_path / "out")
    assert code == EXIT_OK, err
    assert (tmp_path / "out" / "plan.csv").exists()


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(corruption=CORRUPTIONS)  # fmt: skip
def test_corrupted_input_is_refused_cleanly(
    inputs: Path, tmp_path_factory: pytest.TempPathFactory, corruption: Corruption
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    for name in ("portfolio.csv", "branches.csv", "options.csv", "policy.toml"):
        (work / name).write_bytes((inputs / name).read_bytes())
    out = work / "out"
    first, err = _run(work, out)
    assert first == EXIT_OK, err
    before = _snapshot(out)
    corruption.apply(work / corruption.file)
    code, err = _run(work, out)
    assert "Traceback" not in err, err
    assert code == EXIT_BAD_INPUT, f"exit {code} for {corruption}:\n{err}"
    assert corruption.file in err, f"{corruption.file} not named:\n{err}"
    assert _snapshot(out) == before, "--out changed"

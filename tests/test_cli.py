"""The command line: demo, check, exit statuses."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from npl_disposal.cli import main, sample_path


def test_demo_prints_summaries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for heading in ("By class", "By NPL age", "By branch", "NPL ratio by branch"):
        assert heading in out


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "npl_disposal", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "npl-disposal" in done.stdout


def test_bad_csv_exit_2_names_every_problem(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    loans = pd.read_csv(sample_path("portfolio.csv"), dtype=str)
    loans.loc[4, "balance"] = "-100"
    loans.loc[9, "classification"] = "unknown-class"
    loans.loc[14, "small_micro"] = "maybe"
    loans.loc[19, "loan_id"] = loans.loc[20, "loan_id"]
    path = tmp_path / "bad.csv"
    loans.to_csv(path, index=False)
    status = main(["check", str(path), "--branches", str(sample_path("branches.csv"))])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    err = captured.err
    assert "Traceback" not in err
    for row, column in [(5, "balance"), (10, "classification"), (15, "small_micro"),
                        (20, "loan_id"), (21, "loan_id")]:  # fmt: skip
        assert f"bad.csv, row {row}, loan_id {loans.loc[row - 1, 'loan_id']}, column {column}" in err


def test_missing_file_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no-such-file.csv"]) == 2
    assert "no such file" in capsys.readouterr().err

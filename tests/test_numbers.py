"""Numbers a person reads: ratios in percent, loan counts whole; machine files unrounded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npl_disposal.cli import main
from npl_disposal.datasets import sample_path
from npl_disposal.reporting.console import count, percent, readable


def test_percent_and_count() -> None:
    assert percent(0.0159) == "1.59%"
    assert percent(float("nan")) == ""
    assert count(847.0) == "847"
    assert count(12_345.0000001) == "12,345"
    assert count(12.5) == "12.50"


def test_readable_formats_by_column() -> None:
    frame = pd.DataFrame({"loans": [847.0, 3.0], "balance": [1_538.3251, 2.0],
                          "coverage": [0.3731, 1.0], "within": [True, False],
                          "unit": ["CNY", "loans"]})  # fmt: skip
    shown = readable(frame, ["balance"])
    assert shown["loans"].tolist() == ["847", "3"]
    assert shown["balance"].tolist() == ["1,538.325", "2.000"]
    assert shown["coverage"].tolist() == ["37.31%", "100.00%"]
    assert shown["within"].tolist() == [True, False]
    assert frame["coverage"].tolist() == [0.3731, 1.0]  # the caller's frame as it was


def test_demo_shows_percent_and_whole_loans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"B001\s+1\.94%", out)
    assert not re.search(r"\b847\.0", out)
    assert re.search(r"retain\s+847 loans", out)


def test_machine_files_keep_full_precision(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
            "--options", str(sample_path("options.csv")), "--out", str(out),
            "--mode", "fractional"]  # fmt: skip
    assert main(args) == 0
    branches = pd.read_csv(out / "branches.csv")
    ratios = branches["ratio_after"].to_numpy()
    assert (ratios < 1).all()  # fractions, not percent
    assert not np.allclose(ratios, np.round(ratios, 4))  # not rounded for display
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert isinstance(summary["objective"], float)
    assert summary["objective"] != round(summary["objective"], 2)

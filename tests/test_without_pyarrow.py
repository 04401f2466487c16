"""pyarrow is optional (the test extra installs it): every command must run without it.

Each run is a child process in which ``import pyarrow`` fails, as on a machine with
only the package's own dependencies; pandas then keeps text in Python objects.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal.datasets import sample_path

#: Run the command line with pyarrow (and every submodule) unimportable.
NO_PYARROW = (
    "import sys; sys.modules['pyarrow'] = None; "
    "from npl_disposal.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_PYARROW, *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def _tables() -> list[str]:
    return [str(sample_path("portfolio.csv")), "--branches", str(sample_path("branches.csv"))]


def test_plan_and_report_run_without_pyarrow(tmp_path: Path) -> None:
    plan = _run("plan", *_tables(), "--policy", str(sample_path("policy.toml")), "--options",
                str(sample_path("options.csv")), "--out", str(tmp_path / "plan"))  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "pyarrow" not in plan.stderr
    assert len(pd.read_csv(tmp_path / "plan" / "plan.csv")) >= 2000
    report = _run("report", *_tables(), "--policy", str(sample_path("schedule_policy.toml")),
                  "--tapes", "--no-excel", "--lang", "zh", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "tapes" / "packages.csv").exists()


def test_bad_input_is_reported_without_pyarrow(tmp_path: Path) -> None:
    loans = pd.read_csv(sample_path("portfolio.csv"), dtype=str)
    loans.loc[2, "balance"] = "abc"
    loans.loc[4, "loan_id"] = "=HYPERLINK(1)"
    bad = tmp_path / "bad.csv"
    loans.to_csv(bad, index=False)
    done = _run("check", str(bad), "--branches", str(sample_path("branches.csv")))
    assert done.returncode == 2, done.stderr
    assert "row 3" in done.stderr and "balance" in done.stderr
    assert "formula" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demo_runs_without_pyarrow(lang: str) -> None:
    done = _run("demo", "--lang", lang)
    assert done.returncode == 0, done.stderr

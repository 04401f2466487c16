"""A fast start: importing the package and ``--help`` import no pandas, numpy or scipy.

Checked through ``sys.modules`` in a fresh interpreter, not by the clock: the names a
command needs are imported when it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import npl_disposal

HEAVY = ("pandas", "numpy", "scipy", "pyarrow", "highspy", "pulp")
SRC = str(Path(npl_disposal.__file__).resolve().parents[1])


def _loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = (
        "import contextlib, io, json, sys\n"
        f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    {code}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_loads_nothing_heavy() -> None:
    assert _loaded_after("import npl_disposal") == []


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["plan", "--help"], ["report", "--help"]]
)
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    code = f"from npl_disposal.cli import main; main({argv!r})"
    assert _loaded_after(code) == []


def test_a_public_name_loads_its_module_when_used() -> None:
    assert "pandas" in _loaded_after("from npl_disposal import read_portfolio")


def test_dir_lists_every_public_name() -> None:
    assert set(npl_disposal.__all__) <= set(dir(npl_disposal))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = npl_disposal.no_such_name  # type: ignore[attr-defined]


def test_help_names_the_workbook_the_report_writes() -> None:
    from npl_disposal.cli import _parser
    from npl_disposal.reporting.excel import WORKBOOK_NAME

    assert _parser.WORKBOOK_NAME == WORKBOOK_NAME


def test_python_m_runs_the_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "npl_disposal", "--help"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0
    assert "plan" in done.stdout


def test_the_jobs_load_neither_pulp_nor_scipy_linalg() -> None:
    """A plan on HiGHS needs neither: PuLP and scipy.linalg are imported when used."""
    code = (
        "import npl_disposal.cli._commands, npl_disposal.valuation, sys; "
        "print([m for m in ('pulp', 'scipy.linalg') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"


def test_pulp_solvers_are_listed_when_asked() -> None:
    from npl_disposal.solvers import available_solvers

    assert available_solvers()[0] == "highs"


def test_plan_reads_options_ahead_only_as_given(tmp_path: Path) -> None:
    """``--options`` is read ahead for a one-period policy, not for a schedule's."""
    import argparse

    import npl_disposal
    from npl_disposal.cli._parser import _options_read_as_given

    data = Path(npl_disposal.__file__).parent / "data"
    options = str(data / "options.csv")

    def given(policy: Path) -> bool:
        return _options_read_as_given(argparse.Namespace(options=options, policy=str(policy)))

    assert given(data / "policy.toml")
    assert not given(data / "schedule_policy.toml")
    assert not given(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[[", encoding="utf-8")
    assert not given(tmp_path / "bad.toml")

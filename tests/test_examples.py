"""Every script in examples/ runs to the end and prints what it promises."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Words each script must print (a script not listed must print something).
EXPECTED = {
    "quickstart.py": ["Portfolio (validated)", "optimal whole_loan plan", "Channel mix",
                      "Branch figures after the plan", "verified against every rule: True"],
    "tolerance_and_wage_pool.py": ["Before disposal", "must derecognise at least", "After the plan",
                                   "consider_share 0.5", "lose CNY"],
    "write_off_quota_sweep.py": ["Write-off quota sweep", "shadow_price", "Consistent:"],
    "custom_channels.py": ["amc_a", "amc_b", "[channels.amc_a]", "within capacity",
                           "plan verified"],
    "chinese_csv.py": ["GB18030", "2,000 NPLs", "2 problem(s)", "row 5", "row 10", "balance",
                       "classification"],
}  # fmt: skip

SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_every_script_has_expectations() -> None:
    assert {p.name for p in SCRIPTS} >= set(EXPECTED)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(
    script: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert len(out.splitlines()) >= 5, out
    for word in EXPECTED.get(script.name, []):
        assert word in out, f"{script.name} did not print {word!r}:\n{out}"
    assert "INCONSISTENT" not in out and "UNEXPECTED" not in out and "OVER" not in out
    assert list(tmp_path.iterdir()) == [], "examples must not leave files in the working folder"


def _sweep_module() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / "write_off_quota_sweep.py"))


def test_quota_sweep_is_concave() -> None:
    module = _sweep_module()
    table = module["sweep_quota"]()
    assert len(table) == 8
    assert table["quota"].is_monotonic_increasing
    value = table["value"].to_numpy()
    price = table["shadow_price"].to_numpy()
    scale = 1e-7 * abs(value).max()
    assert (value[1:] >= value[:-1] - scale).all(), table
    assert (price[1:] <= price[:-1] + 1e-6).all(), table
    assert (price >= -1e-9).all(), table
    # the quota binds at the low end, so it is worth something there
    assert table["binding"].iloc[0] and price[0] > 0, table
    assert module["check_concave"](table) == []


def test_quota_sweep_check_flags_a_broken_table() -> None:
    module = _sweep_module()
    table = module["sweep_quota"](fractions=(0.5, 1.0))
    broken = table.assign(shadow_price=[0.0, 1.0])  # a rising shadow price
    assert module["check_concave"](broken)

"""Smoke tests of the registry and the benchmark scripts, so CI catches them rotting.

The scripts run at the smoke size whatever ``NPL_BENCH_SIZES`` says: these tests
check that they work, not how fast.
"""

from __future__ import annotations

import io
import json
import tokenize
from pathlib import Path

import pandas as pd
import pytest

import compare
import end_to_end
import fast_start
import scale
from conftest import SIZE_SETS, SMOKE_SIZES, parse_sizes

SMOKE = SMOKE_SIZES[0]
HERE = Path(__file__).resolve().parent


def test_size_sets_are_loan_counts() -> None:
    for name, sizes in SIZE_SETS.items():
        assert sizes, name
        assert all(isinstance(n, int) and n > 0 for n in sizes), name
        assert list(sizes) == sorted(set(sizes)), name
    assert parse_sizes("smoke") == SMOKE_SIZES
    assert parse_sizes("2k, 1M,2_000") == (2 * 1000, 1000 * 1000)
    with pytest.raises(ValueError, match="size set"):
        parse_sizes("huge")


def test_sizes_are_written_only_in_the_registry() -> None:
    """Loan counts (integer literals from the smallest registered size up) live in conftest."""
    smallest = min(n for sizes in SIZE_SETS.values() for n in sizes)
    found = []
    for path in sorted(HERE.glob("*.py")):
        if path.name == "conftest.py":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for tok in tokens:
            text = tok.string.replace("_", "")
            if tok.type == tokenize.NUMBER and text.isdigit() and int(text) >= smallest:
                found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
    assert not found, "sizes belong in conftest.SIZE_SETS: " + ", ".join(found)


def _bench(name: str, n: int, mode: str | None, seconds: float, **extra: object) -> dict:
    params = {"n_loans": n, **({"mode": mode} if mode else {})}
    param = f"{n:_}" + (f"-{mode}" if mode else "")
    return {
        "name": f"{name}[{param}]",
        "params": params,
        "extra_info": {"n_loans": n, **({"mode": mode} if mode else {}), **extra},
        "stats": {"min": seconds, "median": seconds * 1.1, "mean": seconds * 1.2},
    }


def test_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small, large = SMOKE, 5 * SMOKE
    benches = [
        _bench("test_build_problem", small, None, 0.5),
        _bench("test_solve_ours", small, "fractional", 1.0, status="optimal", gap=0.0),
        _bench("test_solve_plain_highs", small, "fractional", 3.0, status="optimal", gap=0.0),
        _bench(
            "test_naive_pulp_cbc_floor",
            small,
            "fractional",
            40.0,
            status="optimal",
            objective=100.0,
            ours=100.0,
            gap=0.0,
        ),
        _bench("test_solve_ours", large, "whole_loan", 10.0, status="optimal", gap=1e-7),
        _bench("test_solve_plain_highs", large, "whole_loan", 120.0, status="feasible", gap=0.02),
    ]
    report = {"machine_info": {"node": "ci"}, "datetime": "now", "benchmarks": benches}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    assert compare.main([str(path)]) == 0
    out = capsys.readouterr().out
    small_row = next(line for line in out.splitlines() if line.startswith(f"{small:,} "))
    assert "x3.0" in small_row and "x40.0" in small_row
    large_row = next(line for line in out.splitlines() if line.startswith(f"{large:,} "))
    assert "120.00*" in large_row and "x12.0" in large_row and "2.0e-02" in large_row
    assert compare.main([str(path), "--markdown", "--stat", "median"]) == 0
    assert "| fractional |" in capsys.readouterr().out

    path.write_text(json.dumps({"benchmarks": []}), encoding="utf-8")
    assert compare.main([str(path)]) == 1
    assert "no solve benchmarks" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("file_format", "mode"), [("csv", "whole_loan"), ("parquet", "fractional")]
)
def test_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file_format: str, mode: str
) -> None:
    if file_format == "parquet":
        pytest.importorskip("pyarrow")
    out, record = tmp_path / "out", tmp_path / "e2e.json"
    argv = ["--loans", str(SMOKE), "--format", file_format, "--mode", mode,
            "--out", str(out), "--json", str(record), "--release-memory"]  # fmt: skip
    assert end_to_end.main(argv) == 0
    printed = capsys.readouterr().out
    stages = json.loads(record.read_text(encoding="utf-8"))
    names = [s["name"] for s in stages["stages"]]
    assert names == ["load+validate", "value", "build", "solve", "verify", "figures", "write"]
    assert all(s["seconds"] >= 0 and s["peak_mb"] > 0 for s in stages["stages"])
    assert [s["name"] for s in stages["stages"] if not s["in_job"]] == ["verify"]
    assert stages["run"]["status"] == "optimal" and stages["run"]["mode"] == mode
    for name in names:
        assert name in printed
    assert {p.name for p in out.iterdir()} == {"plan.csv", "branches.csv", "summary.json"}
    plan = pd.read_csv(out / "plan.csv")
    assert plan["loan_id"].nunique() == SMOKE
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["mode"] == mode


def test_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "scale.json"
    assert scale.main(["--sizes", "smoke", "--json", str(record)]) == 0
    (row,) = json.loads(record.read_text(encoding="utf-8"))
    assert row["loans"] == SMOKE and row["end"] == "done"
    for step in ("build", "fractional", "whole_loan"):
        assert row[step]["seconds"] > 0
    assert row["fractional"]["status"] == "optimal"
    assert row["whole_loan"]["gap"] <= 1e-6
    assert row["whole_loan"]["peak_mb"] > 0
    assert f"{SMOKE:,}" in capsys.readouterr().out


def test_fast_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "fast.json"
    argv = ["--loans", str(SMOKE), "--repeat", "1", "--json", str(record)]
    assert fast_start.main(argv) == 0
    figures = json.loads(record.read_text(encoding="utf-8"))
    assert set(figures["figures"]) == {"python", "import", "--help", "plan", "plan --options",
                                       "plan fractional", "floor",
                                       "plain HiGHS fractional"}  # fmt: skip
    assert all(f["median"] > 0 for f in figures["figures"].values())
    assert figures["figures"]["plain HiGHS fractional"]["stdout"][0].startswith("optimal")
    assert all(r > 0 for r in figures["ratios"].values())
    said = capsys.readouterr().out
    assert "plain HiGHS / ours" in said and "the floor (imports, Arrow parse) takes" in said

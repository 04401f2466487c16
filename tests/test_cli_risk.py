"""The command line with scenarios: ``plan --scenarios`` and ``frontier``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npl_disposal.cli import main
from npl_disposal.datasets import make_portfolio
from npl_disposal.policy import Policy


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("risk")
    sp = make_portfolio(400, seed=3)
    paths = {name: root / f"{name}.csv" for name in ("portfolio", "branches", "options",
                                                      "scenarios")}  # fmt: skip
    sp.loans.to_csv(paths["portfolio"], index=False)
    sp.branches.to_csv(paths["branches"], index=False)
    sp.options.to_csv(paths["options"], index=False)
    pol = sp.policy_dict()
    pol["mode"] = {"mode": "fractional"}
    pol["risk"] = {"aversion": 1.0, "alpha": 0.9}
    paths["policy"] = root / "policy.toml"
    Policy.from_dict(pol).to_toml(paths["policy"])
    rng = np.random.default_rng(3)
    rows = [(f"s{k}", 0.1, c, g, float(rng.lognormal(-0.05, 0.4))) for k in range(10)
            for c in ("retain", "restructure") for g in ("substandard", "doubtful", "loss")]
    pd.DataFrame(rows, columns=["scenario", "probability", "channel", "segment", "factor"]
                 ).to_csv(paths["scenarios"], index=False)  # fmt: skip
    return paths


def _args(files: dict[str, Path]) -> list[str]:
    return [str(files["portfolio"]), "--branches", str(files["branches"]), "--policy",
            str(files["policy"]), "--options", str(files["options"]), "--scenarios",
            str(files["scenarios"])]  # fmt: skip


def test_plan_with_scenarios_writes_the_tail(files: dict[str, Path], tmp_path: Path) -> None:
    assert main(["plan", *_args(files), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["alpha"] == 0.9
    assert len(summary["scenarios"]) == 10
    values = np.array(list(summary["scenarios"].values()))
    assert summary["expected_value"] == pytest.approx(values.mean(), rel=1e-9)
    assert min(values) <= summary["tail_mean"] <= summary["expected_value"]
    assert not any(k.startswith("risk_") for k in summary["constraints"])


def test_frontier_writes_the_table(files: dict[str, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "front"
    assert main(["frontier", *_args(files), "--aversion", "0,1,3", "--out", str(out)]) == 0
    table = pd.read_csv(out / "frontier.csv")
    assert list(table["aversion"]) == [0.0, 1.0, 3.0]
    assert table["expected_value"].is_monotonic_decreasing
    assert table["tail_mean"].is_monotonic_increasing
    assert "risk frontier" in capsys.readouterr().out
    assert (out / "frontier.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's BOM


def test_frontier_in_chinese_and_gb18030(files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         recwarn: pytest.WarningsRecorder) -> None:  # fmt: skip
    out = tmp_path / "front"
    args = ["frontier", *_args(files), "--aversion", "0,1", "--out", str(out)]
    assert main([*args, "--lang", "zh", "--encoding", "gb18030"]) == 0
    if (out / "frontier.png").exists():  # matplotlib installed: no empty boxes for 中文
        assert not [w for w in recwarn if "missing from font" in str(w.message)]
    said = capsys.readouterr().out
    assert "风险前沿" in said and "期望价值" in said and "亿元" in said
    assert "expected value" not in said
    table = pd.read_csv(out / "frontier.csv", encoding="gb18030")
    assert list(table["aversion"]) == [0.0, 1.0]


def test_bad_aversions_and_bad_scenarios_exit_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bad"
    assert main(["frontier", *_args(files), "--aversion", "0,a,-2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'a'" in err and "'-2'" in err and not out.exists()
    bad = tmp_path / "bad_scenarios.csv"
    pd.DataFrame({"scenario": ["a"], "probability": [0.7], "channel": ["retain"],
                  "segment": ["loss"], "factor": [-1.0]}).to_csv(bad, index=False)  # fmt: skip
    args = _args(files)
    args[-1] = str(bad)
    assert main(["plan", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad_scenarios.csv" in err and "factor" in err and "sum to 0.7" in err


def test_report_shows_the_value_distribution_and_the_mix_by_aversion(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    assert main(["report", *_args(files), "--no-excel", "--out", str(out)]) == 0
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Recovery risk</h2>" in text
    assert "Risk frontier" in text and "Channel mix by aversion" in text
    assert "worst scenarios" in text


def test_a_chart_picture_without_a_chinese_font_is_drawn_in_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from npl_disposal.reporting import plots

    drawn: list[str] = []

    def draw(ax: object, lang: str) -> None:
        drawn.append(lang)

    monkeypatch.setattr(plots, "cjk_font_installed", lambda: False)
    assert plots.png_chart(draw, tmp_path / "a.png", "zh") == "en"
    monkeypatch.setattr(plots, "cjk_font_installed", lambda: True)
    assert plots.png_chart(draw, tmp_path / "b.png", "zh") == "zh"
    assert drawn == ["en", "zh"]
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"

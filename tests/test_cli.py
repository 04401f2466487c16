"""The command line: demo, check, exit statuses."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from npl_disposal.cli import main
from npl_disposal.datasets import sample_path


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
        assert (
            f"bad.csv, row {row}, loan_id {loans.loc[row - 1, 'loan_id']}, column {column}" in err
        )


def test_missing_file_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no-such-file.csv"]) == 2
    assert "no such file" in capsys.readouterr().err


def _plan_args(out, **files: str) -> list[str]:
    paths = {
        "portfolio": str(sample_path("portfolio.csv")),
        "branches": str(sample_path("branches.csv")),
        "policy": str(sample_path("policy.toml")),
        "options": str(sample_path("options.csv")),
    }
    paths.update(files)
    return [
        "plan", paths["portfolio"], "--branches", paths["branches"], "--policy",
        paths["policy"], "--options", paths["options"], "--out", str(out),
    ]  # fmt: skip


def test_plan_writes_the_contract_files(tmp_path) -> None:
    import json

    out = tmp_path / "out"
    assert main(_plan_args(out)) == 0
    plan = pd.read_csv(out / "plan.csv")
    assert list(plan.columns) == ["loan_id", "channel", "share"]
    assert (plan["share"] > 0).all()
    assert plan.groupby("loan_id")["share"].sum().round(9).eq(1).all()
    branches = pd.read_csv(out / "branches.csv")
    assert list(branches.columns[:9]) == [
        "branch", "ratio_before", "ratio_after", "threshold", "within", "npl_loss",
        "profit_after", "relief", "wage_pool",
    ]  # fmt: skip
    assert {"growth", "growth_restored"} <= set(branches.columns)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("status", "objective", "bound", "gap", "mode", "constraints"):
        assert key in summary
    assert summary["status"] == "optimal"
    assert summary["bound"] >= summary["objective"]
    assert all("usage" in c for c in summary["constraints"].values())


def test_plan_fractional_reports_shadow_prices(tmp_path) -> None:
    import json

    out = tmp_path / "out"
    assert main([*_plan_args(out), "--mode", "fractional"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "fractional"
    prices = [c["shadow_price"] for c in summary["constraints"].values()]
    assert all(p is not None and p >= 0 for p in prices)


def test_plan_bad_options_exit_2_nothing_written(tmp_path, capsys) -> None:
    options = pd.read_csv(sample_path("options.csv"))
    options.loc[0, "loan_id"] = "NO-SUCH-LOAN"
    options.loc[3, "derecognised"] = 1.5
    bad = tmp_path / "options.csv"
    options.to_csv(bad, index=False)
    out = tmp_path / "out"
    assert main(_plan_args(out, options=str(bad))) == 2
    err = capsys.readouterr().err
    assert "NO-SUCH-LOAN" in err and "derecognised" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_plan_infeasible_exit_3(tmp_path, capsys) -> None:
    policy = tmp_path / "policy.toml"
    text = sample_path("policy.toml").read_text().replace("quota = 243805392.0", "quota = 1.0")
    policy.write_text(text)
    out = tmp_path / "out"
    status = main(_plan_args(out, policy=str(policy)))
    err = capsys.readouterr().err
    assert status == 3
    assert "write-off quota" in err and "CNY" in err
    assert not out.exists() or not any(out.iterdir())


def test_plan_no_solution_exit_4(tmp_path, monkeypatch, capsys) -> None:
    import npl_disposal.cli._commands as cli
    from npl_disposal.solvers.result import Status

    class NoPlan:
        status = Status.NO_SOLUTION

    monkeypatch.setattr(cli, "solve", lambda *a, **k: NoPlan())
    out = tmp_path / "out"
    assert main([*_plan_args(out), "--time-limit", "0.01"]) == 4
    assert "time limit" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_value_writes_an_options_table_plan_accepts(tmp_path) -> None:
    out = tmp_path / "options.csv"
    assert main(["value", str(sample_path("portfolio.csv")), "--out", str(out)]) == 0
    options = pd.read_csv(out)
    assert list(options.columns) == ["loan_id", "channel", "value", "pnl", "derecognised"]
    portfolio = pd.read_csv(sample_path("portfolio.csv"))
    retain = options[options["channel"] == "retain"]
    assert set(retain["loan_id"]) == set(portfolio["loan_id"])
    assert options["derecognised"].between(0, 1).all()
    assert main(_plan_args(tmp_path / "plan", options=str(out))) == 0


def test_plan_without_options_uses_own_valuation(tmp_path) -> None:
    args = [a for a in _plan_args(tmp_path / "out") if a != "--options"]
    args.remove(str(sample_path("options.csv")))
    assert main([*args, "--mode", "fractional"]) == 0
    assert (tmp_path / "out" / "plan.csv").exists()


def test_migration_writes_rows_summing_to_one(tmp_path) -> None:
    from npl_disposal.datasets import make_history

    history = tmp_path / "history.csv"
    make_history(300, 6, seed=2).to_csv(history, index=False)
    out = tmp_path / "matrix.csv"
    assert main(["migration", str(history), "--out", str(out)]) == 0
    matrix = pd.read_csv(out, index_col="from_state")
    assert (matrix.sum(axis=1) - 1).abs().max() < 1e-9
    assert list(matrix.index) == list(matrix.columns)


def test_migration_bad_history_exit_2(tmp_path, capsys) -> None:
    history = tmp_path / "history.csv"
    pd.DataFrame(
        {"loan_id": ["a", "a", "b"], "period": [1, 2, 1], "state": ["loss", "??", "loss"]}
    ).to_csv(history, index=False)
    assert main(["migration", str(history), "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert "history.csv" in err and "state" in err
    assert not (tmp_path / "m.csv").exists()


def test_tolerance_before_and_after_a_plan(tmp_path, capsys) -> None:
    files = [("portfolio", "csv"), ("branches", "csv"), ("policy", "toml"), ("options", "csv")]
    data = {k: str(sample_path(f"{k}.{e}")) for k, e in files}
    base = [
        "tolerance",
        data["portfolio"],
        "--branches",
        data["branches"],
        "--policy",
        data["policy"],
    ]
    assert main([*base, "--out", str(tmp_path / "before.csv")]) == 0
    before = pd.read_csv(tmp_path / "before.csv")
    assert (before["ratio_before"] == before["ratio_after"]).all()
    assert (~before["within"]).any()  # the sample has branches above the threshold today
    assert main(_plan_args(tmp_path / "plan", options=data["options"])) == 0
    plan = str(tmp_path / "plan" / "plan.csv")
    args = [*base, "--plan", plan, "--options", data["options"], "--out", str(tmp_path / "a.csv")]
    assert main(args) == 0
    after = pd.read_csv(tmp_path / "a.csv")
    assert after["within"].all()  # the policy enforces the tolerance
    assert (after["ratio_after"] <= after["threshold"] + 1e-12).all()
    # A file a person opens: no float noise (0.0459, not 0.045899999999999996) ...
    text = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    digits = [len(re.sub(r"[^0-9]", "", n).lstrip("0")) for n in re.findall(r"[0-9.]+", text)]
    assert max(digits) <= 15
    # ... and the same numbers as the computation, to 15 digits.
    from npl_disposal import load_policy, read_options, read_portfolio
    from npl_disposal.model.figures import branch_figures

    portfolio = read_portfolio(data["portfolio"], data["branches"])
    figures = branch_figures(portfolio, load_policy(data["policy"]), pd.read_csv(plan),
                             read_options(data["options"], portfolio))  # fmt: skip
    for column in ("ratio_after", "threshold", "headroom"):
        np.testing.assert_allclose(after[column], figures[column], rtol=1e-14, atol=1e-6)


def test_report_writes_the_html_report_and_the_workbook(tmp_path) -> None:
    out = tmp_path / "report"
    args = _plan_args(out)
    args[0] = "report"
    assert main([*args, "--mode", "fractional"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.xlsx"]
    html = (out / "report.html").read_text(encoding="utf-8")
    for table in ("tolerance", "wage-pool", "add-back", "budgets"):
        assert f'id="{table}"' in html


STAGES = ("read", "build", "solve", "figures", "write")


def test_plan_progress_writes_the_same_files_and_names_every_stage(tmp_path, capsys) -> None:
    import json

    assert main(_plan_args(tmp_path / "plain")) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert main([*_plan_args(tmp_path / "shown"), "--progress"]) == 0
    shown = capsys.readouterr()
    for name in ("plan.csv", "branches.csv"):
        assert (tmp_path / "shown" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    summaries = [
        json.loads((tmp_path / d / "summary.json").read_text()) for d in ("plain", "shown")
    ]
    for summary in summaries:
        del summary["solver"]["seconds"]
    assert summaries[0] == summaries[1]
    assert sorted(p.name for p in (tmp_path / "shown").iterdir()) == [
        "branches.csv", "plan.csv", "summary.json",
    ]  # fmt: skip
    # stdout is the command's output alone: the same text save the solve's seconds
    seconds = re.compile(r"\d+\.\d+ s\)")
    assert seconds.sub("", shown.out) == seconds.sub("", quiet.out).replace("plain", "shown")
    lines = shown.err.splitlines()  # captured stderr is not a terminal: plain lines
    for stage in STAGES:
        assert f"{stage} ..." in lines
        assert any(re.fullmatch(rf"{stage} done in \d+\.\d\d s.*", line) for line in lines)
    assert "value ..." not in lines  # --options given: the library values nothing
    assert any(re.fullmatch(r"solve done in .* \(optimal, gap .*\)", line) for line in lines)


def test_verbose_and_progress_on_value(tmp_path, capsys) -> None:
    out = tmp_path / "options.csv"
    assert main(["value", str(sample_path("portfolio.csv")), "--out", str(out), "-v"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" ")[0] for line in err] == ["read", "read", "value", "value", "write",
                                                    "write"]  # fmt: skip
    assert err[-1].endswith("[1/1]")


def test_progress_shows_the_failing_stage_then_the_error(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    status = main([*_plan_args(out, policy=str(tmp_path / "none.toml")), "--progress"])
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[:2] == ["read ...", lines[1]] and lines[1].startswith("read failed after")
    assert "none.toml" in lines[2]
    assert not out.exists()


@pytest.mark.parametrize("limit", ["0.05", "0.5"])
def test_whole_loan_time_limit_writes_a_feasible_plan_or_exits_4(tmp_path, capsys, limit) -> None:
    """The sample with the library's own valuation takes seconds to prove; the limit stops it.

    Either the limit came before any plan (exit 4, nothing written) or the best verified plan
    is written with status "feasible" and a finite, positive gap.
    """
    import json
    import math

    args = [a for a in _plan_args(tmp_path / "out") if a != "--options"]
    args.remove(str(sample_path("options.csv")))
    status = main([*args, "--mode", "whole_loan", "--time-limit", limit, "--progress"])
    captured = capsys.readouterr()
    out = tmp_path / "out"
    assert status in (0, 4), captured.err
    if status == 4:
        assert "no feasible plan was found within the time limit" in captured.err
        assert "solve done in" in captured.err and "(no plan within the time limit)" in captured.err
        assert captured.out == ""
        assert not out.exists() or not any(out.iterdir())
        return
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "feasible"
    assert summary["mode"] == "whole_loan"
    assert math.isfinite(summary["gap"]) and summary["gap"] > 0
    assert summary["bound"] > summary["objective"]
    assert math.isclose(
        summary["gap"], (summary["bound"] - summary["objective"]) / abs(summary["bound"])
    )
    assert captured.out.startswith("feasible whole_loan plan")
    plan = pd.read_csv(out / "plan.csv")
    assert plan.groupby("loan_id")["share"].sum().round(9).eq(1).all()
    assert plan["share"].isin([1.0]).all()  # whole loans
    assert len(plan) == pd.read_csv(sample_path("portfolio.csv")).shape[0]


def test_plan_in_chinese_prints_chinese_and_writes_the_same_files(tmp_path, capsys) -> None:
    assert main([*_plan_args(tmp_path / "en")]) == 0
    english = capsys.readouterr().out
    assert main([*_plan_args(tmp_path / "zh"), "--lang", "zh"]) == 0
    chinese = capsys.readouterr().out
    assert "write_off" in english and "wrote plan.csv, branches.csv and summary.json" in english
    for word in ("核销", "批量转让", "处置方式结构", "万元", "紧约束：", "已将 plan.csv"):
        assert word in chinese
    assert not re.search(r"\b(write_off|bulk_transfer|retain|binding)\b", chinese)
    for name in ("plan.csv", "branches.csv"):
        assert (tmp_path / "en" / name).read_bytes() == (tmp_path / "zh" / name).read_bytes()


def test_schedule_plan_in_chinese_shows_each_period(tmp_path, capsys) -> None:
    args = _plan_args(tmp_path / "s", policy=str(sample_path("schedule_policy.toml")))
    args.remove("--options")
    args.remove(str(sample_path("options.csv")))
    assert main([*args, "--lang", "zh"]) == 0
    said = capsys.readouterr().out
    assert "第1期（万元）" in said and "留存至期末（万元）" in said
    assert "schedule.csv" in said


def test_value_and_migration_in_chinese(tmp_path, capsys) -> None:
    from npl_disposal.datasets import make_history

    out = tmp_path / "options.csv"
    assert main(["value", str(sample_path("portfolio.csv")), "--out", str(out),
                 "--lang", "zh"]) == 0  # fmt: skip
    assert "已估值 2,000 笔贷款" in capsys.readouterr().out
    history = tmp_path / "history.csv"
    make_history(300, 6, seed=2).to_csv(history, index=False)
    assert main(["migration", str(history), "--out", str(tmp_path / "m.csv"),
                 "--lang", "zh"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    for word in ("迁徙矩阵", "次级", "可疑", "损失", "已核销", "期初状态"):
        assert word in said
    assert not re.search(r"\b(substandard|doubtful|written_off|from_state)\b", said)


def test_a_failing_disk_exits_2_with_one_line_and_keeps_the_old_output(
    tmp_path, monkeypatch, capsys
) -> None:
    import errno

    from npl_disposal.solvers.result import AllocationResult

    out = tmp_path / "plan"
    assert main(_plan_args(out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(AllocationResult, "write", full)
    assert main(_plan_args(out)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"npl-disposal: {out}: No space left on device; nothing was written; an "
                   "output folder there was left as it was")  # fmt: skip
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_report_help_names_what_report_writes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "folder for report.html" in said and "plan.csv" not in said.split("--out")[-1]


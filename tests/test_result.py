"""An AllocationResult writes its three files all or nothing, and shows itself briefly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.datasets import make_portfolio
from npl_disposal.model.figures import BRANCH_FIGURES
from npl_disposal.solvers.result import AllocationResult


@pytest.fixture(scope="module")
def result() -> AllocationResult:
    data = make_portfolio(400, 5, seed=7)
    problem = build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                            data.options)  # fmt: skip
    return solve(problem, "fractional")


def test_write_gives_the_plan_the_branches_and_the_summary(
    result: AllocationResult, tmp_path: Path
) -> None:
    written = result.write(tmp_path / "out")
    assert [p.name for p in written] == ["plan.csv", "branches.csv", "summary.json"]
    plan = pd.read_csv(tmp_path / "out" / "plan.csv", dtype={"loan_id": str})
    expected = result.plan.astype({"loan_id": str, "channel": str})
    pd.testing.assert_frame_equal(
        plan.sort_values(["loan_id", "channel"]).reset_index(drop=True),
        expected.sort_values(["loan_id", "channel"]).reset_index(drop=True),
        check_dtype=False,
    )
    branches = pd.read_csv(tmp_path / "out" / "branches.csv")
    assert list(branches.columns[: 1 + len(BRANCH_FIGURES)]) == ["branch", *BRANCH_FIGURES]
    assert len(branches) == len(result.problem.branches)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["objective"] == pytest.approx(result.objective, rel=1e-12)
    assert summary["status"] == result.status.value
    assert set(summary["constraints"]) == set(result.constraints["name"])


def test_a_failed_write_leaves_the_folder_as_it_was(
    result: AllocationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.csv").write_text("old plan\n", encoding="utf-8")

    def broken(frame: pd.DataFrame, path: Path) -> None:
        path.write_text("half", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr("npl_disposal.solvers.result.write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        result.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["plan.csv"]
    assert (out / "plan.csv").read_text(encoding="utf-8") == "old plan\n"


def test_branch_figures_are_computed_once_and_handed_out_as_copies(
    result: AllocationResult,
) -> None:
    first = result.branch_figures()
    first.loc[:, "npl_loss"] = -1.0
    again = result.branch_figures()
    assert (again["npl_loss"] >= 0).all()
    assert result._figures and result._figures[0] is not again


def test_repr_is_one_short_line_and_the_notebook_view_a_small_table(
    result: AllocationResult,
) -> None:
    text = repr(result)
    assert "\n" not in text and len(text) < 200
    assert result.status.value in text and f"{result.objective / 1e6:,.2f}" in text
    view = result._repr_html_()
    assert view.count("<table") == 1
    for channel in result.problem.channels:
        assert channel in view
    assert "value (CNY m)" in view and len(view) < 5_000

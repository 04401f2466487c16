"""The HTML report and the charts, on the bundled sample (fractional plan: fast)."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.cli import sample_path
from npl_disposal.reports import (
    TABLE_IDS,
    compliance_table,
    disposal_summary,
    render_report,
    write_report,
)
from npl_disposal.solve import AllocationResult

try:
    import matplotlib

    matplotlib.use("Agg")
    HAVE_MPL = True
except ImportError:  # pragma: no cover - the dev venv has matplotlib
    HAVE_MPL = False

needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed")


@pytest.fixture(scope="module")
def result() -> AllocationResult:
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    problem = build_problem(pf, sample_path("policy.toml"), sample_path("options.csv"))
    return solve(problem, mode="fractional")


class _Tables(HTMLParser):
    """Collects every table's body rows (cell texts) by id, and the img sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[list[str]]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._part = "body"
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = {"head": [], "body": []}
        elif tag in ("thead", "tbody"):
            self._part = "head" if tag == "thead" else "body"
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table][self._part].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def frame(self, table_id: str) -> pd.DataFrame:
        t = self.tables[table_id]
        return pd.DataFrame(t["body"], columns=t["head"][0])


def _parse(text: str) -> _Tables:
    parser = _Tables()
    parser.feed(text)
    parser.close()
    return parser


def _num(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("%"))


@pytest.fixture(scope="module")
def report(result: AllocationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return write_report(result, out, title="Sample <plan> & co", priced=result)


def test_report_written_atomically(report: Path) -> None:
    assert report.name == "report.html"
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temp file left


def test_every_table_present_with_its_rows(result: AllocationResult, report: Path) -> None:
    parsed = _parse(report.read_text(encoding="utf-8"))
    assert set(TABLE_IDS) <= set(parsed.tables)
    n_branches = len(result.problem.branches)
    rows = {k: len(v["body"]) for k, v in parsed.tables.items()}
    for branch_table in ("tolerance", "wage-pool", "add-back"):
        assert rows[branch_table] == n_branches
    assert rows["summary"] == 7
    assert rows["channel-mix"] == len(result.channel_mix())
    assert rows["budgets"] == len(result.constraints)
    assert rows["compliance"] == len(compliance_table(result))
    detail = disposal_summary(result)
    assert rows["disposal"] == len(detail.groupby(["channel", "branch"], observed=True))


def test_title_escaped(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "<title>Sample &lt;plan&gt; &amp; co</title>" in text
    assert "<plan>" not in text


def test_branch_table_matches_branch_figures(result: AllocationResult, report: Path) -> None:
    parsed = _parse(report.read_text(encoding="utf-8"))
    figures = result.branch_figures().set_index("branch")
    tol = parsed.frame("tolerance").set_index("branch")
    for col in ("ratio_before", "ratio_after", "threshold"):
        shown = tol[f"{col} (%)"].map(_num)
        expected = (figures[col] * 100).round(2)
        np.testing.assert_allclose(shown.to_numpy(), expected.loc[shown.index].to_numpy())
    assert (tol["within"] == figures["within"].map({True: "yes", False: "no"})).all()
    np.testing.assert_allclose(
        tol["headroom (CNY m)"].map(_num).to_numpy(),
        (figures["headroom"] / 1e6).round(2).loc[tol.index].to_numpy(),
    )
    wage = parsed.frame("wage-pool").set_index("branch")
    for col in ("npl_loss", "profit_after", "relief", "wage_pool"):
        np.testing.assert_allclose(
            wage[f"{col} (CNY m)"].map(_num).to_numpy(),
            (figures[col] / 1e6).round(2).loc[wage.index].to_numpy(),
        )
    addback = parsed.frame("add-back").set_index("branch")
    for col in ("growth", "growth_restored"):
        np.testing.assert_allclose(
            addback[f"{col} (%)"].map(_num).to_numpy(),
            (figures[col] * 100).round(2).loc[addback.index].to_numpy(),
        )


def test_shadow_prices_from_priced(result: AllocationResult, report: Path) -> None:
    budgets = _parse(report.read_text(encoding="utf-8")).frame("budgets").set_index("name")
    expected = result.constraints.set_index("name")["shadow_price"]
    np.testing.assert_allclose(
        budgets["shadow_price"].map(_num).to_numpy(),
        expected.loc[budgets.index].round(4).to_numpy(),
    )


@needs_mpl
def test_charts_embedded(report: Path) -> None:
    images = _parse(report.read_text(encoding="utf-8")).images
    assert len(images) >= 4
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_report_without_matplotlib(
    result: AllocationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)
    text = write_report(result, tmp_path).read_text(encoding="utf-8")
    parsed = _parse(text)
    assert parsed.images == []
    assert "pip install &#x27;npl-disposal[plot]&#x27;" in text
    assert set(TABLE_IDS) <= set(parsed.tables)
    from npl_disposal import plots

    with pytest.raises(ImportError, match=r"npl-disposal\[plot\]"):
        plots.tolerance_before_after(result)


def test_disposal_summary_totals(result: AllocationResult) -> None:
    detail = disposal_summary(result)
    assert list(detail.columns) == [
        "channel", "branch", "classification", "age_bucket", "loans", "balance", "value", "pnl",
    ]  # fmt: skip
    pf = result.problem.portfolio
    assert round(detail["balance"].sum(), 2) == round(pf.total_balance, 2)
    assert detail["loans"].sum() == pytest.approx(pf.n_loans)
    mix = result.channel_mix()
    by_channel = detail.groupby("channel", observed=True)[["balance", "value", "pnl"]].sum()
    np.testing.assert_allclose(by_channel.to_numpy(), mix.loc[by_channel.index,
                               ["balance", "value", "pnl"]].to_numpy())  # fmt: skip
    by_branch = detail.groupby("branch", observed=True)["balance"].sum()
    np.testing.assert_allclose(
        by_branch.to_numpy(), pf.by_branch()["balance"].loc[by_branch.index].to_numpy()
    )


def test_compliance_covers_forced_out_loans(result: AllocationResult) -> None:
    table = compliance_table(result)
    forced = table[~table["rule"].str.contains("no other channel")]
    assert forced["loans"].sum() == pytest.approx(result.problem.forced_out.sum())
    assert "retain" not in set(forced["channel"].astype(str))


def test_render_report_without_priced_is_string(result: AllocationResult) -> None:
    text = render_report(result)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


@needs_mpl
def test_plots_return_axes(result: AllocationResult) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    from npl_disposal import plots
    from npl_disposal.valuation import ValuationAssumptions

    try:
        axes = [
            plots.channel_mix_by_branch(result),
            plots.tolerance_before_after(result),
            plots.recovery_by_age(),
            plots.recovery_by_age(ValuationAssumptions.from_policy(result.problem.policy)),
            plots.shadow_prices(result),
            plots.what_if_curve([1e8, 3e8, 2e8], [1.1e9, 1.3e9, 1.2e9]),
        ]
        assert all(isinstance(ax, Axes) for ax in axes)
        _fig, ax = plt.subplots()
        assert plots.what_if_curve([1e8], [2e8], ax=ax) is ax
        with pytest.raises(ValueError, match="differ in length"):
            plots.what_if_curve([1.0, 2.0], [1.0])
    finally:
        plt.close("all")


def test_whole_loan_report_priced_by_lp(result: AllocationResult, tmp_path: Path) -> None:
    whole = solve(result.problem, mode="whole_loan", time_limit=30)
    parsed = _parse(write_report(whole, tmp_path, priced=result).read_text(encoding="utf-8"))
    budgets = parsed.frame("budgets").set_index("name")
    assert "binding_lp" in budgets.columns
    expected = result.constraints.set_index("name")["shadow_price"].round(4)
    np.testing.assert_allclose(
        budgets["shadow_price"].map(_num).to_numpy(), expected.loc[budgets.index].to_numpy()
    )
    summary = dict(parsed.tables["summary"]["body"])
    assert summary["mode"] == "whole_loan"
    assert len(parsed.tables["tolerance"]["body"]) == len(whole.problem.branches)

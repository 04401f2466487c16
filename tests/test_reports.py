"""The HTML report and the charts, on the bundled sample (fractional plan: fast)."""

from __future__ import annotations

import itertools
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.cli import main
from npl_disposal.datasets import sample_path
from npl_disposal.exceptions import ExcelUnavailableError
from npl_disposal.reporting import (
    TABLE_IDS,
    WORKBOOK_NAME,
    WORKBOOK_SHEETS,
    compliance_table,
    disposal_summary,
    render_report,
    report_tables,
    write_report,
    write_workbook,
)
from npl_disposal.solvers.result import AllocationResult
from strategies.samples import sample_plan_named
from strategies.schedule import two_window_tables

try:
    import matplotlib

    matplotlib.use("Agg")
    HAVE_MPL = True
except ImportError:  # pragma: no cover - the dev venv has matplotlib
    HAVE_MPL = False

needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed")

try:
    import openpyxl

    HAVE_OPENPYXL = True
except ImportError:  # pragma: no cover - the dev venv has openpyxl (extra `excel`)
    HAVE_OPENPYXL = False

needs_openpyxl = pytest.mark.skipif(not HAVE_OPENPYXL, reason="openpyxl not installed")
EXCEL_HINT = r"pip install 'npl-disposal\[excel\]'"


@pytest.fixture(scope="module")
def result() -> AllocationResult:
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    problem = build_problem(pf, sample_path("policy.toml"), sample_path("options.csv"))
    return solve(problem, mode="fractional")


class _Tables(HTMLParser):
    """Collects every table's body rows (cell texts) by id, the img sources and the charts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[list[str]]]] = {}
        self.images: list[str] = []
        self.charts: list[str] = []
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
        elif tag == "figure" and "chart" in (a.get("class") or ""):
            self.charts.append(a.get("aria-label") or "")

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
    packages = _parse(report.read_text(encoding="utf-8")).frame("packages")
    assert list(packages["package"]) == ["bulk_transfer-p1", "securitisation-p1"]
    mix = result.channel_mix()
    np.testing.assert_allclose(
        packages["balance at disposal (CNY m)"].map(_num).to_numpy(),
        (mix.loc[["bulk_transfer", "securitisation"], "balance"] / 1e6).round(2).to_numpy(),
    )


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


def _check_prices(shown: pd.Series, expected: pd.Series) -> None:
    """Shadow prices shown to 4 significant digits: ``105,352``, ``0.02339``, ``0``."""
    assert not shown.str.contains("e").any()
    np.testing.assert_allclose(shown.map(_num).to_numpy(), expected.to_numpy(), rtol=5e-4,
                               atol=5e-7)  # fmt: skip
    digits = shown.str.replace(r"[,.]", "", regex=True).str.lstrip("0")
    assert (digits.str.len() <= np.maximum(4, shown.str.split(".").str[0].str.len())).all()


def test_shadow_prices_from_priced(result: AllocationResult, report: Path) -> None:
    budgets = _parse(report.read_text(encoding="utf-8")).frame("budgets").set_index("name")
    expected = result.constraints.set_index("name")["shadow_price"]
    _check_prices(budgets["shadow_price"], expected.loc[budgets.index])
    assert budgets.loc["restructure_max_loans", "shadow_price"] == "105,352"


def test_gap_in_percent_and_short_cells_on_one_line(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    summary = dict(_parse(text).tables["summary"]["body"])
    assert summary["gap"] == "< 0.0001%" or summary["gap"].endswith("%")
    assert "e-" not in summary["gap"]
    # Chinese words in cells and headers break at punctuation, not inside (万元, 单位).
    assert "th,td{word-break:keep-all}" in text and "td.num{" in text


@needs_mpl
def test_charts_embedded(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert len(parsed.charts) >= 4 and parsed.images == []
    assert text.count("<svg") == len(parsed.charts)
    assert "<?xml" not in text  # inline SVG, not documents
    assert "<text " in text and "Channel mix by branch</text>" in text  # text stays text


def test_report_without_matplotlib(
    result: AllocationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)
    text = write_report(result, tmp_path).read_text(encoding="utf-8")
    parsed = _parse(text)
    assert parsed.images == [] and parsed.charts == []
    assert "pip install &#39;npl-disposal[plot]&#39;" in text  # escaped
    assert set(TABLE_IDS) <= set(parsed.tables)
    from npl_disposal.reporting import plots

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

    from npl_disposal.reporting import plots
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


#: Chinese branch names as a bank writes them, for the sample's B001..B008.
ZH_BRANCHES = {f"B00{k + 1}": name for k, name in enumerate(
    ["北京分行营业部", "上海浦东支行", "广州天河支行", "深圳南山支行", "杭州西湖支行",
     "成都高新支行", "武汉光谷支行", "西安雁塔支行"])}  # fmt: skip


@pytest.fixture(scope="module")
def zh_result() -> AllocationResult:
    return sample_plan_named(ZH_BRANCHES)


def _laid_out(draw: Any) -> Any:
    """The Axes ``draw`` draws on, laid out as the report lays its charts out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from npl_disposal.reporting.plots import _GLYPH_WARNING

    with warnings.catch_warnings():  # measured without a CJK font: the browser has its own
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        fig = Figure(figsize=(7.5, 4.0), dpi=100)
        FigureCanvasAgg(fig)
        ax = draw(fig.subplots())
        fig.tight_layout()
        fig.canvas.draw()
    return ax


def _tick_texts(axis: Any) -> list[str]:
    return list(axis.get_major_formatter().format_ticks(axis.get_majorticklocs()))


@needs_mpl
def test_long_chinese_branch_names_are_turned_short_names_centred(
    result: AllocationResult, zh_result: AllocationResult
) -> None:
    from npl_disposal.reporting import plots

    for draw in (plots.channel_mix_by_branch, plots.tolerance_before_after):
        turned = _laid_out(lambda ax, d=draw: d(zh_result, ax, "zh"))
        labels_ = turned.get_xticklabels()
        assert [t.get_text() for t in labels_] == list(ZH_BRANCHES.values())
        angle = labels_[0].get_rotation()
        assert 0 < angle <= 90 and {t.get_ha() for t in labels_} == {"right"}
        # Turned, the parallel labels stand more than a line of text apart.
        ticks = turned.transData.transform([(x, 0) for x in turned.get_xticks()])[:, 0]
        spacing = float(np.diff(ticks).min())
        line = labels_[0].get_fontsize() * turned.figure.dpi / 72
        assert spacing * np.sin(np.radians(angle)) >= 1.2 * line

        upright = _laid_out(lambda ax, d=draw: d(result, ax, "en"))
        labels_ = upright.get_xticklabels()
        assert {t.get_rotation() for t in labels_} == {0.0}
        assert {t.get_ha() for t in labels_} == {"center"}
        boxes = sorted((b.x0, b.x1) for b in (t.get_window_extent() for t in labels_))
        assert all(right < left for (_, right), (left, _) in itertools.pairwise(boxes))


@needs_mpl
def test_money_axes_have_separators_and_chinese_ones_their_unit(
    result: AllocationResult, zh_result: AllocationResult
) -> None:
    from npl_disposal.reporting import plots

    grouped = r"^-?\d{1,3}(,\d{3})*(\.\d+)?$"
    en = _laid_out(lambda ax: plots.channel_mix_by_branch(result, ax, "en"))
    texts = _tick_texts(en.yaxis)
    assert all(pd.Series(texts).str.match(grouped)) and "1,000" in texts
    assert en.get_ylabel() == "balance (CNY m)"
    np.testing.assert_allclose([_num(t) for t in texts], en.get_yticks())
    # The largest branch disposes of about CNY 1 bn: in Chinese, 亿元 rather than 100,000 万元.
    zh = _laid_out(lambda ax: plots.channel_mix_by_branch(zh_result, ax, "zh"))
    texts = _tick_texts(zh.yaxis)
    assert zh.get_ylabel() == "余额（亿元）" and all(pd.Series(texts).str.match(grouped))
    np.testing.assert_allclose([_num(t) * 1e4 for t in texts], zh.get_yticks())
    small = _laid_out(lambda ax: plots.what_if_curve([1e8, 2e9], [1.1e9, 1.3e9], ax=ax))
    assert "2,000" in _tick_texts(small.xaxis)


@needs_mpl
def test_shadow_prices_are_labelled_within_the_chart(result: AllocationResult) -> None:
    from npl_disposal.reporting import plots
    from npl_disposal.reporting.tables import price_text

    for lang in ("en", "zh"):
        ax = _laid_out(lambda ax, lang=lang: plots.shadow_prices(result, ax, lang))
        notes = [t for t in ax.texts if t.get_text()]
        prices = result.binding()["shadow_price"].dropna().to_numpy(dtype=float)
        assert [t.get_text() for t in notes] == [price_text(v) for v in prices]
        assert "0" in [t.get_text() for t in notes] and (prices == 0).any()
        assert not any("e+" in t.get_text() or "e-" in t.get_text() for t in notes)
        width = ax.figure.bbox.width
        assert all(t.get_window_extent().x1 <= width for t in notes)
        assert all(t.get_window_extent().x1 <= ax.bbox.x1 + 1 for t in notes)


def test_prices_and_gaps_read_as_numbers() -> None:
    from npl_disposal.reporting.tables import gap_text, price_text

    assert price_text(105_351.7) == "105,352" and price_text(0.0233912) == "0.02339"
    assert price_text(1.05432) == "1.054" and price_text(0.005) == "0.005"
    assert price_text(0.0) == "0" and price_text(3e-13) == "0"
    assert gap_text(6.586e-12) == "< 0.0001%" and gap_text(0.0) == "0%"
    assert gap_text(0.0123) == "1.23%" and gap_text(1.23e-4) == "0.012%"


def test_whole_loan_report_priced_by_lp(result: AllocationResult, tmp_path: Path) -> None:
    whole = solve(result.problem, mode="whole_loan", time_limit=30)
    parsed = _parse(write_report(whole, tmp_path, priced=result).read_text(encoding="utf-8"))
    budgets = parsed.frame("budgets").set_index("name")
    assert "binding_lp" in budgets.columns
    expected = result.constraints.set_index("name")["shadow_price"]
    _check_prices(budgets["shadow_price"], expected.loc[budgets.index])
    summary = dict(parsed.tables["summary"]["body"])
    assert summary["mode"] == "whole_loan"
    assert len(parsed.tables["tolerance"]["body"]) == len(whole.problem.branches)


# --------------------------------------------------------------------------- Excel workbook

MONEY_FORMAT = "#,##0.00"


@pytest.fixture(scope="module")
def workbook(result: AllocationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_OPENPYXL:  # pragma: no cover
        pytest.skip("openpyxl not installed")
    out = tmp_path_factory.mktemp("workbook")
    return write_workbook(result, out, title="Sample plan", priced=result)


@pytest.fixture(scope="module")
def book(workbook: Path) -> Any:
    return openpyxl.load_workbook(workbook)


@pytest.fixture(scope="module")
def sheets(workbook: Path) -> dict[str, pd.DataFrame]:
    return pd.read_excel(workbook, sheet_name=None, engine="openpyxl")


def _cents(values: object) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float), 2)


def _by_branch(frame: pd.DataFrame, order: pd.Series) -> pd.DataFrame:
    return frame.set_index("branch").loc[order.astype(str)]


@needs_openpyxl
def test_workbook_has_every_sheet(workbook: Path, book: Any) -> None:
    assert workbook.name == WORKBOOK_NAME
    assert [p.name for p in workbook.parent.iterdir()] == [WORKBOOK_NAME]  # no temp file left
    assert book.sheetnames == [WORKBOOK_SHEETS[t] for t in (*TABLE_IDS, "plan")]
    assert book.properties.title == "Sample plan"
    for ws in book.worksheets:
        assert len(ws.title) <= 31
        assert ws.freeze_panes == "A2"  # header row frozen
        letters = [cell.column_letter for cell in ws[1]]
        assert all(ws.column_dimensions[c].width >= len(str(ws[f"{c}1"].value)) for c in letters)


@needs_openpyxl
def test_workbook_headers_units_and_formats(book: Any) -> None:
    tolerance = book[WORKBOOK_SHEETS["tolerance"]]
    headers = [c.value for c in tolerance[1]]
    assert headers == [
        "branch", "inclusive_npl (CNY)", "inclusive_loans (CNY)", "derecognised (CNY)",
        "ratio_before (%)", "ratio_after (%)", "threshold (%)", "within", "headroom (CNY)",
    ]  # fmt: skip
    for ws in book.worksheets:
        for j, header in enumerate(c.value for c in ws[1]):
            column = [row[j] for row in ws.iter_rows(min_row=2)]
            if str(header).endswith("(CNY)"):
                assert all(c.number_format == MONEY_FORMAT for c in column), (ws.title, header)
            if str(header).endswith("(%)"):
                assert all(c.number_format == "0.00%" for c in column), (ws.title, header)
    summary = {r[0].value: r[1] for r in book[WORKBOOK_SHEETS["summary"]].iter_rows(min_row=2)}
    assert summary["objective (CNY)"].number_format == MONEY_FORMAT
    budgets = book[WORKBOOK_SHEETS["budgets"]]
    col = {c.value: c.column - 1 for c in budgets[1]}
    for row in budgets.iter_rows(min_row=2):
        if row[col["unit"]].value == "CNY":
            assert row[col["limit"]].number_format == MONEY_FORMAT
        else:
            assert row[col["limit"]].number_format in ("#,##0", "#,##0.00")


@needs_openpyxl
def test_workbook_numbers_equal_their_tables(
    result: AllocationResult, sheets: dict[str, pd.DataFrame]
) -> None:
    tables = report_tables(result, priced=result)
    units = {"(CNY)": 2, "(%)": None}
    for table_id, frame in tables.items():
        sheet = sheets[WORKBOOK_SHEETS[table_id]]
        assert len(sheet) == len(frame), table_id
        names = [c.rsplit(" (", 1)[0] for c in sheet.columns]
        assert names == list(frame.columns), table_id
        if table_id == "summary":
            continue  # its value column mixes kinds; checked below
        for header, name in zip(sheet.columns, names, strict=True):
            got, want = sheet[header], frame[name]
            if header.endswith(tuple(units)) or pd.api.types.is_float_dtype(want):
                np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-12)
            if header.endswith("(CNY)"):  # to the cent
                np.testing.assert_array_equal(_cents(got), _cents(want))
            elif pd.api.types.is_bool_dtype(want):
                assert got.astype(bool).tolist() == want.tolist()
            elif not pd.api.types.is_numeric_dtype(want):
                assert got.fillna("").astype(str).tolist() == want.fillna("").astype(str).tolist()
    summary = sheets[WORKBOOK_SHEETS["summary"]].set_index("item")["value"]
    assert summary["status"] == result.status.value and summary["mode"] == result.mode
    assert round(summary["objective (CNY)"], 2) == round(result.objective, 2)
    assert round(summary["bound (CNY)"], 2) == round(result.bound, 2)


@needs_openpyxl
def test_workbook_matches_the_results_frames(
    result: AllocationResult, sheets: dict[str, pd.DataFrame]
) -> None:
    """The same numbers, against the result's own DataFrames (not the report's copies)."""
    figures = result.branch_figures()
    for table_id, columns in [
        ("tolerance", ["inclusive_npl", "inclusive_loans", "derecognised", "headroom"]),
        ("wage-pool", ["npl_loss", "profit_after", "relief", "wage_pool"]),
        ("add-back", ["written_off", "increment", "increment_restored"]),
    ]:
        sheet = sheets[WORKBOOK_SHEETS[table_id]]
        expected = _by_branch(figures, sheet["branch"])
        for col in columns:
            np.testing.assert_array_equal(_cents(sheet[f"{col} (CNY)"]), _cents(expected[col]))
    tol = sheets[WORKBOOK_SHEETS["tolerance"]]
    expected = _by_branch(figures, tol["branch"])
    for col in ("ratio_before", "ratio_after", "threshold"):
        np.testing.assert_allclose(tol[f"{col} (%)"], expected[col], rtol=1e-12)
    assert tol["within"].tolist() == expected["within"].tolist()

    mix = sheets[WORKBOOK_SHEETS["channel-mix"]].set_index("channel")
    want = result.channel_mix().loc[mix.index]
    for col in ("balance", "value", "pnl"):
        np.testing.assert_array_equal(_cents(mix[f"{col} (CNY)"]), _cents(want[col]))
    np.testing.assert_allclose(mix["loans"], want["loans"])

    budgets = sheets[WORKBOOK_SHEETS["budgets"]].set_index("name")
    constraints = result.constraints.set_index("name").loc[budgets.index]
    for col in ("usage", "limit", "slack", "shadow_price"):
        np.testing.assert_allclose(budgets[col], constraints[col], rtol=1e-12)

    plan = sheets[WORKBOOK_SHEETS["plan"]]
    pd.testing.assert_frame_equal(
        plan, result.plan.reset_index(drop=True), check_dtype=False, check_exact=True
    )

    disposal = sheets[WORKBOOK_SHEETS["disposal"]]
    assert round(disposal["balance (CNY)"].sum(), 2) == round(
        result.problem.portfolio.total_balance, 2
    )
    comp = sheets[WORKBOOK_SHEETS["compliance"]]
    np.testing.assert_array_equal(
        _cents(comp["balance (CNY)"]), _cents(compliance_table(result)["balance"])
    )


@needs_openpyxl
def test_workbook_long_plan_gets_a_note(
    result: AllocationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("npl_disposal.reporting.excel.WORKBOOK_PLAN_ROWS", 10)
    path = write_workbook(result, tmp_path)
    plan = openpyxl.load_workbook(path)[WORKBOOK_SHEETS["plan"]]
    assert plan["A1"].value == "note" and plan.max_row == 2
    assert f"{len(result.plan):,} rows" in plan["A2"].value and "plan.csv" in plan["A2"].value


def test_workbook_without_openpyxl(
    result: AllocationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # `import openpyxl` now fails
    with pytest.raises(ExcelUnavailableError, match=EXCEL_HINT) as caught:
        write_workbook(result, tmp_path / "out")
    assert isinstance(caught.value, ImportError)
    assert not (tmp_path / "out").exists()  # nothing written
    monkeypatch.setattr("npl_disposal.reporting.html._charts_available", lambda: False)  # fast
    assert render_report(result).startswith("<!DOCTYPE html>")  # HTML needs no openpyxl


def _report_args(out: Path, *extra: str) -> list[str]:
    return [
        "report", str(sample_path("portfolio.csv")), "--branches",
        str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
        "--options", str(sample_path("options.csv")), "--out", str(out), "--mode", "fractional",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def no_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the charts: these tests are about the files written, and charts are slow."""
    monkeypatch.setattr("npl_disposal.reporting.html._charts_available", lambda: False)


@needs_openpyxl
@pytest.mark.usefixtures("no_charts")
def test_cli_report_writes_html_and_workbook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(_report_args(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.xlsx"]
    assert "report.xlsx" in capsys.readouterr().out
    book = openpyxl.load_workbook(out / "report.xlsx", read_only=True)
    assert book.sheetnames == [WORKBOOK_SHEETS[t] for t in (*TABLE_IDS, "plan")]
    plan = pd.read_excel(out / "report.xlsx", sheet_name=WORKBOOK_SHEETS["plan"], engine="openpyxl")
    assert plan.groupby("loan_id")["share"].sum().round(9).eq(1).all()


@pytest.mark.usefixtures("no_charts")
def test_cli_report_without_openpyxl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    out = tmp_path / "report"
    assert main(_report_args(out, "--excel")) == 2  # asked for explicitly: an error, first
    captured = capsys.readouterr()
    assert "pip install 'npl-disposal[excel]'" in captured.err and "Traceback" not in captured.err
    assert not out.exists()  # nothing written
    assert main(_report_args(out)) == 0  # not asked for: the HTML report, and a hint
    assert [p.name for p in out.iterdir()] == ["report.html"]
    stdout = capsys.readouterr().out
    assert "report.xlsx not written" in stdout and "pip install 'npl-disposal[excel]'" in stdout


@needs_openpyxl
@pytest.mark.usefixtures("no_charts")
def test_cli_report_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(_report_args(out, "--no-excel")) == 0
    assert [p.name for p in out.iterdir()] == ["report.html"]
    before = (out / "report.html").read_bytes()

    def broken(path: Path, data: bytes) -> int:
        raise OSError("disk full")

    # the workbook (a stand-in: the real one is tested above) fails while being written
    monkeypatch.setattr("npl_disposal.cli._commands.render_workbook", lambda *a, **k: b"xlsx")
    monkeypatch.setattr(Path, "write_bytes", broken)
    assert main(_report_args(out, "--excel")) == 2  # one line, not a traceback
    assert "disk full; nothing was written" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["report.html"]  # no xlsx, no scratch folder
    assert (out / "report.html").read_bytes() == before  # the old report left as it was


# --------------------------------------------------------------------------- a schedule's report


@pytest.fixture(scope="module")
def schedule() -> Any:
    from npl_disposal.model.schedule import build_schedule

    # Half the loans sell best now, half later; bulk transfer opens in both periods.
    loans, options = two_window_tables(("A", "B", "C"), 1e4)
    branches = pd.DataFrame({"branch": ["A", "B", "C"], "inclusive_loans": [1e8] * 3,
                             "profit": [1e7] * 3})  # fmt: skip
    policy = {"schedule": {"periods": 2}, "bulk_transfer": {"capacity": 1e8, "min_loans": 2},
              "write_off": {"quota": 1e8, "priority": "none"},
              "tolerance": {"bank_npl_ratio": 0.02, "at": "every_period"}}  # fmt: skip
    return build_schedule(loans, policy, options, branches)


def test_schedule_report(schedule: Any, tmp_path: Path) -> None:
    from npl_disposal.reporting import render_schedule_report
    from npl_disposal.solvers.timing import timing_value

    result = solve(schedule, mode="whole_loan")
    timing = timing_value(schedule)
    text = write_report(result, tmp_path, timing=timing).read_text(encoding="utf-8")
    parsed = _parse(text)
    assert {"summary", "schedule-mix", "tolerance-path", "wage-pool", "timing",
            "budgets"} <= set(parsed.tables)  # fmt: skip
    mix = parsed.frame("schedule-mix")
    assert list(mix["period"]) == ["period 1", "period 2"]
    np.testing.assert_allclose(mix["balance (CNY m)"].map(_num).sum(),
                               round(result.channel_mix()["balance"].sum() / 1e6, 2))  # fmt: skip
    path = parsed.frame("tolerance-path")
    assert len(path) == 3 * 2  # every branch at every checked period
    shown = parsed.frame("timing").set_index("plan")
    expected = timing.table().set_index("plan")
    for plan in ("all now", "myopic"):
        np.testing.assert_allclose(_num(shown.loc[plan, "gain (CNY m)"]),
                                   round(expected.loc[plan, "gain"] / 1e6, 2))  # fmt: skip
        np.testing.assert_allclose(_num(shown.loc[plan, "gain_pct"]),
                                   round(expected.loc[plan, "gain_pct"], 2))  # fmt: skip
    assert expected.loc["all now", "gain"] > 0  # waiting for the better window pays
    if HAVE_MPL:
        assert len(parsed.charts) == 2
    zh = render_schedule_report(result, timing, lang="zh")
    assert "处置时机的价值" in zh and "第2期" in zh and "全部首期处置" in zh
    without = render_schedule_report(result)
    assert "timing" not in _parse(without).tables


def test_extra_sections_escape_text_and_keep_trusted_html(result: AllocationResult) -> None:
    from npl_disposal.reporting.html import Section

    extra = Section("Risk <b>", "risk").note("a < b").html("<p id='frag'>kept</p>")
    text = render_report(result, extra_sections=[extra, Section("").html("<hr id='bare'>")])
    assert "<h2>Risk &lt;b&gt;</h2>" in text and "a &lt; b" in text
    assert "<p id='frag'>kept</p>" in text and "<h2></h2>" not in text
    assert text.index('id="section-risk"') < text.index("<hr id='bare'>")

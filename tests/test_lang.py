"""Chinese and English: the report, the workbook, the tapes and the printed tables.

``--lang zh`` changes what a person reads; the machine files keep their English
columns and keys.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.cli import main
from npl_disposal.datasets import sample_path
from npl_disposal.io.schema import STANDARD_CHANNELS
from npl_disposal.reporting import LANGUAGES, labels, render_report, write_workbook
from npl_disposal.reporting.excel import WORKBOOK_SHEETS_ZH
from npl_disposal.solvers.result import AllocationResult

ZH_CHANNELS = {"retain": "保留清收", "write_off": "核销", "bulk_transfer": "批量转让",
               "securitisation": "资产证券化", "restructure": "重组"}  # fmt: skip


@pytest.fixture(scope="module")
def result() -> AllocationResult:
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    problem = build_problem(pf, sample_path("policy.toml"), sample_path("options.csv"))
    return solve(problem, mode="fractional")


def test_labels_are_data_for_both_languages() -> None:
    assert LANGUAGES == ("en", "zh")
    zh, en = labels("zh"), labels("en")
    assert {c: zh.channel(c) for c in STANDARD_CHANNELS} == ZH_CHANNELS
    assert en.channel("write_off") == "write_off" and zh.channel("amc_b") == "amc_b"
    assert zh.money(123_456_789.0, total=True) == "1.23 亿元"
    assert zh.money(123_456.0) == "12.35 万元" and en.money(2_500_000.0) == "CNY 2.50m"
    assert zh.column("balance", "万元") == "余额（万元）"
    assert en.column("balance", "CNY m") == "balance (CNY m)"
    assert zh.rule("long_age + write_off_priority") == "长账龄应处置尽处置 + 应核尽核"
    assert zh.constraint("tolerance[B005]", "tolerance", "B005") == "普惠小微不良容忍度[B005]"
    assert zh.constraint("tolerance[B]@2", "tolerance", "B") == "普惠小微不良容忍度[B]（第2期）"
    assert zh.constraint("profit_max_loss@year1", "profit.max_loss") == "利润损失上限（第1年）"
    assert zh.constraint("amc_b_capacity", "amc_b.capacity") == "amc_b_capacity"
    window = zh.constraint("bulk_transfer_capacity@1", "bulk_transfer.capacity")
    by_period = zh.constraint("bulk_transfer_capacity_by_period@1",
                              "bulk_transfer.capacity_by_period")  # fmt: skip
    assert by_period == "分期批量转让规模上限（第1期）" and window != by_period
    with pytest.raises(ValueError, match="en, zh"):
        labels("fr")


def test_chinese_report(result: AllocationResult) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no glyph warning, nor any other
        text = render_report(result, priced=result, lang="zh")
    assert '<html lang="zh-CN">' in text
    for name in ZH_CHANNELS.values():
        assert f"<td>{name}</td>" in text
    assert "余额（万元）" in text and "处置后不良率（%）" in text and "亿元" in text
    assert "binding at a zero price" not in text and "紧约束但影子价格为零" in text
    mix = result.channel_mix()
    assert f"{mix.loc['bulk_transfer', 'balance'] / 1e4:,.2f}" in text  # 万元, 2 decimals
    assert "各机构处置方式结构</text>" in text or "matplotlib" not in text  # SVG text
    gap = re.search(r"最优间隙</td><td[^>]*>([^<]*)</td>", text)
    assert gap is not None and re.fullmatch(r"(&lt; 0\.0001|[\d.]+)%", gap.group(1))
    # The restructuring budget's price to the yuan, not 105,351.7000.
    assert ">105,352</td>" in text and "105,351.7" not in text


def test_english_report_keeps_its_words(result: AllocationResult) -> None:
    text = render_report(result, priced=result)
    assert '<html lang="en">' in text and "balance (CNY m)" in text
    assert "<td>bulk_transfer</td>" in text and "万元" not in text


def test_charts_without_a_cjk_font_warn_nothing(
    result: AllocationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr("npl_disposal.reporting.plots._installed_fonts", lambda: ["DejaVu Sans"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = render_report(result, lang="zh")
    assert "<svg" in text and "'Noto Sans CJK SC'" in text  # the browser is asked for CJK fonts


def test_chinese_workbook(result: AllocationResult, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    path = write_workbook(result, tmp_path, priced=result, lang="zh")
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == list(WORKBOOK_SHEETS_ZH.values())
    mix = pd.read_excel(path, sheet_name=WORKBOOK_SHEETS_ZH["channel-mix"], engine="openpyxl")
    assert list(mix.columns[:3]) == ["处置方式", "户数", "余额（元）"]
    assert set(mix["处置方式"]) <= set(ZH_CHANNELS.values())
    money = mix.set_index("处置方式")["余额（元）"]
    assert money["批量转让"] == pytest.approx(result.channel_mix().loc["bulk_transfer", "balance"])
    plan = pd.read_excel(path, sheet_name=WORKBOOK_SHEETS_ZH["plan"], engine="openpyxl")
    assert list(plan.columns) == ["贷款编号", "处置方式", "比例"]


def test_demo_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    for word in ("演示", "按五级分类", "次级", "亿元", "万元", *ZH_CHANNELS.values()):
        assert word in out, word


def test_lang_keeps_machine_files_english(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tolerance", str(sample_path("portfolio.csv")),
            "--branches", str(sample_path("branches.csv")),
            "--policy", str(sample_path("policy.toml"))]  # fmt: skip
    en, zh = tmp_path / "en.csv", tmp_path / "zh.csv"
    assert main([*args, "--out", str(en)]) == 0
    english = capsys.readouterr().out
    assert main([*args, "--out", str(zh), "--lang", "zh"]) == 0
    chinese = capsys.readouterr().out
    assert "outside tolerance" in english and "超出容忍度的机构" in chinese
    assert "处置前不良率" in chinese and re.search(r"\b\d+\.\d\d%", chinese)  # ratios in %
    assert en.read_bytes() == zh.read_bytes()  # the file is the same: English columns


def test_report_lang_and_tapes_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("npl_disposal.reporting.html._charts_available", lambda: False)
    out = tmp_path / "report"
    args = ["report", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
            "--options", str(sample_path("options.csv")), "--out", str(out),
            "--mode", "fractional", "--lang", "zh", "--tapes", "--no-excel"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "已写出" in printed and "资产包" in printed
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "tapes"]
    tapes = sorted(p.name for p in (out / "tapes").iterdir())
    assert tapes == ["bulk_transfer-p1.csv", "fields.csv", "packages.csv",
                     "securitisation-p1.csv"]  # fmt: skip
    assert "批量转让" in (out / "report.html").read_text(encoding="utf-8")
    assert main(args) == 0  # the folder, tapes included, is the library's own: replaced


def test_yes_no_cells_in_words_in_a_chinese_workbook(
    result: AllocationResult, tmp_path: Path
) -> None:
    pytest.importorskip("openpyxl")
    read = {}
    for lang in ("zh", "en"):
        path = write_workbook(result, tmp_path / lang, priced=result, lang=lang)
        read[lang] = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    zh = read["zh"]
    within = zh[WORKBOOK_SHEETS_ZH["tolerance"]]["是否达标"].dropna()
    binding = zh[WORKBOOK_SHEETS_ZH["budgets"]]["是否紧约束"].dropna()
    assert len(within) and len(binding)
    assert set(within) <= {"是", "否"} and set(binding) <= {"是", "否"}
    assert "是" in set(binding)  # the sample's plan binds a budget
    en = read["en"]["Branch tolerance"]["within"].dropna()
    assert set(en) <= {True, False}  # English keeps Excel's own booleans

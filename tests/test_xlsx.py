"""Excel in: .xlsx portfolios, branch tables and options read as CSV files are, same checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import (
    ExcelUnavailableError,
    PortfolioValidationError,
    read_options,
    read_portfolio,
)
from npl_disposal.cli import EXIT_BAD_INPUT, EXIT_OK, main
from npl_disposal.datasets import sample_path

pytest.importorskip("python_calamine")
pytest.importorskip("openpyxl")


def _sample(name: str) -> pd.DataFrame:
    return pd.read_csv(sample_path(f"{name}.csv"), dtype=str)


def _both(frame: pd.DataFrame, folder: Path, name: str) -> tuple[Path, Path]:
    """``frame`` (all text, as a CSV holds it) as CSV and as a workbook of typed cells."""
    csv, xlsx = folder / f"{name}.csv", folder / f"{name}.xlsx"
    frame.to_csv(csv, index=False)
    typed = frame.copy()
    for column in typed.columns:  # numbers as numbers, as a spreadsheet holds them
        numbers = pd.to_numeric(typed[column], errors="coerce")
        if column != "loan_id" and numbers.notna().sum() == typed[column].notna().sum():
            typed[column] = numbers
    typed.to_excel(xlsx, index=False)
    return csv, xlsx


def test_a_workbook_reads_as_its_csv(tmp_path: Path) -> None:
    loans_csv, loans_xlsx = _both(_sample("portfolio"), tmp_path, "portfolio")
    branches_csv, branches_xlsx = _both(_sample("branches"), tmp_path, "branches")
    from_csv = read_portfolio(loans_csv, branches_csv)
    from_xlsx = read_portfolio(loans_xlsx, branches_xlsx)
    pd.testing.assert_frame_equal(from_xlsx.loans, from_csv.loans)
    pd.testing.assert_frame_equal(from_xlsx.branches, from_csv.branches)
    options_csv, options_xlsx = _both(_sample("options"), tmp_path, "options")
    pd.testing.assert_frame_equal(
        read_options(options_xlsx, from_csv), read_options(options_csv, from_csv)
    )


def test_bad_cells_get_the_same_problems_and_rows_as_in_csv(tmp_path: Path) -> None:
    loans = _sample("portfolio").head(50)
    loans.loc[4, "balance"] = "-100"
    loans.loc[9, "classification"] = "unknown-class"
    loans.loc[14, "small_micro"] = "maybe"
    loans.loc[19, "loan_id"] = loans.loc[20, "loan_id"]
    loans.loc[29, "npl_age_months"] = "twelve"
    csv, xlsx = _both(loans, tmp_path, "bad")
    problems = {}
    for path in (csv, xlsx):
        with pytest.raises(PortfolioValidationError) as err:
            read_portfolio(path)
        problems[path.suffix] = err.value.problems.drop(columns=["file", "value"])
    assert len(problems[".csv"]) >= 5
    pd.testing.assert_frame_equal(problems[".xlsx"], problems[".csv"])
    with pytest.raises(PortfolioValidationError, match=r"bad\.xlsx, row 5, loan_id"):
        read_portfolio(xlsx)


def test_chinese_headers_text_ids_and_yes_no(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "贷款编号": ["000123", "000124"], "机构": ["北京分行", "北京分行"],
        "贷款余额": [1_000_000.0, 2_000_000.0], "贷款损失准备": [250_000.0, 1_000_000.0],
        "五级分类": ["次级", "可疑"], "不良账龄（月）": [3, 40], "是否小微": ["是", "否"],
        "是否普惠": [True, False],
    })  # fmt: skip
    frame.to_excel(tmp_path / "zh.xlsx", index=False)
    loans = read_portfolio(tmp_path / "zh.xlsx").loans
    assert loans["loan_id"].tolist() == ["000123", "000124"]
    assert loans["classification"].astype(str).tolist() == ["substandard", "doubtful"]
    assert loans["small_micro"].tolist() == [True, False]
    assert loans["inclusive"].tolist() == [True, False]


def test_a_workbook_saved_as_csv_is_read_as_a_workbook(tmp_path: Path) -> None:
    _, xlsx = _both(_sample("branches"), tmp_path, "branches")
    renamed = tmp_path / "export.csv"
    renamed.write_bytes(xlsx.read_bytes())
    frame = read_portfolio(sample_path("portfolio.csv"), renamed).branches
    assert frame is not None and len(frame) == len(_sample("branches"))


def test_a_damaged_workbook_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    assert main(["check", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "damaged.xlsx: cannot read it as an Excel workbook" in err
    assert "Traceback" not in err


def test_an_empty_sheet_is_bad_input(tmp_path: Path) -> None:
    pd.DataFrame().to_excel(tmp_path / "empty.xlsx", index=False)
    with pytest.raises(ValueError, match=r"empty\.xlsx: the sheet is empty"):
        read_portfolio(tmp_path / "empty.xlsx")


def test_without_calamine_the_message_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, xlsx = _both(_sample("portfolio").head(5), tmp_path, "portfolio")
    monkeypatch.setitem(sys.modules, "python_calamine", None)
    with pytest.raises(ExcelUnavailableError, match=r"npl-disposal\[xlsx\]"):
        read_portfolio(xlsx)
    assert main(["check", str(xlsx)]) == EXIT_BAD_INPUT
    assert "pip install 'npl-disposal[xlsx]'" in capsys.readouterr().err


def test_plan_from_workbooks(tmp_path: Path) -> None:
    files = {n: _both(_sample(n), tmp_path, n)[1] for n in ("portfolio", "branches", "options")}
    args = ["plan", str(files["portfolio"]), "--branches", str(files["branches"]),
            "--policy", str(sample_path("policy.toml")), "--options", str(files["options"]),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == EXIT_OK
    assert list(pd.read_csv(tmp_path / "out" / "plan.csv").columns) == [
        "loan_id", "channel", "share"]  # fmt: skip


def test_texts_read_as_missing_are_the_same_in_csv_and_workbooks(tmp_path: Path) -> None:
    from npl_disposal.io.schema import NA_TEXTS

    loans = _sample("portfolio").head(30)
    loans.loc[6, "branch"] = None
    for row, text in zip(range(8, 30), ("n/a", "NULL", "#N/A", "NA", "None"), strict=False):
        assert text in NA_TEXTS
        loans.loc[row, "balance"] = text
    loans.loc[20, "balance"] = "nothing"  # not a missing text: not a number
    csv, xlsx = _both(loans, tmp_path, "na")
    problems = {}
    for path in (csv, xlsx):
        with pytest.raises(PortfolioValidationError) as err:
            read_portfolio(path)
        problems[path.suffix] = err.value.problems.drop(columns=["file"])
    pd.testing.assert_frame_equal(problems[".xlsx"], problems[".csv"])
    said = problems[".csv"].set_index("row")["problem"]
    assert (said.loc[[7, 9, 10, 11, 12, 13]] == "missing").all()
    assert said.loc[21] == "not a number"


def _with_blank_rows(frame: pd.DataFrame, before: list[int]) -> list[list[str]]:
    """The header and rows of ``frame`` as text, a blank row inserted before each of ``before``."""
    rows: list[list[str]] = [list(frame.columns)]
    for i, row in enumerate(frame.itertuples(index=False)):
        rows += [[]] * before.count(i)
        rows.append(["" if pd.isna(v) else str(v) for v in row])
    return rows


@pytest.mark.parametrize("before", [[0, 0], [0, 5], [5, 7], []])
def test_blank_rows_do_not_shift_the_rows_named(tmp_path: Path, before: list[int]) -> None:
    """Row r is the r-th row below the header, blank rows counted, in CSV and workbooks."""
    import csv

    from openpyxl import Workbook

    loans = _sample("portfolio").head(30)
    loans.loc[10, "balance"] = "-5"
    loans.loc[25, "classification"] = "unknown-class"
    rows = _with_blank_rows(loans, before)
    with open(tmp_path / "b.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    book = Workbook()
    for row in rows:
        book.active.append([float(c) if c.replace(".", "").lstrip("-").isdigit() else c
                            for c in row] if row else [])  # fmt: skip
    book.save(tmp_path / "b.xlsx")
    for name in ("b.csv", "b.xlsx"):
        with pytest.raises(PortfolioValidationError) as err:
            read_portfolio(tmp_path / name)
        problems = err.value.problems.set_index("loan_id")["row"]
        for i in (10, 25):
            # the line (sheet row) holding the loan, less the header's line
            line = next(n for n, r in enumerate(rows) if r and r[0] == loans.at[i, "loan_id"])
            assert problems[loans.at[i, "loan_id"]] == line, (name, problems)


def test_a_title_above_the_header_is_pointed_out(tmp_path: Path) -> None:
    """A bank export with a title on row 1 and the header on row 3: the message says so."""
    import csv

    from openpyxl import Workbook

    from npl_disposal.cli import main

    text = sample_path("portfolio.csv").read_text(encoding="utf-8")
    rows = [list(r) for r in csv.reader(text.splitlines())]
    title = "某某银行 不良贷款清单"
    book = Workbook()
    for row in [[title], [], *rows[:20]]:
        book.active.append(row)
    book.save(tmp_path / "t.xlsx")
    with open(tmp_path / "t.csv", "w", newline="", encoding="utf-8") as f:  # Excel's export
        csv.writer(f).writerows([[title] + [""] * (len(rows[0]) - 1), [""] * len(rows[0]),
                                 *rows[:20]])  # fmt: skip
    for name in ("t.xlsx", "t.csv"):
        with pytest.raises(PortfolioValidationError) as err:
            read_portfolio(tmp_path / name)
        said = str(err.value)
        assert f"{name}: the header seems to be on row 3" in said, said
        assert "delete the rows above it" in said and "twice" not in said
    with open(tmp_path / "one.csv", "w", newline="", encoding="utf-8") as f:  # a one-cell title
        f.write(title + "\n\n")
        csv.writer(f).writerows(rows[:20])
    with pytest.raises(ValueError, match=r"one\.csv: the header seems to be on line 3"):
        read_portfolio(tmp_path / "one.csv")
    assert main(["check", str(tmp_path / "one.csv")]) == EXIT_BAD_INPUT

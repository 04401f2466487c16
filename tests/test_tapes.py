"""Loan tapes for buyers: one per package and pool, their fields, their files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from npl_disposal import build_problem, load_policy, read_portfolio, solve, value_options
from npl_disposal.datasets import sample_path
from npl_disposal.exceptions import OutputError
from npl_disposal.model.schedule import build_schedule
from npl_disposal.reporting import TAPE_FIELDS, loan_tapes, packages_table, write_tapes
from npl_disposal.solvers.result import AllocationResult


@pytest.fixture(scope="module")
def result() -> AllocationResult:
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    problem = build_problem(pf, sample_path("policy.toml"), sample_path("options.csv"))
    return solve(problem, mode="fractional")


def test_one_tape_per_sale_channel_used(result: AllocationResult) -> None:
    tapes = loan_tapes(result)
    mix = result.channel_mix()
    sold = [c for c in ("bulk_transfer", "securitisation") if mix.loc[c, "loans"] > 1e-9]
    assert list(tapes) == [f"{c}-p1" for c in sold]
    for channel in sold:
        tape = tapes[f"{channel}-p1"]
        assert tape.channel == channel and tape.period == 1
        np.testing.assert_allclose(tape.tape["balance_in_package"].sum(),
                                   mix.loc[channel, "balance"], rtol=1e-9)  # fmt: skip
        np.testing.assert_allclose(tape.tape["share_in_package"].sum(), mix.loc[channel, "loans"])
        planned = result.plan[result.plan["channel"] == channel]
        assert sorted(tape.tape["loan_id"]) == sorted(planned["loan_id"].astype(str))
        for dimension in ("classification", "age", "branch"):
            part = tape.breakdown[tape.breakdown["dimension"] == dimension]
            np.testing.assert_allclose(part["balance"].sum(), tape.figures["balance"])
    table = packages_table(tapes)
    assert list(table["package"]) == list(tapes)
    assert (table["collateral_cover"] >= 0).all()


def test_fields_follow_the_portfolio(result: AllocationResult) -> None:
    tape = next(iter(loan_tapes(result).values())).tape
    assert list(tape.columns) == [f.name for f in TAPE_FIELDS]  # the sample has every column
    loans = result.problem.portfolio.loans.set_index("loan_id")
    row = tape.iloc[0]
    assert row["principal_balance"] == loans.loc[row["loan_id"], "balance"]
    assert row["months_in_default"] == loans.loc[row["loan_id"], "npl_age_months"]
    assert {f.section for f in TAPE_FIELDS} == {"loan", "counterparty", "collateral",
                                                "enforcement"}  # fmt: skip
    assert all(f.label_en and f.label_zh for f in TAPE_FIELDS)


def test_a_missing_column_is_absent_not_invented(result: AllocationResult) -> None:
    loans = result.problem.portfolio.loans.drop(columns=["collateral_value", "industry"])
    pf = read_portfolio(loans, sample_path("branches.csv"))
    tape = next(iter(loan_tapes(result, pf).values()))
    assert "collateral_value" not in tape.tape and "industry" not in tape.tape
    assert "collateral_value" not in tape.figures and "principal_balance" in tape.tape


def test_a_plan_that_sells_nothing_has_no_tape(result: AllocationResult) -> None:
    problem = build_problem(result.problem.portfolio, {}, sample_path("options.csv"))
    kept = solve(problem, mode="fractional")
    sold = kept.plan["channel"].isin(["bulk_transfer", "securitisation"]).any()
    assert (loan_tapes(kept) == {}) is not bool(sold)
    assert list(packages_table({}).columns)[:2] == ["package", "channel"]


def _schedule_and_user_channel(disposal_factor: float = 1.0) -> AllocationResult:
    ids = ["a", "b", "c", "d"]
    loans = pd.DataFrame({
        "loan_id": ids, "branch": ["B1", "B1", "B2", "B2"], "balance": [100.0, 200.0, 300.0, 400.0],
        "provision": [50.0] * 4, "classification": ["loss"] * 4, "npl_age_months": [6.0] * 4,
        "small_micro": [True] * 4, "inclusive": [True] * 4,
    })  # fmt: skip
    rows = [(i, "retain", 3, 1.0, 0.0, 0.0) for i in ids]
    for t in (1, 2):  # a, b sell best now; c best later; d goes to a second buyer, amc_b
        rows += [(i, "bulk_transfer", t, (50.0 if t == 1 else 10.0) if i in "ab"
                  else (10.0 if t == 1 else 50.0), -1.0, 1.0) for i in "abc"]  # fmt: skip
    rows += [("d", "amc_b", 1, 80.0, -1.0, 1.0)]
    options = pd.DataFrame(rows, columns=["loan_id", "channel", "period", "value", "pnl",
                                          "derecognised"])  # fmt: skip
    today = options["loan_id"].map(dict(zip(ids, loans["balance"], strict=True)))
    options["balance"] = today * disposal_factor ** (options["period"].clip(upper=2) - 1)
    branches = pd.DataFrame({"branch": ["B1", "B2"], "inclusive_loans": [1e4, 1e4],
                             "profit": [1e6, 1e6]})  # fmt: skip
    policy = {"schedule": {"periods": 2}, "bulk_transfer": {"capacity": 1e6}}
    return solve(build_schedule(loans, policy, options, branches), mode="whole_loan")


def test_a_schedule_has_a_package_per_window_and_buyer() -> None:
    tapes = loan_tapes(_schedule_and_user_channel())
    assert list(tapes) == ["bulk_transfer-p1", "bulk_transfer-p2", "amc_b-p1"]
    assert sorted(tapes["bulk_transfer-p1"].tape["loan_id"]) == ["a", "b"]
    assert list(tapes["bulk_transfer-p2"].tape["loan_id"]) == ["c"]
    assert tapes["amc_b-p1"].figures["balance"] == 400.0
    assert "collateral_value" not in tapes["amc_b-p1"].tape  # the portfolio has none


def test_written_with_bom_and_workbooks(result: AllocationResult, tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    tapes = loan_tapes(result)
    out = tmp_path / "tapes"
    write_tapes(tapes, out, lang="zh")
    names = sorted(p.name for p in out.iterdir())
    expected = sorted([*(f"{n}.csv" for n in tapes), *(f"{n}.xlsx" for n in tapes),
                       "packages.csv", "fields.csv"])  # fmt: skip
    assert names == expected
    first = next(iter(tapes))
    raw = (out / f"{first}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfloan_id,branch,")  # BOM, English field names
    back = pd.read_csv(out / f"{first}.csv", encoding="utf-8-sig")
    assert len(back) == len(tapes[first].tape)
    book = pd.read_excel(out / f"{first}.xlsx", sheet_name=None, engine="openpyxl")
    assert list(book) == ["摘要", "明细", "字段说明"]
    assert "贷款编号" in book["明细"].columns and "批量转让" in book["摘要"].to_string()
    write_tapes(tapes, out, lang="en")  # a tapes folder is the library's own: replaced
    assert list(pd.read_excel(out / f"{first}.xlsx", sheet_name=None, engine="openpyxl")) == [
        "Summary", "Tape", "Fields"]


def test_report_tapes_in_gb18030(tmp_path: Path) -> None:
    """``report --tapes --encoding gb18030``: every CSV of the tapes in Chinese Windows' own."""
    from npl_disposal.cli import main

    out = tmp_path / "report"
    args = ["report", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
            "--options", str(sample_path("options.csv")), "--mode", "fractional", "--tapes",
            "--no-excel", "--encoding", "gb18030", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    csvs = sorted((out / "tapes").glob("*.csv"))
    assert {p.name for p in csvs} >= {"packages.csv", "fields.csv"} and len(csvs) > 2
    for path in csvs:
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        raw.decode("gb18030")
    fields = pd.read_csv(out / "tapes" / "fields.csv", encoding="gb18030")
    assert fields["unit_zh"].str.contains("元").any()


def test_gb18030_tapes_of_a_chinese_channel_are_rerun_into_their_folder(tmp_path: Path) -> None:
    """packages.csv in GB18030 still tells the library's tape files from a user's."""
    from npl_disposal.cli import main

    options = pd.read_csv(sample_path("options.csv"))
    extra = options[options["channel"] == "bulk_transfer"].assign(channel="债转股")
    options_path = tmp_path / "options.csv"
    pd.concat([options, extra]).to_csv(options_path, index=False)
    policy = tmp_path / "policy.toml"
    policy.write_text(sample_path("policy.toml").read_text(encoding="utf-8")
                      + '\n[channels."债转股"]\ncapacity = 100000000.0\n',
                      encoding="utf-8")  # fmt: skip
    out = tmp_path / "report"
    args = ["report", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(policy), "--options",
            str(options_path), "--mode", "fractional", "--tapes", "--no-excel",
            "--encoding", "gb18030", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    listed = pd.read_csv(out / "tapes" / "packages.csv", encoding="gb18030")
    assert listed["package"].str.startswith("债转股").any()
    assert main(args) == 0  # the same command, into its own folder


def test_a_folder_of_other_files_is_refused(result: AllocationResult, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.txt"):
        write_tapes(loan_tapes(result), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _assert_tapes_match_the_plan(result: AllocationResult) -> None:
    """Every package's tape totals the plan's balance and loans of its channel and period."""
    tapes = loan_tapes(result)
    mix = result.channel_mix()
    if "period" not in mix:  # one period: keyed by channel
        mix = mix.reset_index().assign(period=1)
    mix = mix.set_index(["channel", "period"])
    summary = result.to_dict()
    assert tapes
    for tape in tapes.values():
        planned = mix.loc[(tape.channel, tape.period)]
        n = len(tape.tape)
        np.testing.assert_allclose(tape.tape["balance_in_package"].sum(), planned["balance"],
                                   rtol=0, atol=0.005 * n + 1e-6)  # cents per loan  # fmt: skip
        np.testing.assert_allclose(tape.figures["balance"], tape.tape["balance_in_package"].sum())
        np.testing.assert_allclose(tape.figures["loans"], planned["loans"], atol=1e-9)
        written = (summary["periods"][str(tape.period)] if "periods" in summary
                   else summary["channels"])[tape.channel]["balance"]  # fmt: skip
        np.testing.assert_allclose(tape.figures["balance"], written, rtol=0, atol=0.005 * n + 1e-6)


def test_a_later_window_tapes_the_balance_and_age_at_disposal() -> None:
    result = _schedule_and_user_channel(disposal_factor=0.8)
    tapes = loan_tapes(result)
    later = tapes["bulk_transfer-p2"].tape.set_index("loan_id")
    assert later.loc["c", "principal_balance"] == pytest.approx(300.0 * 0.8)
    assert later.loc["c", "principal_balance_today"] == 300.0
    assert later.loc["c", "months_in_default"] == 6 + 3  # a quarter older at period 2
    _assert_tapes_match_the_plan(result)


@pytest.fixture(scope="module")
def later_windows(tmp_path_factory: pytest.TempPathFactory) -> AllocationResult:
    """The sample's schedule with bulk transfers held to periods 1 and 3 (fractional)."""
    text = sample_path("schedule_policy.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(capacity = 650516921\.0)$",
                  r"\1\ncapacity_by_period = [150000000.0, 0, 150000000.0, 0]", text)
    text = re.sub(r"(?m)^quota = 243805392\.0$", "quota = 600000000.0", text)
    policy = tmp_path_factory.mktemp("policy") / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    return solve(build_schedule(pf, policy), mode="fractional")


def test_a_fractional_schedule_tapes_what_the_plan_disposes(
    later_windows: AllocationResult,
) -> None:
    assert {t.period for t in loan_tapes(later_windows).values()} - {1}  # later windows sold
    _assert_tapes_match_the_plan(later_windows)


def test_a_one_period_plan_tapes_what_the_plan_disposes(result: AllocationResult) -> None:
    _assert_tapes_match_the_plan(result)


def test_no_text_becomes_a_formula_in_any_workbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from npl_disposal.reporting import excel

    hostile = '=HYPERLINK("http://x.test","a")'
    loans = pd.read_csv(sample_path("portfolio.csv"), dtype=str).head(300)
    pf = read_portfolio(loans, sample_path("branches.csv"))
    options = value_options(pf, policy=load_policy(sample_path("policy.toml")))
    result = solve(build_problem(pf, sample_path("policy.toml"), options), mode="fractional")
    # The readers refuse such text (test_portfolio.py); the writers must not trust that:
    # a frame changed in Python reaches them unread.
    pf.loans["industry"] = hostile
    write_tapes(loan_tapes(result), tmp_path / "tapes", lang="zh")
    books = sorted((tmp_path / "tapes").glob("*.xlsx"))
    assert books
    for path in books:
        book = openpyxl.load_workbook(path)
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"], path.name
        assert hostile in {c.value for c in cells}, path.name  # kept, as text
    # report.xlsx passes through the same guard before it is saved.
    guarded: list[object] = []
    real = excel.xl_as_text

    def spy(book: object) -> None:
        guarded.append(book)
        real(book)

    monkeypatch.setattr(excel, "xl_as_text", spy)
    excel.render_workbook(result, lang="zh")
    assert len(guarded) == 1


def test_the_text_guard_turns_every_formula_cell_into_text() -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from npl_disposal.reporting.excel import xl_as_text

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["=1+1", "@SUM(A1)", "plain", 3.5])
    assert sheet["A1"].data_type == "f"
    xl_as_text(book)
    assert [c.data_type for c in sheet[1]] == ["s", "s", "s", "n"]
    assert sheet["A1"].value == "=1+1"


def test_a_split_loan_counts_and_carries_its_share(
    result: AllocationResult, tmp_path: Path
) -> None:
    tapes = loan_tapes(result)
    assert any(t.figures["split_loans"] for t in tapes.values())  # the sample splits a loan
    write_tapes(tapes, tmp_path / "tapes", excel=False)
    table = pd.read_csv(tmp_path / "tapes" / "packages.csv", encoding="utf-8-sig")
    for row in table.itertuples():
        tape = pd.read_csv(tmp_path / "tapes" / f"{row.package}.csv", encoding="utf-8-sig")
        share = tape["share_in_package"]
        assert row.whole_loans == len(tape) and row.split_loans == tape["split"].sum()
        assert (tape["split"] == (share < 1)).all()
        np.testing.assert_allclose(row.loans, share.sum(), atol=1e-9)
        for whole, part, total in (
            ("principal_balance", "balance_in_package", row.balance),
            ("accrued_interest", "accrued_interest_in_package", row.accrued_interest),
            ("collateral_value", "collateral_value_in_package", row.collateral_value),
        ):
            np.testing.assert_allclose(tape[part], share * tape[whole].fillna(0), atol=0.005)
            np.testing.assert_allclose(tape[part].sum(), total, rtol=0, atol=1e-6)


def test_files_hold_cents_integers_and_formatted_fractions(
    result: AllocationResult, tmp_path: Path
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    write_tapes(loan_tapes(_schedule_and_user_channel(0.8)), tmp_path / "whole", excel=False)
    text = (tmp_path / "whole" / "packages.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[3] for line in text] == ["loans", "2", "1", "1"]  # not 2.0
    tapes = loan_tapes(result)
    write_tapes(tapes, tmp_path / "tapes", lang="zh")
    first = next(iter(tapes))
    tape = pd.read_csv(tmp_path / "tapes" / f"{first}.csv", encoding="utf-8-sig", dtype=str)
    assert tape["months_in_default"].str.fullmatch(r"\d+").all()
    assert tape["days_past_due"].str.fullmatch(r"\d+").all()
    assert tape["balance_in_package"].str.fullmatch(r"\d+(\.\d{1,2})?").all()  # cents
    fields = pd.read_csv(tmp_path / "tapes" / "fields.csv", encoding="utf-8-sig")
    assert fields.set_index("field").loc["principal_balance", "unit"].startswith("CNY yuan")
    book = openpyxl.load_workbook(tmp_path / "tapes" / f"{first}.xlsx")
    summary = {row[0].value: row[2] for row in book["摘要"].iter_rows(min_row=2)}
    cover = summary["抵押覆盖率（%）"]
    assert cover.number_format == "0.00%"
    assert cover.value == pytest.approx(tapes[first].figures["collateral_cover"])
    sheet = book["明细"]
    header = [c.value for c in sheet[1]]
    cells = [row[header.index("入包本金余额（元）")] for row in sheet.iter_rows(min_row=2)]
    assert {c.number_format for c in cells} == {"#,##0.00"}
    balance = summary["余额（元）"]
    assert balance.number_format == "#,##0.00"
    assert balance.value == pytest.approx(sum(c.value for c in cells), abs=1e-6)  # reconciles
    guarantee = header.index("担保覆盖率")
    assert {row[guarantee].number_format for row in sheet.iter_rows(min_row=2)} == {"0.00%"}


def test_workbook_labels_speak_the_readers_language(
    result: AllocationResult, tmp_path: Path
) -> None:
    pytest.importorskip("openpyxl")
    loans = result.problem.portfolio.loans.copy()
    loans["industry"] = loans["industry"].astype(object)
    loans.loc[loans.index[::2], "industry"] = "fishing_fleet"  # a code the labels do not know
    pf = read_portfolio(loans, sample_path("branches.csv"))
    tapes = loan_tapes(result, pf)
    first = next(iter(tapes))
    books = {}
    for lang in ("en", "zh"):
        write_tapes(tapes, tmp_path / lang, lang=lang)
        books[lang] = pd.read_excel(tmp_path / lang / f"{first}.xlsx", sheet_name=None,
                                    engine="openpyxl")
    en = books["en"]["Summary"]
    assert list(en.columns)[2] == "value"
    assert not [i for i in en["item"] if "_" in str(i)], "raw keys in the English summary"
    zh = books["zh"]
    assert list(zh["摘要"].columns)[2] == "数值"
    assert not [c for c in zh["字段说明"].columns if re.search("[A-Za-z]", c)]
    industries = set(zh["明细"]["所属行业"])
    assert "fishing_fleet" in industries and "制造业" in industries
    codes = industries | set(zh["明细"]["抵押物类型"])
    assert not {"manufacturing", "real_estate", "other"} & codes


def test_tapes_replace_only_tapes_and_never_a_users_file(
    result: AllocationResult, tmp_path: Path
) -> None:
    from npl_disposal.io.output import replace_folder

    tapes = loan_tapes(result)
    report = tmp_path / "report"
    replace_folder(report, {"report.html": lambda p: p.write_text("<html>", encoding="utf-8")})
    with pytest.raises(OutputError, match=r"holds a report \(report\.html\).*another folder"):
        write_tapes(tapes, report, excel=False)
    assert [p.name for p in report.iterdir()] == ["report.html"]
    out = tmp_path / "tapes"
    write_tapes(tapes, out, excel=False)
    with pytest.raises(OutputError, match=r"holds loan tapes .*not a report"):
        replace_folder(out, {"report.html": lambda p: p.write_text("", encoding="utf-8")})
    (out / "notes-p1.csv").write_text("mine", encoding="utf-8")  # a tape's name, not a tape
    with pytest.raises(OutputError, match=r"did not write \(notes-p1\.csv\)"):
        write_tapes(tapes, out, excel=False)
    assert (out / "notes-p1.csv").read_text(encoding="utf-8") == "mine"
    (out / "notes-p1.csv").unlink()
    write_tapes(tapes, out, excel=False)  # its own tapes: replaced


@pytest.mark.parametrize("channel", ["../evil", "a/b", "x\\y", "/abs"])
def test_a_package_name_that_leaves_the_folder_is_refused(
    result: AllocationResult, tmp_path: Path, channel: str
) -> None:
    from npl_disposal.reporting.tapes import folder_writer

    tape = next(iter(loan_tapes(result).values()))
    out = tmp_path / "deep" / "tapes"
    with pytest.raises(OutputError, match=r"not a file name inside the folder.*channel"):
        write_tapes({f"{channel}-p1": tape}, out, excel=False)
    for name in (f"{channel}.csv", "..", "."):
        with pytest.raises(OutputError, match="not a file name inside the folder"):
            folder_writer({name: lambda p: None})
    assert not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == []

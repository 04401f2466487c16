"""Loading, cleaning and validating the loan and branch tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal import Portfolio, PortfolioValidationError, read_options, read_portfolio
from npl_disposal.datasets import make_portfolio

SAMPLE = make_portfolio(300, 4, seed=7)

# (column, corrupted value or a callable of the frame and row, problem text)
CORRUPTIONS = {
    "balance_zero": ("balance", 0.0, "positive"),
    "balance_negative": ("balance", -5.0, "positive"),
    "balance_missing": ("balance", np.nan, "missing"),
    "balance_text": ("balance", "abc", "not a number"),
    "provision_negative": ("provision", -1.0, "negative"),
    "provision_above": ("provision", "ABOVE", "above"),
    "provision_missing": ("provision", np.nan, "missing"),
    "class_unknown": ("classification", "xyz", "unknown"),
    "class_performing": ("classification", "关注", "performing"),
    "age_negative": ("npl_age_months", -3.0, "negative"),
    "age_missing": ("npl_age_months", None, "missing"),
    "small_micro_bad": ("small_micro", "maybe", "yes/no"),
    "inclusive_bad": ("inclusive", "perhaps", "yes/no"),
    "inclusive_not_small": ("inclusive", "NOT_SMALL", "not small/micro"),
    "branch_unknown": ("branch", "B999", "not in"),
    "guarantee_above_one": ("guarantee_cover", 1.5, "outside"),
    "collateral_negative": ("collateral_value", -10.0, "negative"),
}


def corrupt(loans: pd.DataFrame, row: int, kind: str) -> tuple[pd.DataFrame, str]:
    column, value, _ = CORRUPTIONS[kind]
    bad = loans.copy()
    bad[column] = bad[column].astype(object)
    if value == "ABOVE":
        value = float(loans.at[row, "balance"]) * 1.5 + 1.0
    if value == "NOT_SMALL":
        bad.at[row, "small_micro"] = False
        value = True
    bad.at[row, column] = value
    return bad, column


def test_valid_sample_loads() -> None:
    pf = read_portfolio(SAMPLE.loans, SAMPLE.branches)
    assert pf.n_loans == len(SAMPLE.loans)
    assert pf.loans["balance"].dtype == np.float64
    assert pf.loans["small_micro"].dtype == bool
    assert list(pf.loans["classification"].cat.categories) == ["substandard", "doubtful", "loss"]
    assert pf.total_balance == pytest.approx(SAMPLE.loans["balance"].sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.integers(0, len(SAMPLE.loans) - 1), kind=st.sampled_from(sorted(CORRUPTIONS)))
def test_one_corrupted_row_is_named_alone(row: int, kind: str) -> None:
    bad, column = corrupt(SAMPLE.loans, row, kind)
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(bad, SAMPLE.branches)
    problems = info.value.problems
    loan_id = SAMPLE.loans.at[row, "loan_id"]
    assert set(problems["loan_id"]) == {loan_id}, problems
    assert set(problems["column"]) == {column}, problems
    assert set(problems["row"]) == {row + 1}
    assert CORRUPTIONS[kind][2] in problems["problem"].iloc[0]
    assert str(loan_id) in str(info.value) and column in str(info.value)


@settings(max_examples=20, deadline=None)
@given(rows=st.lists(st.integers(0, len(SAMPLE.loans) - 1), min_size=2, max_size=2, unique=True))
def test_duplicate_loan_id_names_both_rows(rows: list[int]) -> None:
    bad = SAMPLE.loans.copy()
    first, second = rows
    bad.at[second, "loan_id"] = bad.at[first, "loan_id"]
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(bad, SAMPLE.branches)
    problems = info.value.problems
    assert set(problems["column"]) == {"loan_id"}
    assert set(problems["row"]) == {first + 1, second + 1}
    assert "duplicate" in problems["problem"].iloc[0]


def test_every_problem_collected_before_raising() -> None:
    bad = SAMPLE.loans.copy()
    bad["balance"] = bad["balance"].astype(object)
    bad.loc[:29, "balance"] = -1.0
    bad.loc[40, "classification"] = "normal"
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(bad, SAMPLE.branches)
    err = info.value
    assert len(err.problems) == 31
    assert isinstance(err, ValueError)
    assert "and 11 more" in str(err)


def test_missing_required_column() -> None:
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(SAMPLE.loans.drop(columns=["provision", "inclusive"]))
    missing = info.value.problems
    assert set(missing["column"]) == {"provision", "inclusive"}
    assert missing["problem"].str.contains("required column").all()


def test_branch_table_problems() -> None:
    branches = SAMPLE.branches.copy()
    npl = SAMPLE.loans[SAMPLE.loans["inclusive"]].groupby("branch")["balance"].sum()
    first = branches.at[0, "branch"]
    branches.at[0, "inclusive_loans"] = npl[first] / 2
    branches.at[1, "wage_rate"] = 2.0
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(SAMPLE.loans, branches)
    problems = info.value.problems
    assert set(problems["column"]) == {"inclusive_loans", "wage_rate"}
    assert problems["problem"].str.contains(f"branch {first}").any()
    assert (problems["file"] == "branches").all()


def test_chinese_headers_and_classes(tmp_path) -> None:
    loans = SAMPLE.loans.head(20).copy()
    loans["classification"] = loans["classification"].map(
        {"substandard": "次级", "doubtful": "可疑", "loss": "损失"}
    )
    loans["small_micro"] = np.where(loans["small_micro"], "是", "否")
    loans["inclusive"] = np.where(loans["inclusive"], "1", "0")
    chinese = loans.rename(
        columns={
            "loan_id": "贷款编号",
            "branch": "机构",
            "balance": "贷款余额",
            "provision": "贷款损失准备",
            "classification": "五级分类",
            "npl_age_months": "不良账龄（月）",
            "small_micro": "是否小微",
            "inclusive": "是否普惠",
            "collateral_value": "抵押物价值",
        }
    )
    path = tmp_path / "export.csv"
    chinese.to_csv(path, index=False, encoding="gb18030")
    pf = read_portfolio(path)
    expected = read_portfolio(SAMPLE.loans.head(20))
    pd.testing.assert_frame_equal(
        pf.loans[expected.loans.columns].reset_index(drop=True),
        expected.loans,
        check_categorical=False,
    )


def test_leading_zero_ids_survive_csv(tmp_path) -> None:
    loans = SAMPLE.loans.head(5).copy()
    loans["loan_id"] = ["000123", "000124", "7", "08", "009"]
    path = tmp_path / "p.csv"
    loans.to_csv(path, index=False)
    assert list(read_portfolio(path).loans["loan_id"]) == list(loans["loan_id"])


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_file_round_trip(tmp_path, suffix: str) -> None:
    loans_path, branches_path = tmp_path / f"l.{suffix}", tmp_path / f"b.{suffix}"
    if suffix == "csv":
        SAMPLE.loans.to_csv(loans_path, index=False)
        SAMPLE.branches.to_csv(branches_path, index=False)
    else:
        pytest.importorskip("pyarrow")
        SAMPLE.loans.to_parquet(loans_path)
        SAMPLE.branches.to_parquet(branches_path)
    from_file = read_portfolio(loans_path, branches_path)
    in_memory = read_portfolio(SAMPLE.loans, SAMPLE.branches)
    pd.testing.assert_frame_equal(
        from_file.loans, in_memory.loans, check_categorical=False, check_dtype=False
    )
    assert from_file.source == loans_path.name


def test_problem_names_file(tmp_path) -> None:
    bad = SAMPLE.loans.copy()
    bad.loc[3, "npl_age_months"] = -1
    path = tmp_path / "loans.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(PortfolioValidationError, match=r"loans\.csv, row 4, loan_id"):
        read_portfolio(path)


def test_summaries_add_up() -> None:
    pf = read_portfolio(SAMPLE.loans, SAMPLE.branches)
    for table in (pf.by_class(), pf.by_branch(), pf.by_age()):
        assert table["loans"].sum() == pf.n_loans
        assert table["balance"].sum() == pytest.approx(pf.total_balance)
    ratios = pf.branch_ratios()
    assert ((ratios["npl_ratio"] > 0) & (ratios["npl_ratio"] <= 1)).all()
    assert "NPLs" in pf.summary()


def _options_case() -> tuple[Portfolio, pd.DataFrame]:
    data = make_portfolio(30, 2, seed=4)
    return read_portfolio(data.loans, data.branches), data.options.reset_index(drop=True)


@pytest.mark.parametrize("with_unknown_id", [False, True])
def test_bad_options_rows_are_all_named_in_one_error(with_unknown_id: bool) -> None:
    portfolio, options = _options_case()
    first = options.iloc[0]
    bad = options.copy()
    bad = pd.concat([bad, bad.iloc[[0]]], ignore_index=True)  # a duplicate (loan_id, channel)
    bad.loc[1, "derecognised"] = 1.5
    retain_rows = bad.index[(bad["channel"] == "retain") & (bad["loan_id"] != first["loan_id"])]
    dropped = bad.loc[retain_rows[0], "loan_id"]
    bad = bad.drop(index=retain_rows[0])
    if with_unknown_id:
        bad.loc[len(options) + 5] = ["NOT-A-LOAN", "retain", 1.0, 0.0, 0.0]
    with pytest.raises(PortfolioValidationError) as info:
        read_options(bad, portfolio)
    problems = info.value.problems
    said = set(problems["problem"])
    assert "duplicate (loan_id, channel)" in said
    named = (problems["loan_id"] == first["loan_id"]) & (problems["column"] == "channel")
    assert named.sum() == 2
    assert "share outside [0, 1]" in said
    assert "the loan has no retain row" in said
    assert dropped in set(problems["loan_id"])
    assert ("loan_id not in the portfolio" in said) == with_unknown_id


def test_parquet_text_columns_are_cleaned_as_in_csv(tmp_path) -> None:
    """Parquet text columns arrive as dictionaries; spaces, aliases and gaps are judged alike."""
    pytest.importorskip("pyarrow")
    loans = SAMPLE.loans.head(12).copy()
    loans["branch"] = loans["branch"].astype(str)
    loans.loc[0, "branch"] = f"  {loans.loc[0, 'branch']} "
    loans.loc[1, "classification"] = "次级"
    loans.loc[2, "classification"] = " Doubtful"
    loans["industry"] = loans["industry"].astype(object)
    loans.loc[3, "industry"] = None
    clean = read_portfolio(loans, SAMPLE.branches)
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"loans.{suffix}"
        loans.to_csv(path, index=False) if suffix == "csv" else loans.to_parquet(path)
        read = read_portfolio(path, SAMPLE.branches)
        pd.testing.assert_frame_equal(
            read.loans, clean.loans, check_categorical=False, check_dtype=False
        )
    loans.loc[4, "classification"] = "watch list"
    loans.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(PortfolioValidationError, match=r"bad\.parquet, row 5, .*classification"):
        read_portfolio(tmp_path / "bad.parquet", SAMPLE.branches)


@pytest.mark.parametrize("fault", ["repeated", "blank", "no_column"])
def test_a_bad_branch_id_is_reported_without_knock_on_problems(tmp_path, fault: str) -> None:
    """A repeated or blank branch, or no branch column: one clear error, no crash."""
    from npl_disposal.cli import EXIT_BAD_INPUT, main

    branches = SAMPLE.branches.copy()
    if fault == "repeated":
        branches = pd.concat([branches, branches.iloc[[0]]], ignore_index=True)
    elif fault == "blank":
        branches["branch"] = branches["branch"].astype(object)
        branches.loc[0, "branch"] = None
    else:
        branches = branches.rename(columns={"branch": "brunch"})
    for source in (branches, tmp_path / "b.csv"):
        if not isinstance(source, pd.DataFrame):
            branches.to_csv(source, index=False)
        with pytest.raises(PortfolioValidationError) as info:
            read_portfolio(SAMPLE.loans, source)
        problems = info.value.problems
        assert set(problems["column"]) == {"branch"}, problems
        assert problems["file"].isin(["branches", "b.csv"]).all(), problems
    SAMPLE.loans.to_csv(tmp_path / "l.csv", index=False)
    assert main(["check", str(tmp_path / "l.csv"), "--branches", str(tmp_path / "b.csv")]) == (
        EXIT_BAD_INPUT
    )


def _with_channel(options: pd.DataFrame, old: str, new: str) -> pd.DataFrame:
    out = options.copy()
    out["channel"] = out["channel"].astype(object).replace(old, new)
    return out


def test_a_misspelt_standard_channel_is_named_in_a_warning_unless_declared(
    tmp_path, capsys
) -> None:
    """Other channel names are allowed; one close to a standard name gets a warning."""
    import warnings

    from npl_disposal import build_problem, load_policy
    from npl_disposal.cli import main
    from npl_disposal.datasets import sample_path
    from npl_disposal.exceptions import ChannelWarning

    portfolio = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    options = pd.read_csv(sample_path("options.csv"))
    typo = _with_channel(options, "write_off", "writeoff")
    typo.to_csv(tmp_path / "x.csv", index=False)
    policy = load_policy(sample_path("policy.toml"))
    first = int(np.flatnonzero(typo["channel"] == "writeoff")[0])
    with pytest.warns(ChannelWarning) as caught:
        problem = build_problem(portfolio, policy, tmp_path / "x.csv")
    assert "writeoff" in problem.channels  # allowed: a channel of its own
    said = str(caught[0].message)
    assert said.startswith(f"x.csv: channel 'writeoff' (row {first + 1}, on ")
    assert f"on {int((typo['channel'] == 'writeoff').sum()):,} rows" in said
    assert "did you mean write_off?" in said and "[channels.writeoff]" in said
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a declared channel, or one far from any: no warning
        declared = policy.with_section("channels", writeoff={"capacity": 1e8})
        assert "writeoff" in build_problem(portfolio, declared, typo).channels
        assert "amc_b" in build_problem(portfolio, policy, _with_channel(options, "write_off",
                                                                         "amc_b")).channels
    out = tmp_path / "out"
    args = ["plan", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
            "--options", str(tmp_path / "x.csv"), "--out", str(out), "--mode", "fractional"]
    with warnings.catch_warnings():
        warnings.simplefilter("default", ChannelWarning)  # shown, whatever pytest's -W says
        assert main(args) == 0  # the command line says it in one line
    err = capsys.readouterr().err
    assert "npl-disposal: warning: x.csv: channel 'writeoff'" in err and "Traceback" not in err


def test_chinese_channel_names_are_the_standard_channels() -> None:
    from npl_disposal.io.schema import CHANNEL_NAMES_ZH
    from npl_disposal.reporting.labels import labels

    portfolio, options = _options_case()
    chinese = options.copy()
    chinese["channel"] = chinese["channel"].astype(object).map(lambda c: CHANNEL_NAMES_ZH[c])
    read = read_options(chinese, portfolio)
    expected = read_options(options, portfolio)
    assert read["channel"].astype(str).tolist() == expected["channel"].astype(str).tolist()
    assert all(labels("zh").channel(c) == zh for c, zh in CHANNEL_NAMES_ZH.items())


@pytest.mark.parametrize("name", ["../../pwned", "a/b", "a\\b", "..", "=cmd", "tab\there",
                                  "x" * 65])
def test_a_channel_name_unfit_for_a_file_name_is_refused(name: str, tmp_path) -> None:
    from npl_disposal.cli import EXIT_BAD_INPUT, main
    from npl_disposal.datasets import sample_path

    portfolio, options = _options_case()
    bad = options.copy()
    bad["channel"] = bad["channel"].astype(object)
    bad.loc[[3, 5], "channel"] = name
    with pytest.raises(PortfolioValidationError) as info:
        read_options(bad, portfolio)
    problems = info.value.problems
    flagged = problems[problems["column"] == "channel"]
    formula = name.startswith("=")  # refused cell by cell as a formula, else once by name
    assert flagged["row"].tolist() == ([4, 6] if formula else [4])
    assert set(flagged["value"]) == {name}
    said = flagged["problem"].iloc[0]
    assert ("Excel would read it" if formula else "not a usable channel name") in said
    sample = pd.read_csv(sample_path("options.csv"))
    sample.loc[1, "channel"] = name
    sample.to_csv(tmp_path / "o.csv", index=False)
    args = ["plan", str(sample_path("portfolio.csv")), "--branches",
            str(sample_path("branches.csv")), "--policy", str(sample_path("policy.toml")),
            "--options", str(tmp_path / "o.csv"), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == EXIT_BAD_INPUT


@pytest.mark.parametrize("name", ["1st", "x.csv", "_x", "AMC Beijing", "债转股", "trust-2"])
def test_other_channel_names_are_channels_of_their_own(name: str) -> None:
    portfolio, options = _options_case()
    other = options.copy()
    other["channel"] = other["channel"].astype(object)
    other.loc[[3, 5], "channel"] = name
    assert name in read_options(other, portfolio)["channel"].astype(str).tolist()


def test_a_loan_without_a_retain_row_is_named_by_its_id_not_a_row() -> None:
    portfolio, options = _options_case()
    lost = portfolio.loans["loan_id"].iloc[2]
    bad = options[~((options["loan_id"] == lost) & (options["channel"] == "retain"))]
    with pytest.raises(PortfolioValidationError) as info:
        read_options(bad.reset_index(drop=True), portfolio)
    problems = info.value.problems
    assert problems["loan_id"].tolist() == [lost]
    assert problems["row"].isna().all()  # no row of the options table holds it
    assert f"options, loan_id {lost}, column channel: the loan has no retain row" in str(
        info.value
    )


def test_a_blank_branch_is_missing_without_a_made_up_label() -> None:
    branches = SAMPLE.branches.copy()
    branches["branch"] = branches["branch"].astype(object)
    branches.loc[2, "branch"] = "  "
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(SAMPLE.loans, branches)
    problems = info.value.problems
    assert problems["problem"].tolist() == ["missing"]
    assert "branches, row 3, column branch: missing" in str(info.value)
    assert "nan" not in str(info.value)


FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://x","y")', "@SUM(A1)", "+cmd", "-2+cmd"]


@pytest.mark.parametrize("column", ["loan_id", "branch", "industry", "collateral_type"])
@pytest.mark.parametrize("formula", FORMULAS)
def test_a_text_excel_would_run_as_a_formula_is_refused(column: str, formula: str) -> None:
    bad = SAMPLE.loans.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[4, column] = formula
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(bad, SAMPLE.branches)
    problems = info.value.problems
    assert problems[["row", "column", "value"]].values.tolist() == [[5, column, formula]]
    assert "Excel would read it as a formula" in str(info.value)


def test_dashes_and_signed_numbers_stay_text() -> None:
    loans = SAMPLE.loans.copy()
    loans["industry"] = loans["industry"].astype(object)
    loans.loc[:3, "industry"] = ["-", "--", "-5", "+86 10 1234"]
    read = read_portfolio(loans, SAMPLE.branches).loans
    assert read.loc[:3, "industry"].astype(str).tolist() == ["-", "--", "-5", "+86 10 1234"]


def test_formulas_in_the_branch_table_and_options_are_refused(tmp_path) -> None:
    branches = SAMPLE.branches.copy()
    branches.loc[1, "branch"] = '=HYPERLINK("x")'
    branches.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(SAMPLE.loans, tmp_path / "b.csv")
    problems = info.value.problems  # no knock-on "branch not in b.csv" for the loans
    assert problems[["file", "row", "column"]].values.tolist() == [["b.csv", 2, "branch"]]
    portfolio, options = _options_case()
    bad = options.copy()
    bad["channel"] = bad["channel"].astype(object)
    bad.loc[2, "channel"] = "=1+1"
    with pytest.raises(PortfolioValidationError) as info:
        read_options(bad, portfolio)
    flagged = info.value.problems.query("column == 'channel'")
    assert flagged["row"].tolist() == [3]
    assert flagged["problem"].tolist() == ["Excel would read it as a formula"]


def test_a_problem_names_the_header_as_the_file_wrote_it(tmp_path) -> None:
    loans = SAMPLE.loans.head(20).copy()
    loans["balance"] = loans["balance"].astype(object)
    loans.loc[3, "balance"] = "abc"
    chinese = loans.rename(columns={"balance": "贷款余额", "loan_id": "贷款编号"})
    chinese.to_csv(tmp_path / "zh.csv", index=False)
    loans.to_csv(tmp_path / "en.csv", index=False)
    zh = "贷款余额 (balance)"
    cases = ((tmp_path / "zh.csv", zh), (chinese, zh), (tmp_path / "en.csv", "balance"))
    for source, shown in cases:
        with pytest.raises(PortfolioValidationError) as info:
            read_portfolio(source)
        assert info.value.problems["column"].tolist() == ["balance"]  # the canonical name
        assert f"row 4, loan_id {loans.at[3, 'loan_id']}, column {shown}: not a number" in str(
            info.value
        )


def test_empty_tables_and_blank_channels_bring_no_knock_on_problems() -> None:
    with pytest.raises(PortfolioValidationError) as info:
        read_portfolio(SAMPLE.loans, SAMPLE.branches.head(0))
    assert info.value.problems["problem"].tolist() == ["the table has no branches"]
    portfolio, options = _options_case()
    with pytest.raises(PortfolioValidationError) as info:
        read_options(options.head(0), portfolio)
    assert info.value.problems["problem"].tolist() == ["the table has no options"]
    blank = options.copy()
    blank["channel"] = blank["channel"].astype(object)
    blank.loc[[0, 1, 2], "channel"] = None  # a retain row among them: no 'no retain row'
    with pytest.raises(PortfolioValidationError) as info:
        read_options(blank, portfolio)
    problems = info.value.problems
    assert problems["problem"].tolist() == ["missing"] * 3
    assert problems["row"].tolist() == [1, 2, 3]

"""A Chinese-header CSV export in GB18030, read as is, and its validation message.

Core banking systems usually export loan lists with Chinese headers, Chinese
values (五级分类 次级/可疑/损失, 是/否 flags) and the GB18030 encoding. This
script writes such an export of the bundled sample into a temporary folder:

    贷款编号, 机构, 贷款余额, 贷款损失准备, 五级分类, 不良账龄（月）, 是否小微,
    是否普惠, 抵押物价值

plus a branch table (机构, 普惠小微贷款余额, 利润, 效益工资计提比例,
期初普惠小微贷款余额), loads both with ``read_portfolio`` (no renaming, no
re-encoding) and prints the summary. It then corrupts two cells (a negative
贷款余额 and the class 关注, which is performing, not an NPL) and shows the one
``PortfolioValidationError`` whose message names both, with file, row,
loan_id and column. Runs in about 1 s.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from npl_disposal import PortfolioValidationError, read_portfolio
from npl_disposal.datasets import sample_path

LOAN_HEADERS = {
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
BRANCH_HEADERS = {
    "branch": "机构",
    "inclusive_loans": "普惠小微贷款余额",
    "profit": "利润",
    "wage_rate": "效益工资计提比例",
    "inclusive_loans_start": "期初普惠小微贷款余额",
}
CLASSES = {"substandard": "次级", "doubtful": "可疑", "loss": "损失"}
FLAGS = {"True": "是", "False": "否"}


def write_chinese_export(folder: Path) -> tuple[Path, Path]:
    """Write the bundled sample as a Chinese-header GB18030 export; return both paths."""
    loans = pd.read_csv(sample_path("portfolio.csv"), dtype=str)[list(LOAN_HEADERS)]
    loans["classification"] = loans["classification"].map(CLASSES)
    for flag in ("small_micro", "inclusive"):
        loans[flag] = loans[flag].map(FLAGS)
    branches = pd.read_csv(sample_path("branches.csv"), dtype=str)[list(BRANCH_HEADERS)]
    loan_path, branch_path = folder / "不良贷款清单.csv", folder / "机构.csv"
    loans.rename(columns=LOAN_HEADERS).to_csv(loan_path, index=False, encoding="gb18030")
    branches.rename(columns=BRANCH_HEADERS).to_csv(branch_path, index=False, encoding="gb18030")
    return loan_path, branch_path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loan_path, branch_path = write_chinese_export(Path(tmp))
        raw = loan_path.read_bytes()
        print(f"Wrote {loan_path.name} ({len(raw):,} bytes, GB18030); first lines:")
        for line in raw.decode("gb18030").splitlines()[:3]:
            print(f"  {line}")

        portfolio = read_portfolio(loan_path, branch_path)
        print("\nLoaded with read_portfolio (headers and values mapped to the canonical names):")
        print(portfolio.summary())
        by_class = portfolio.by_class()
        by_class[["balance", "provision"]] /= 1e6
        by_class = by_class.rename(columns={"balance": "balance (CNY m)",
                                            "provision": "provision (CNY m)"})  # fmt: skip
        print(by_class.to_string(float_format=lambda x: f"{x:,.3f}"))
        ratios = portfolio.branch_ratios()
        ratios[["inclusive_npl", "inclusive_loans"]] /= 1e6
        print("\nInclusive small/micro NPL ratio by branch (money in CNY m):")
        print(ratios.to_string(float_format=lambda x: f"{x:,.4f}"))

        # Corrupt two cells: a negative balance (row 5) and a performing class (row 10).
        table = pd.read_csv(loan_path, dtype=str, encoding="gb18030")
        table.loc[4, "贷款余额"] = "-100"
        table.loc[9, "五级分类"] = "关注"
        table.to_csv(loan_path, index=False, encoding="gb18030")
        print("\nCorrupted 贷款余额 in data row 5 and 五级分类 in data row 10; reading again:")
        try:
            read_portfolio(loan_path, branch_path)
        except PortfolioValidationError as exc:
            print(exc)
            print(f"\n(.problems has {len(exc.problems)} rows, one per bad cell)")
        else:
            print("UNEXPECTED: the corrupted file was accepted (please report)")


if __name__ == "__main__":
    main()

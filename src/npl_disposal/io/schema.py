"""Canonical column names, units and the Chinese / English aliases accepted for them.

Money is CNY yuan (float64) everywhere; ages are months; shares are in [0, 1].
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "text", "money", "number", "share", "bool", "class"]


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, kind, whether it is required and its unit."""

    name: str
    kind: Kind
    required: bool
    unit: str
    aliases: tuple[str, ...] = ()


#: Cell texts read as a missing value, in CSV files and workbooks alike (pandas' defaults).
NA_TEXTS: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip

#: The five-class loan classification; NPL = substandard + doubtful + loss.
NPL_CLASSES: tuple[str, ...] = ("substandard", "doubtful", "loss")

CLASS_ALIASES: dict[str, str] = {
    "substandard": "substandard",
    "sub-standard": "substandard",
    "sub_standard": "substandard",
    "次级": "substandard",
    "次级类": "substandard",
    "doubtful": "doubtful",
    "可疑": "doubtful",
    "可疑类": "doubtful",
    "loss": "loss",
    "损失": "loss",
    "损失类": "loss",
}

#: Performing classes: named in the error so the user knows why they are refused.
PERFORMING_CLASSES = (
    "normal",
    "special mention",
    "special_mention",
    "special-mention",
    "正常",
    "关注",
    "正常类",
    "关注类",
)

BOOL_ALIASES: dict[str, bool] = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "1": True,
    "1.0": True,
    "是": True,
    "真": True,
    "对": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "0": False,
    "0.0": False,
    "否": False,
    "假": False,
    "不是": False,
}
BOOL_ALLOWED = "true/false, 1/0, yes/no, 是/否"

LOAN_COLUMNS: tuple[Column, ...] = (
    Column(
        "loan_id",
        "id",
        True,
        "identifier",
        ("贷款编号", "借据号", "借据编号", "贷款账号", "贷款号", "loan id", "loanid"),
    ),
    Column(
        "branch",
        "id",
        True,
        "branch code",
        ("机构", "机构号", "机构编号", "机构代码", "分支机构", "经办机构", "所属机构", "支行"),
    ),
    Column(
        "balance",
        "money",
        True,
        "CNY yuan",
        ("贷款余额", "余额", "本金余额", "贷款余额（元）", "贷款余额(元)"),
    ),
    Column(
        "provision",
        "money",
        True,
        "CNY yuan",
        ("贷款损失准备", "损失准备", "减值准备", "拨备", "贷款减值准备", "计提准备"),
    ),
    Column(
        "classification",
        "class",
        True,
        "five-class category",
        ("五级分类", "风险分类", "贷款分类", "分类", "class"),
    ),
    Column(
        "npl_age_months",
        "number",
        True,
        "months",
        ("不良账龄（月）", "不良账龄(月)", "不良账龄", "账龄（月）", "账龄(月)", "账龄", "npl_age"),
    ),
    Column(
        "small_micro",
        "bool",
        True,
        "flag",
        ("是否小微", "小微企业", "是否小微企业", "小微", "small/micro"),
    ),
    Column(
        "inclusive",
        "bool",
        True,
        "flag",
        ("是否普惠", "普惠", "是否普惠小微", "普惠小微", "普惠型"),
    ),
    Column(
        "collateral_value",
        "money",
        False,
        "CNY yuan",
        ("抵押物价值", "押品价值", "抵质押物价值", "抵押品价值", "collateral"),
    ),
    Column(
        "guarantee_cover",
        "share",
        False,
        "share of the loss in [0, 1]",
        ("担保覆盖率", "担保比例", "政府性融资担保比例", "担保分担比例"),
    ),
    Column(
        "recourse_days", "number", False, "days", ("追索天数", "追索时间（天）", "追索时间(天)")
    ),
    Column(
        "days_past_due",
        "number",
        False,
        "days",
        ("逾期天数", "逾期天数（天）", "逾期天数(天)", "dpd"),
    ),
    Column(
        "interest_receivable",
        "money",
        False,
        "CNY yuan",
        ("应收利息", "欠息", "表内外欠息", "应收未收利息"),
    ),
    Column("industry", "text", False, "text", ("行业", "所属行业", "行业分类")),
    Column(
        "viability",
        "bool",
        False,
        "flag (borrower viable for restructuring)",
        ("是否可重组", "经营可持续", "具备重组条件", "可持续经营"),
    ),
    Column("collateral_type", "text", False, "text", ("抵押物类型", "押品类型", "担保方式")),
)

BRANCH_COLUMNS: tuple[Column, ...] = (
    Column(
        "branch",
        "id",
        True,
        "branch code",
        ("机构", "机构号", "机构编号", "机构代码", "分支机构", "支行"),
    ),
    Column(
        "inclusive_loans",
        "money",
        True,
        "CNY yuan (all inclusive small/micro loans)",
        ("普惠小微贷款余额", "普惠型小微企业贷款余额", "普惠贷款余额", "普惠小微贷款"),
    ),
    Column(
        "profit",
        "money",
        True,
        "CNY yuan (profit before NPL losses)",
        ("利润", "净利润", "利润总额", "拨备前利润"),
    ),
    Column(
        "wage_rate",
        "share",
        False,
        "share of profit paid into the wage pool",
        ("效益工资计提比例", "工资计提比例", "计提比例"),
    ),
    Column(
        "inclusive_loans_start",
        "money",
        False,
        "CNY yuan (at period start)",
        ("期初普惠小微贷款余额", "年初普惠小微贷款余额", "期初普惠贷款余额"),
    ),
)

OPTION_COLUMNS: tuple[Column, ...] = (
    Column("loan_id", "id", True, "identifier", ("贷款编号", "借据号")),
    Column("channel", "id", True, "channel name", ("处置方式", "渠道")),
    Column(
        "value",
        "money",
        True,
        "CNY yuan (present value to the bank, net of costs)",
        ("价值", "现值"),
    ),
    Column("pnl", "money", True, "CNY yuan (this year's profit impact)", ("损益",)),
    Column(
        "derecognised",
        "share",
        True,
        "share of the balance leaving the NPL stock",
        ("出表比例", "终止确认比例"),
    ),
)

SCENARIO_COLUMNS: tuple[Column, ...] = (
    Column("scenario", "id", True, "scenario name", ("情景", "情景名称")),
    Column("probability", "share", True, "the scenario's probability", ("概率",)),
    Column("channel", "id", True, "channel name", ("处置方式", "渠道")),
    Column("segment", "id", True, "a value of the [risk] segment_by column", ("分组", "细分")),
    Column("factor", "number", True, "multiple of the option values (>= 0)", ("系数", "倍数")),
)

#: The five standard channels. Other names are allowed and enter rules 1, 8, 9 only; a
#: name close to a standard one must be declared (``[channels.NAME]``) to be used.
STANDARD_CHANNELS: tuple[str, ...] = (
    "retain",
    "write_off",
    "bulk_transfer",
    "securitisation",
    "restructure",
)

#: Chinese names of the standard channels: shown to Chinese readers, accepted in options tables.
CHANNEL_NAMES_ZH: dict[str, str] = {
    "retain": "保留清收",
    "write_off": "核销",
    "bulk_transfer": "批量转让",
    "securitisation": "资产证券化",
    "restructure": "重组",
}
#: Each Chinese channel name -> the standard channel it names.
CHANNEL_ALIASES: dict[str, str] = {zh: name for name, zh in CHANNEL_NAMES_ZH.items()}
#: A channel name, used in file names too (a package's tape is ``CHANNEL-pT.csv``): up to
#: 64 characters, no path separator or control character, not ``.`` or ``..``.
CHANNEL_NAME = re.compile(r"(?!\.\.?$)[^/\\\x00-\x1f\x7f]{1,64}")
OWN_CHANNEL_ALLOWED = "up to 64 characters without / or \\ or control characters, not . or .."
CHANNEL_NAME_ALLOWED = (
    "a standard channel (retain, write_off, bulk_transfer, securitisation, restructure, or "
    f"保留清收, 核销, 批量转让, 资产证券化, 重组) or a name of your own: {OWN_CHANNEL_ALLOWED}"
)


def is_channel_name(name: str) -> bool:
    """Whether ``name`` is a usable channel name (:data:`CHANNEL_NAME`)."""
    return CHANNEL_NAME.fullmatch(name) is not None


def near_standard(name: str) -> str | None:
    """The standard channel ``name`` looks like a misspelling of (``writeoff``), or None."""
    if name in STANDARD_CHANNELS:
        return None
    close = difflib.get_close_matches(name.lower(), STANDARD_CHANNELS, n=1, cutoff=0.8)
    return close[0] if close else None


AGE_BUCKETS: tuple[float, ...] = (0, 12, 24, 36, 60)
AGE_LABELS: tuple[str, ...] = ("0-12m", "12-24m", "24-36m", "36-60m", "60m+")


def normalise_header(name: object) -> str:
    """Return a header stripped of BOM, spaces and case, for alias lookup."""
    text = str(name).replace("\ufeff", "").strip().lower()
    return text.replace(" ", "_") if text.isascii() else text


def alias_map(columns: tuple[Column, ...]) -> dict[str, str]:
    """Map every accepted (normalised) header to its canonical name."""
    out: dict[str, str] = {}
    for col in columns:
        for name in (col.name, *col.aliases):
            out[normalise_header(name)] = col.name
    return out

"""Loan tapes for buyers: the loans of each bulk-transfer package and securitisation pool.

>>> from npl_disposal.reporting import loan_tapes, write_tapes
>>> tapes = loan_tapes(result)  # doctest: +SKIP
>>> tapes["bulk_transfer-p1"].tape.head()  # doctest: +SKIP
>>> write_tapes(tapes, "out/tapes", lang="zh")  # doctest: +SKIP

**Packages.** A package is what one buyer takes in one sale: the loans a plan sends to a
sale channel in one period. The sale channels are ``bulk_transfer`` (a package sold to an
AMC), ``securitisation`` (a pool issued to a trust) and every user channel of the
options table (``[channels.NAME]``, e.g. a second AMC), since each is its own buyer and its
own on/off block in the model; ``retain``, ``write_off`` and ``restructure`` keep the
claim in the bank and have no buyer. A one-period plan has one package per sale channel
used (period 1); a schedule has one per sale channel and window used, as the model makes
each used window its own package (bulk transfer) or pool (securitisation). The package's
id is ``CHANNEL-pT`` (``bulk_transfer-p2``). In a fractional plan a loan may be split:
the tape gives the share in the package and the balance that share carries. Balances and
NPL ages are as at disposal: a schedule's later window sells the loan's expected balance
at the start of that period (the balance the plan counts), a quarter older per period.

**Fields.** The tape follows the loan, counterparty, collateral and enforcement templates
of the EBA NPL data templates (Commission Implementing Regulation (EU) 2023/2083), as far
as the portfolio holds the data: :data:`TAPE_FIELDS` maps the portfolio's columns to the
tape's fields, each with an English name (the CSV header) and English and Chinese
labels. A field whose column the portfolio lacks is absent from the tape, never invented.
The seller's own figures (provision, the plan's value of the loan) are not on a tape.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.io.csv_output import OUTPUT_ENCODING, check_encoding
from npl_disposal.io.portfolio import age_bucket
from npl_disposal.io.schema import AGE_LABELS, NPL_CLASSES, STANDARD_CHANNELS
from npl_disposal.reporting.labels import labels

if TYPE_CHECKING:
    from npl_disposal.io.portfolio import Portfolio
    from npl_disposal.solvers.result import AllocationResult

__all__ = [
    "SALE_CHANNELS",
    "TAPES_FOLDER",
    "TAPE_FIELDS",
    "LoanTape",
    "TapeField",
    "fields_table",
    "folder_writer",
    "loan_tapes",
    "packages_table",
    "tape_files",
    "write_tapes",
]

#: The standard channels that sell loans to a buyer (user channels do too).
SALE_CHANNELS = ("bulk_transfer", "securitisation")

#: The folder of an output folder that holds the tapes.
TAPES_FOLDER = "tapes"


@dataclass(frozen=True)
class TapeField:
    """One field of a loan tape: its name, labels, template section and source column.

    ``kind``: ``text``, ``money`` (CNY yuan, to the cent), ``share`` (of the loan, in
    [0, 1]), ``pct`` (a ratio held as a fraction, shown in percent in a workbook),
    ``count`` (months, days: a whole number when the portfolio's is) or ``flag``;
    ``unit`` the count's unit.
    """

    name: str
    label_en: str
    label_zh: str
    section: str
    source: str
    kind: str = "text"
    unit: str = ""

    @property
    def units(self) -> tuple[str, str]:
        """The field's unit in English and Chinese, as the data dictionary gives it."""
        return _KIND_UNITS.get(self.kind) or _COUNT_UNITS.get(self.unit, ("", ""))


#: Units by field kind (English, Chinese).
_KIND_UNITS = {
    "money": ("CNY yuan, rounded to the cent", "元，精确到分"),
    "share": ("fraction of the loan, 0 to 1", "占贷款的比例，0 至 1"),
    "pct": ("fraction, 0 to 1 (0.25 = 25%)", "比例，0 至 1（0.25 即 25%）"),
    "flag": ("true/false", "是/否"),
}
#: Units of count fields (English, Chinese).
_COUNT_UNITS = {"months": ("months", "月"), "days": ("days", "天")}


#: The tape's fields in order: ``source`` is the portfolio column (``share`` and
#: ``balance_in_package`` come from the plan). Sections follow the EBA NPL templates.
TAPE_FIELDS: tuple[TapeField, ...] = (
    TapeField("loan_id", "Loan identifier", "贷款编号", "loan", "loan_id"),
    TapeField("branch", "Originating branch", "经办机构", "loan", "branch"),
    TapeField("classification", "Asset classification (five-class)", "五级分类", "loan",
              "classification"),
    TapeField("principal_balance", "Principal balance at disposal (CNY)", "处置时本金余额（元）",
              "loan", "balance", "money"),
    TapeField("principal_balance_today", "Principal balance at the portfolio date (CNY)",
              "当前本金余额（元）", "loan", "balance_today", "money"),
    TapeField("share_in_package", "Share of the loan in the package", "入包比例", "loan",
              "share", "share"),
    TapeField("balance_in_package", "Principal balance in the package (CNY)",
              "入包本金余额（元）", "loan", "balance_in_package", "money"),
    TapeField("split", "Split loan (only a share in the package)", "是否部分入包", "loan",
              "split", "flag"),
    TapeField("accrued_interest", "Accrued interest receivable (CNY)", "应收利息（元）", "loan",
              "interest_receivable", "money"),
    TapeField("accrued_interest_in_package", "Accrued interest in the package (CNY)",
              "入包应收利息（元）", "loan", "interest_in_package", "money"),
    TapeField("months_in_default", "Months since default at disposal (NPL age)",
              "处置时不良账龄（月）", "loan", "npl_age_months", "count", "months"),
    TapeField("days_past_due", "Days past due", "逾期天数", "loan", "days_past_due", "count",
              "days"),
    TapeField("small_micro", "Small or micro enterprise", "是否小微企业", "counterparty",
              "small_micro", "flag"),
    TapeField("inclusive", "Inclusive small/micro loan", "是否普惠型小微贷款", "counterparty",
              "inclusive", "flag"),
    TapeField("industry", "Industry sector of the counterparty", "所属行业", "counterparty",
              "industry"),
    TapeField("collateral_type", "Collateral type", "抵押物类型", "collateral",
              "collateral_type"),
    TapeField("collateral_value", "Collateral value (CNY)", "抵押物价值（元）", "collateral",
              "collateral_value", "money"),
    TapeField("collateral_value_in_package", "Collateral value in the package (CNY)",
              "入包抵押物价值（元）", "collateral", "collateral_in_package", "money"),
    TapeField("guarantee_cover", "Guarantee cover (share of the loss)", "担保覆盖率",
              "collateral", "guarantee_cover", "pct"),
    TapeField("recourse_days", "Enforcement: days of recourse so far", "追索天数",
              "enforcement", "recourse_days", "count", "days"),
)  # fmt: skip


@dataclass(frozen=True)
class LoanTape:
    """One package's tape, its breakdown and its key figures (CNY yuan).

    ``tape``: one row per loan (the fields of :data:`TAPE_FIELDS` the portfolio
    has); ``breakdown``: ``dimension, group, loans, balance, whole_loans`` by
    classification, NPL age bucket and branch (loan shares, balance in the package, loans
    on the tape); ``figures``: the package's key
    figures (the row of :func:`packages_table`).
    """

    package: str
    channel: str
    period: int
    tape: pd.DataFrame
    breakdown: pd.DataFrame
    figures: Mapping[str, Any]


def _sale_channels(channels: Any) -> list[str]:
    return [c for c in dict.fromkeys(str(c) for c in channels)
            if c in SALE_CHANNELS or c not in STANDARD_CHANNELS]  # fmt: skip


def loan_tapes(
    result: AllocationResult, portfolio: Portfolio | None = None
) -> dict[str, LoanTape]:
    """The loan tape of every package and pool of ``result`` (a plan or a schedule).

    Keyed by package id (``bulk_transfer-p1``): bulk transfer, securitisation, then
    user channels, each by period; empty
    when the plan sells nothing. ``portfolio`` defaults to the plan's own.
    """
    loans = (portfolio if portfolio is not None else result.problem.portfolio).loans
    plan = result.plan
    period = plan["period"] if "period" in plan else pd.Series(1, index=plan.index)
    sold = plan.assign(period=period.astype(int))
    sold = sold[sold["channel"].astype(str).isin(_sale_channels(sold["channel"]))]
    by_id = loans.assign(loan_id=loans["loan_id"].astype(str)).set_index("loan_id")
    out: dict[str, LoanTape] = {}
    grid = result.problem.schedule
    names = grid.column_channel if grid is not None else result.problem.channels
    ordered = [*SALE_CHANNELS, *_sale_channels(names)]
    order = {c: i for i, c in enumerate(dict.fromkeys(ordered))}
    groups = sorted(sold.groupby(["channel", "period"], sort=False).groups,
                    key=lambda k: (order.get(str(k[0]), len(order)), str(k[0]), k[1]))  # fmt: skip
    for channel, t in groups:
        rows = sold[(sold["channel"] == channel) & (sold["period"] == t)]
        package = f"{channel}-p{int(t)}"
        base = _at_disposal(result, by_id, rows, str(channel), int(t))
        tape = pd.DataFrame({f.name: base[f.source].to_numpy() for f in TAPE_FIELDS
                             if f.source in base.columns})  # fmt: skip
        tape = _integers(tape, [f.name for f in TAPE_FIELDS if f.kind == "count"])
        breakdown = _breakdown(base)
        out[package] = LoanTape(package, str(channel), int(t), tape, breakdown,
                                _figures(package, str(channel), int(t), base))  # fmt: skip
    return out


def _at_disposal(
    result: AllocationResult, by_id: pd.DataFrame, rows: pd.DataFrame, channel: str, t: int
) -> pd.DataFrame:
    """The package's loans as at disposal in period ``t``: balance and NPL age then.

    ``balance`` becomes the balance the plan disposes of (a schedule's balance at
    disposal, the balance of today in a one-period plan), ``balance_today`` keeps
    today's; ``npl_age_months`` is the age at the start of period ``t``. Money is
    rounded to the cent, the package's share of each amount too (``_IN_PACKAGE``).
    """
    problem = result.problem
    ids = rows["loan_id"].astype(str)
    base = by_id.loc[ids].reset_index()
    base["share"] = rows["share"].to_numpy(dtype=float)
    base["balance_today"] = base["balance"].to_numpy(dtype=float)
    at = pd.Index(problem.loan_ids.astype(str)).get_indexer(ids)
    grid = problem.schedule
    if grid is None:
        base["balance"] = problem.balance[at]
    else:
        column = _grid_column(grid.column_channel, grid.column_period, channel, t)
        base["balance"] = grid.disposal[at, column]
        months = (t - 1) * grid.horizon.period_months
        base["npl_age_months"] = base["npl_age_months"].to_numpy(dtype=float) + months
    base["split"] = base["share"] < 1.0 - _WHOLE
    money = [f.source for f in TAPE_FIELDS if f.kind == "money" and f.source in base]
    base[money] = base[money].astype(float).round(2)
    for name, source in _IN_PACKAGE.items():
        if source in base:
            base[name] = (base["share"] * base[source].fillna(0.0)).round(2)
    return base


#: A share this close to 1 is the whole loan.
_WHOLE = 1e-9

#: The package's share of a loan's amounts: column -> the loan's amount (CNY yuan).
_IN_PACKAGE = {"balance_in_package": "balance", "interest_in_package": "interest_receivable",
               "collateral_in_package": "collateral_value"}  # fmt: skip


def _grid_column(channels: tuple[str, ...], periods: np.ndarray, channel: str, t: int) -> int:
    """The schedule grid's column of ``channel`` in period ``t``."""
    hits = np.flatnonzero((np.asarray(channels, dtype=object) == channel)
                          & (np.asarray(periods) == t))  # fmt: skip
    return int(hits[0])


def _integers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with the whole numbers of ``columns`` as integers (``21``, not ``21.0``)."""
    out = frame.copy()
    for c in (c for c in columns if c in out):
        x = pd.to_numeric(out[c])
        whole = x.notna() & (x == x.round())
        if whole[x.notna()].all():
            out[c] = x.round().astype("Int64")
        else:
            out[c] = pd.Series([int(v) if w else v for v, w in zip(x, whole, strict=True)],
                               index=out.index, dtype=object)  # fmt: skip
    return out


def _breakdown(base: pd.DataFrame) -> pd.DataFrame:
    frames = []
    keys = {
        "classification": pd.Categorical(base["classification"].astype(str),
                                         categories=list(NPL_CLASSES)),
        "age": pd.Categorical(age_bucket(base["npl_age_months"]).astype(str),
                              categories=list(AGE_LABELS)),
        "branch": base["branch"].astype(str),
    }  # fmt: skip
    for dimension, key in keys.items():
        grouped = base.groupby(key, observed=True, sort=True)
        part = pd.DataFrame({"loans": grouped["share"].sum(),
                             "balance": grouped["balance_in_package"].sum().round(2),
                             "whole_loans": grouped["share"].size()})  # fmt: skip
        part.index = part.index.astype(str)
        frames.append(part.rename_axis("group").reset_index().assign(dimension=dimension))
    out = pd.concat(frames, ignore_index=True)
    return out[["dimension", "group", "loans", "balance", "whole_loans"]]


def _figures(package: str, channel: str, period: int, base: pd.DataFrame) -> dict[str, Any]:
    """The package's key figures, each the sum of a tape column (CNY yuan, months)."""
    balance = _cents(base["balance_in_package"])
    figures: dict[str, Any] = {
        "package": package, "channel": channel, "period": period,
        "loans": float(base["share"].sum()), "balance": balance,
    }  # fmt: skip
    if "interest_in_package" in base:
        figures["accrued_interest"] = _cents(base["interest_in_package"])
    if "collateral_in_package" in base:
        collateral = _cents(base["collateral_in_package"])
        figures["collateral_value"] = collateral
        figures["collateral_cover"] = collateral / balance if balance > 0 else np.nan
    weights = base["balance_in_package"].to_numpy(dtype=float)
    ages = base["npl_age_months"].to_numpy(dtype=float)
    figures["mean_age_months"] = float(np.average(ages, weights=weights)) if balance > 0 else (
        np.nan)  # fmt: skip
    figures["branches"] = int(base["branch"].nunique())
    for cls in NPL_CLASSES:
        figures[f"balance_{cls}"] = _cents(weights[base["classification"].astype(str) == cls])
    figures["whole_loans"] = len(base)
    figures["split_loans"] = int(base["split"].sum())
    return figures


def _cents(amounts: Any) -> float:
    """The sum of amounts held to the cent (CNY yuan), itself to the cent."""
    return round(float(np.sum(amounts)), 2)


def packages_table(tapes: Mapping[str, LoanTape]) -> pd.DataFrame:
    """One row per package: its key figures (``package, channel, period, loans, balance``...).

    ``loans`` counts loan shares (a loan split between packages counts its share),
    ``whole_loans`` the loans on the tape, ``split_loans`` those of them split;
    ``balance`` is the principal in the package at disposal (a schedule's window: the
    balance the plan disposes of then); money is the sum of the tape's column,
    ``collateral_cover`` its collateral value over that balance, ``mean_age_months``
    the balance-weighted NPL age, ``balance_<class>`` the balance per class.
    """
    columns = ["package", "channel", "period", "loans", "balance"]
    if not tapes:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame([dict(t.figures) for t in tapes.values()])


# --------------------------------------------------------------------------- files


def _field_labels(lang: str) -> dict[str, str]:
    return {f.name: (f.label_zh if lang == "zh" else f.label_en) for f in TAPE_FIELDS}


def fields_table() -> pd.DataFrame:
    """The tape's data dictionary: ``field, label_en, label_zh, section, source, unit, unit_zh``.

    ``unit``: money is CNY yuan rounded to the cent, ratios are fractions (0.25 = 25%).
    """
    return pd.DataFrame([(f.name, f.label_en, f.label_zh, f.section, f.source, *f.units)
                         for f in TAPE_FIELDS],
                        columns=["field", "label_en", "label_zh", "section", "source", "unit",
                                 "unit_zh"])  # fmt: skip


#: The kind of each key figure in the summary sheet (:func:`~.excel.xl_format`'s kinds).
_FIGURE_KINDS = {"period": "count", "loans": "count", "whole_loans": "count",
                 "split_loans": "count", "balance": "money", "accrued_interest": "money",
                 "collateral_value": "money", "collateral_cover": "pct",
                 "mean_age_months": "months", "branches": "count"}  # fmt: skip
#: The unit a header gives by kind (English, Chinese).
_HEADER_UNITS = {"money": ("CNY", "元"), "pct": ("%", "%")}


def _summary_figures(figures: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The key figures the summary shows, whole-loan counts beside the share count."""
    counts = ("loans", "whole_loans", "split_loans")
    shown = [k for k in figures if not k.startswith("balance_") and k not in counts[1:]]
    at = shown.index("loans") + 1
    shown[at:at] = [k for k in counts[1:] if k in figures]
    return [(k, figures[k]) for k in shown]


def _summary_sheet(tape: LoanTape, lang: str) -> tuple[pd.DataFrame, list[list[str | None]]]:
    """The one-page summary (key figures, then the breakdown) and its cells' number formats."""
    from npl_disposal.reporting.excel import xl_format

    lab = labels(lang)
    rows: list[tuple[str, str, Any, Any, Any]] = []
    formats: list[tuple[str | None, ...]] = []
    for key, value in _summary_figures(tape.figures):
        kind = _FIGURE_KINDS.get(key, "text")
        unit = _HEADER_UNITS.get(kind, ("", ""))[1 if lab.zh else 0]
        shown = lab.channel(value) if key == "channel" else value
        if kind == "money":
            shown = round(float(value), 2)
        rows.append((lab.column(key, unit), "", shown, None, None))
        formats.append((None, None, xl_format(kind, value), None, None))
    for dimension, group, n, balance, whole in tape.breakdown.itertuples(index=False, name=None):
        shown = (lab.classification(group) if dimension == "classification" else
                 lab.age(group) if dimension == "age" else group)  # fmt: skip
        name = lab.column("npl_age_bucket" if dimension == "age" else dimension)
        rows.append((name, shown, float(n), round(float(balance), 2), int(whole)))
        formats.append((None, None, xl_format("count", n), xl_format("money"),
                        xl_format("count", whole)))  # fmt: skip
    head = (["项目", "分组", "数值", "入包余额（元）", "整笔户数"] if lab.zh else
            ["item", "group", "value", "balance in package (CNY)", "whole loans"])  # fmt: skip
    return pd.DataFrame(rows, columns=head), [list(c) for c in zip(*formats, strict=True)]


def _tape_sheet(tape: LoanTape, lang: str) -> pd.DataFrame:
    """The tape in the reader's labels (Chinese: classes and flags in Chinese too)."""
    lab = labels(lang)
    shown = tape.tape.copy()
    if lab.zh:
        if "classification" in shown:
            shown["classification"] = shown["classification"].map(lab.classification)
        for f in TAPE_FIELDS:
            if f.kind == "flag" and f.name in shown:
                shown[f.name] = shown[f.name].map(lab.flag)
        for name in (n for n in _CODED if n in shown):
            shown[name] = shown[name].map(lambda v: v if pd.isna(v) else lab.code(v))
    return shown.rename(columns=_field_labels(lang))


#: Fields holding the portfolio's codes, shown in the reader's words (unknown: as is).
_CODED = ("industry", "collateral_type")


def _fields_sheet(fields: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The data dictionary in the reader's labels (Chinese: headers and sections)."""
    lab = labels(lang)
    if not lab.zh:
        return fields
    return fields.assign(section=fields["section"].map(lab.code)).rename(
        columns={c: lab.column(c) for c in fields.columns})


def _tape_csv(tape: LoanTape, path: Path, encoding: str = OUTPUT_ENCODING) -> None:
    """The tape as CSV (default UTF-8 with a byte-order mark, which Excel needs)."""
    tape.tape.to_csv(path, index=False, encoding=encoding)


def _tape_formats(tape: pd.DataFrame) -> list[list[str | None]]:
    """The number format of every cell of the tape sheet, by its field's kind."""
    from npl_disposal.reporting.excel import xl_format

    kinds = {f.name: f.kind for f in TAPE_FIELDS}
    return [[xl_format(kinds.get(str(c), "text"), v) for v in tape[c].tolist()]
            for c in tape.columns]  # fmt: skip


def _tape_xlsx(tape: LoanTape, lang: str) -> bytes:
    from npl_disposal.reporting.excel import require_openpyxl, xl_as_text, xl_frame

    require_openpyxl()
    sheets = ("摘要", "明细", "字段说明") if lang == "zh" else ("Summary", "Tape", "Fields")
    fields = fields_table()
    fields = fields[fields["field"].isin(tape.tape.columns)]
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        summary, formats = _summary_sheet(tape, lang)
        xl_frame(writer, sheets[0], summary, formats)
        xl_frame(writer, sheets[1], _tape_sheet(tape, lang), _tape_formats(tape.tape), (1, 1))
        xl_frame(writer, sheets[2], _fields_sheet(fields, lang),
                 [[None] * len(fields)] * fields.shape[1])
        xl_as_text(writer.book)
    return buffer.getvalue()


#: What to change when a package's name cannot be a file name.
_NAME_HINT = ("a package's files are named after its channel (CHANNEL-pT.csv): name the "
              "channel with letters, digits, '_' and '-'")  # fmt: skip


def tape_files(
    tapes: Mapping[str, LoanTape],
    lang: str = "en",
    excel: bool | None = None,
    encoding: str = OUTPUT_ENCODING,
) -> dict[str, Any]:
    """The files of the tapes folder by name: writers taking the path to write.

    ``PACKAGE.csv`` (the tape, English field names; ``encoding`` one of
    :data:`~npl_disposal.io.csv_output.CSV_ENCODINGS`, default UTF-8 with BOM, as for every
    CSV file here), ``PACKAGE.xlsx``
    (summary, tape and field sheets in ``lang``'s labels; with openpyxl),
    ``packages.csv`` (one row per package) and ``fields.csv`` (the data dictionary).
    ``excel``: None writes the workbooks when openpyxl is installed. A package whose
    name would leave the folder (a channel ``../x``) raises
    :class:`~npl_disposal.exceptions.OutputError` before anything is written.
    """
    from npl_disposal.exceptions import ExcelUnavailableError
    from npl_disposal.io.output import check_name
    from npl_disposal.reporting.excel import require_openpyxl

    labels(lang)  # checks lang
    check_encoding(encoding)
    if excel is None:
        try:
            require_openpyxl()
            excel = True
        except ExcelUnavailableError:
            excel = False
    files: dict[str, Any] = {}
    for name, tape in tapes.items():
        check_name(f"{name}.csv", f"{TAPES_FOLDER} folder", _NAME_HINT)
        files[f"{name}.csv"] = lambda p, t=tape: _tape_csv(t, p, encoding)
        if excel:
            data = _tape_xlsx(tape, lang)
            files[f"{name}.xlsx"] = lambda p, d=data: p.write_bytes(d)
    table = _integers(packages_table(tapes), ["loans"])
    files["packages.csv"] = lambda p: table.to_csv(p, index=False, encoding=encoding)
    fields = fields_table()
    files["fields.csv"] = lambda p: fields.to_csv(p, index=False, encoding=encoding)
    return files


def folder_writer(files: Mapping[str, Any]) -> Any:
    """A writer that makes a folder at its path holding ``files`` (for an output folder).

    A name that would leave the folder (``../x.csv``) raises OutputError here.
    """
    from npl_disposal.io.output import check_name

    for name in files:
        check_name(name, f"{TAPES_FOLDER} folder", _NAME_HINT)

    def write(path: Path) -> None:
        path.mkdir()
        for name, write_one in files.items():
            write_one(path / name)

    return write


def write_tapes(
    tapes: Mapping[str, LoanTape],
    out_dir: str | os.PathLike[str],
    lang: str = "en",
    excel: bool | None = None,
    encoding: str = OUTPUT_ENCODING,
) -> list[Path]:
    """Write the tapes (:func:`tape_files`) as the folder ``out_dir``, all or nothing."""
    from npl_disposal.io.output import replace_folder

    files = tape_files(tapes, lang, excel, encoding)
    return replace_folder(out_dir, files)

"""The Excel workbook of a disposal plan: the report's tables and the plan, a sheet each.

>>> from npl_disposal.reporting import write_workbook
>>> write_workbook(result, "out", priced=lp_result)  # doctest: +SKIP

:func:`write_workbook` writes ``report.xlsx``: the tables of
:func:`~npl_disposal.reporting.tables.report_tables` and the plan, one worksheet each,
money in CNY yuan to the cent; it needs openpyxl (``pip install 'npl-disposal[excel]'``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.exceptions import ExcelUnavailableError
from npl_disposal.io.output import write_atomically
from npl_disposal.reporting.labels import Labels, labels, text_columns
from npl_disposal.reporting.tables import COLUMNS, SUMMARY_KINDS, isnan, report_tables

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult

__all__ = ["EXCEL_HINT", "WORKBOOK_NAME", "WORKBOOK_PLAN_ROWS", "WORKBOOK_SHEETS",
           "WORKBOOK_SHEETS_ZH", "render_workbook", "require_openpyxl",
           "write_workbook", "xl_as_text", "xl_format", "xl_frame"]  # fmt: skip

#: File name written by :func:`write_workbook`.
WORKBOOK_NAME = "report.xlsx"

#: The workbook's sheet names (at most 31 characters) by table id, in sheet order:
#: the tables of :data:`TABLE_IDS`, then the plan.
WORKBOOK_SHEETS = {
    "summary": "Summary",
    "channel-mix": "Channel mix",
    "budgets": "Budgets and shadow prices",
    "tolerance": "Branch tolerance",
    "wage-pool": "Wage pool",
    "add-back": "Write-off add-back",
    "compliance": "Compliance",
    "disposal": "Disposal by channel and branch",
    "plan": "Plan",
}

#: The sheet names in Chinese (``lang="zh"``).
WORKBOOK_SHEETS_ZH = {
    "summary": "概览",
    "channel-mix": "处置方式结构",
    "budgets": "预算约束与影子价格",
    "tolerance": "不良容忍度",
    "wage-pool": "效益工资",
    "add-back": "核销还原",
    "compliance": "合规情况",
    "disposal": "按处置方式和机构",
    "plan": "处置方案",
}

#: The plan sheet holds at most this many rows (openpyxl is slow and large per cell);
#: a longer plan gets a note there instead: it is in ``plan.csv``.
WORKBOOK_PLAN_ROWS = 100_000

#: What to install for the Excel workbook.
EXCEL_HINT = "the Excel workbook needs openpyxl: pip install 'npl-disposal[excel]'"


def require_openpyxl() -> Any:
    """Import and return :mod:`openpyxl`; raise :class:`ExcelUnavailableError` if absent."""
    try:
        import openpyxl
    except ImportError as exc:
        raise ExcelUnavailableError(EXCEL_HINT) from exc
    return openpyxl


#: Number formats of the workbook's cells by kind (``count`` and ``amount`` vary by cell).
_XL_FORMATS = {"money": "#,##0.00", "pct": "0.00%", "price": "#,##0.0000", "share": "0.0000",
               "seconds": "0.00"}  # fmt: skip
_XL_WHOLE, _XL_FRACTION = "#,##0", "#,##0.00"

#: Unit added to the header of the workbook's columns by kind.
_XL_UNITS = {"money": " (CNY)", "pct": " (%)"}

#: The rows a worksheet holds (Excel's limit), header included.
_XL_MAX_ROWS = 1_048_576


def xl_as_text(book: Any) -> None:
    """Store every text cell of ``book`` as text, never as a formula.

    openpyxl takes a string starting with ``=`` (a loan id, a branch, an industry from
    the portfolio) for a formula Excel would run; such a cell is stored as the string.
    Every workbook the library writes passes through this before it is saved.
    """
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f" and isinstance(cell.value, str):
                    cell.data_type = "s"


def xl_format(kind: str, value: Any = None) -> str | None:
    """The number format of a cell of ``kind`` holding ``value`` (None: text, as written).

    ``money``: CNY yuan with thousands separators and 2 decimals; ``pct``: a ratio held
    as a fraction, shown in percent; ``share``: 4 decimals; ``count``: whole or 2
    decimals as ``value`` is; ``months``: 2 decimals.
    """
    if kind == "count":
        return _xl_count(value)
    if kind == "months":
        return _XL_FRACTION
    return _XL_FORMATS.get(kind)


def xl_frame(
    writer: pd.ExcelWriter,
    sheet: str,
    frame: pd.DataFrame,
    formats: list[list[str | None]],
    freeze: tuple[int, int] = (1, 0),
) -> None:
    """Write ``frame`` to ``sheet``: each cell's number format, the header frozen, widths.

    ``formats`` holds one list per column, a format (or None) per row.
    """
    from openpyxl.utils import get_column_letter

    frame.to_excel(writer, sheet_name=sheet, index=False, freeze_panes=freeze)
    ws = writer.sheets[sheet]
    for j, (header, column_formats) in enumerate(zip(frame.columns, formats, strict=True),
                                                 start=1):  # fmt: skip
        width = text_columns(str(header))
        values = frame.iloc[:, j - 1].tolist()
        for i, (value, fmt) in enumerate(zip(values, column_formats, strict=True), start=2):
            if fmt is not None:
                ws.cell(row=i, column=j).number_format = fmt
            width = max(width, text_columns(_xl_shown(value, fmt)))
        ws.column_dimensions[get_column_letter(j)].width = min(width + 2, 60)


def _xl_count(value: Any) -> str:
    if isnan(value):
        return _XL_FRACTION
    x = float(value)
    return _XL_WHOLE if abs(x - round(x)) < 1e-9 else _XL_FRACTION


def _xl_cell_formats(frame: pd.DataFrame, column: str, kind: str) -> list[str | None]:
    """The number format of every cell of ``column`` (``None``: leave as written)."""
    values = frame[column].tolist()
    if kind == "count":
        return [_xl_count(v) for v in values]
    if kind == "amount":  # CNY or loans, as the row's unit says
        units = frame["unit"].tolist()
        return [
            _XL_FORMATS["money"] if u == "CNY" else _xl_count(v)
            for v, u in zip(values, units, strict=True)
        ]
    if kind == "value":  # the summary's value column: the row's kind
        items = frame["item"].tolist()
        return [_XL_FORMATS.get(SUMMARY_KINDS.get(i, "text")) for i in items]
    return [_XL_FORMATS.get(kind)] * len(values)


def _xl_shown(value: Any, fmt: str | None) -> str:
    """About the text Excel shows for ``value`` in ``fmt`` (to size the column)."""
    if isnan(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "FALSE"
    if isinstance(value, (int, float, np.number)) and fmt not in (None, "General"):
        x = float(value)
        if fmt == _XL_FORMATS["pct"]:
            return f"{x * 100:.2f}%"
        decimals = len(fmt.rsplit(".", 1)[1]) if "." in fmt else 0
        return f"{x:,.{decimals}f}"
    return str(value)


def _xl_translated(
    frame: pd.DataFrame, lab: Labels, kinds: dict[str, str] | None = None
) -> pd.DataFrame:
    """The text cells a reader sees (channels, rules, classes, units, items) in ``lab``'s words.

    Yes/no cells (``kinds`` ``flag`` or ``check``) become ``lab.flag``'s words (是/否).
    """
    out = frame.copy()
    for column, kind in (kinds or {}).items():
        if kind in ("flag", "check") and column in out:
            out[column] = [v if isnan(v) else lab.flag(v) for v in out[column]]
    if "name" in out and "rule" in frame:
        out["name"] = [lab.constraint(n, r, b) for n, r, b in
                       zip(frame["name"], frame["rule"], frame.get("branch", [None] * len(frame)),
                           strict=True)]  # fmt: skip
    for column, word in (("channel", lab.channel), ("rule", lab.rule),
                         ("classification", lab.classification)):  # fmt: skip
        if column in out:
            out[column] = [v if isnan(v) else word(v) for v in out[column]]
    if "unit" in out:
        out["unit"] = [{"CNY": "元", "loans": "户"}.get(str(u), u) for u in out["unit"]]
    if "note" in out:
        out["note"] = [lab.note(v) for v in out["note"]]
    if "item" in out:
        out["item"] = [lab.item(i) for i in out["item"]]
        if "value" in out:
            out["value"] = [lab.item(v) if isinstance(v, str) else v for v in out["value"]]
    return out


def _xl_sheet(
    writer: pd.ExcelWriter,
    sheet: str,
    frame: pd.DataFrame,
    table_id: str,
    max_rows: int = _XL_MAX_ROWS - 1,
    lab: Labels | None = None,
) -> None:
    """Write ``frame`` to ``sheet``: unit headers, number formats, frozen header, widths.

    A frame of more than ``max_rows`` rows gets a one-cell note instead.
    """
    kinds = COLUMNS[table_id]
    columns = [c for c in kinds if c in frame.columns]
    if len(frame) > min(max_rows, _XL_MAX_ROWS - 1):
        note = (
            f"{len(frame):,} rows, more than the {max_rows:,} this sheet takes: see the "
            "CSV outputs (npl-disposal plan writes plan.csv; AllocationResult.plan in Python)."
        )
        pd.DataFrame({"note": [note]}).to_excel(writer, sheet_name=sheet, index=False)
        writer.sheets[sheet].column_dimensions["A"].width = len(note) + 2
        return
    zh = lab is not None and lab.zh
    shown = _xl_translated(frame, lab, kinds)[columns] if zh and lab is not None else (
        frame[columns])  # fmt: skip
    if table_id == "summary":
        items = [
            i + _XL_UNITS.get(SUMMARY_KINDS.get(i, "text"), "") for i in frame["item"].tolist()
        ]
        if zh and lab is not None:
            items = [lab.column(lab.item(i), "元" if SUMMARY_KINDS.get(i) == "money" else "")
                     for i in frame["item"].tolist()]  # fmt: skip
        shown = shown.assign(item=items)
    headers = [c + _XL_UNITS.get(kinds[c], "") for c in columns]
    if zh and lab is not None:
        headers = [lab.column(c, {"money": "元", "pct": "%"}.get(kinds[c], "")) for c in columns]
    formats = [_xl_cell_formats(frame, column, kinds[column]) for column in columns]
    xl_frame(writer, sheet, shown.set_axis(headers, axis=1), formats)


def render_workbook(
    result: AllocationResult,
    title: str | None = None,
    priced: AllocationResult | None = None,
    *,
    lang: str = "en",
) -> bytes:
    """The ``report.xlsx`` bytes (see :func:`write_workbook`).

    Raises :class:`ExcelUnavailableError` (an :class:`ImportError`) without openpyxl.
    """
    lab = labels(lang)
    require_openpyxl()
    tables = report_tables(result, priced)
    if "rule" not in tables["budgets"]:  # the rule names a budget in the reader's words
        rules = result.constraints.set_index("name")["rule"]
        tables["budgets"] = tables["budgets"].assign(rule=tables["budgets"]["name"].map(rules))
    tables["plan"] = result.plan
    sheets = WORKBOOK_SHEETS_ZH if lab.zh else WORKBOOK_SHEETS
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for table_id, frame in tables.items():
            limit = WORKBOOK_PLAN_ROWS if table_id == "plan" else _XL_MAX_ROWS - 1
            _xl_sheet(writer, sheets[table_id], frame, table_id, limit, lab)
        writer.book.properties.title = title or lab.t(
            "title", source=result.problem.portfolio.source)
        xl_as_text(writer.book)
    return buffer.getvalue()


def write_workbook(
    result: AllocationResult,
    out_dir: str | os.PathLike[str],
    title: str | None = None,
    priced: AllocationResult | None = None,
    *,
    lang: str = "en",
) -> Path:
    """Write ``report.xlsx`` into ``out_dir``, atomically; return its path.

    One worksheet per table of the HTML report (:data:`WORKBOOK_SHEETS` names them)
    plus the plan (``loan_id, channel, share``; a note instead when it has more than
    :data:`WORKBOOK_PLAN_ROWS` rows). Cells hold the unrounded numbers:
    money in CNY yuan shown to the cent, ratios as fractions shown in percent; each
    money column's header says ``(CNY)``. The header row is frozen. ``priced`` is as
    in :func:`write_report`. Needs openpyxl (``pip install 'npl-disposal[excel]'``):
    without it, raises :class:`ExcelUnavailableError` (an :class:`ImportError`) and
    writes nothing. ``lang="zh"`` names the sheets, headers, channels and rules in
    Chinese (:data:`WORKBOOK_SHEETS_ZH`); the cells hold the same numbers (money in 元).
    """
    data = render_workbook(result, title=title, priced=priced, lang=lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / WORKBOOK_NAME
    write_atomically(target, data)
    return target

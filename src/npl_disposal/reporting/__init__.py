"""What a risk officer reads: the report's tables, the HTML report, the Excel workbook, charts.

* :mod:`.tables`: :func:`report_tables`, :func:`disposal_summary`, :func:`compliance_table`;
* :mod:`.html`: :func:`write_report` (``report.html``, self-contained, built from
  Jinja2 templates; a schedule's report with :func:`render_schedule_report`);
* :mod:`.tapes`: :func:`loan_tapes`, :func:`write_tapes` (the loan tape of each package
  and pool, for buyers);
* :mod:`.labels`: the Chinese and English labels (``lang="zh"`` / ``"en"``);
* :mod:`.console`: :func:`table_text`, a table as the command line prints it (ratios in
  percent, counts whole, money in CNY m or 万元);
* :mod:`.excel`: :func:`write_workbook` (``report.xlsx``, needs openpyxl);
* :mod:`.plots`: the charts (need matplotlib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from npl_disposal._lazy import lazy_names

# Imported at once: the function ``labels`` is named as its module is, and must stay the
# package's ``labels`` however the module is imported later. The labels are small.
from npl_disposal.reporting.labels import LANGUAGES, labels

#: Where each other public name lives, its module imported when the name is first used:
#: a command that needs only the labels (the plan's printout) loads neither the report's
#: templates nor its tapes.
_HOMES = {
    "readable": "npl_disposal.reporting.console",
    "table_text": "npl_disposal.reporting.console",
    "EXCEL_HINT": "npl_disposal.reporting.excel",
    "WORKBOOK_NAME": "npl_disposal.reporting.excel",
    "WORKBOOK_PLAN_ROWS": "npl_disposal.reporting.excel",
    "WORKBOOK_SHEETS": "npl_disposal.reporting.excel",
    "render_workbook": "npl_disposal.reporting.excel",
    "require_openpyxl": "npl_disposal.reporting.excel",
    "write_workbook": "npl_disposal.reporting.excel",
    "REPORT_NAME": "npl_disposal.reporting.html",
    "render_report": "npl_disposal.reporting.html",
    "render_schedule_report": "npl_disposal.reporting.html",
    "write_report": "npl_disposal.reporting.html",
    "TABLE_IDS": "npl_disposal.reporting.tables",
    "compliance_table": "npl_disposal.reporting.tables",
    "disposal_summary": "npl_disposal.reporting.tables",
    "report_tables": "npl_disposal.reporting.tables",
    "TAPE_FIELDS": "npl_disposal.reporting.tapes",
    "LoanTape": "npl_disposal.reporting.tapes",
    "loan_tapes": "npl_disposal.reporting.tapes",
    "packages_table": "npl_disposal.reporting.tapes",
    "write_tapes": "npl_disposal.reporting.tapes",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from npl_disposal.reporting.console import readable, table_text
    from npl_disposal.reporting.excel import (
        EXCEL_HINT,
        WORKBOOK_NAME,
        WORKBOOK_PLAN_ROWS,
        WORKBOOK_SHEETS,
        render_workbook,
        require_openpyxl,
        write_workbook,
    )
    from npl_disposal.reporting.html import (
        REPORT_NAME,
        render_report,
        render_schedule_report,
        write_report,
    )
    from npl_disposal.reporting.tables import (
        TABLE_IDS,
        compliance_table,
        disposal_summary,
        report_tables,
    )
    from npl_disposal.reporting.tapes import (
        TAPE_FIELDS,
        LoanTape,
        loan_tapes,
        packages_table,
        write_tapes,
    )

__all__ = [
    "EXCEL_HINT",
    "LANGUAGES",
    "REPORT_NAME",
    "TABLE_IDS",
    "TAPE_FIELDS",
    "WORKBOOK_NAME",
    "WORKBOOK_PLAN_ROWS",
    "WORKBOOK_SHEETS",
    "LoanTape",
    "compliance_table",
    "disposal_summary",
    "labels",
    "loan_tapes",
    "packages_table",
    "readable",
    "render_report",
    "render_schedule_report",
    "render_workbook",
    "report_tables",
    "require_openpyxl",
    "table_text",
    "write_report",
    "write_tapes",
    "write_workbook",
]


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())

"""What a risk officer reads: the report's tables, the HTML report, the Excel workbook, charts.

* :mod:`.tables`: :func:`report_tables`, :func:`disposal_summary`, :func:`compliance_table`;
* :mod:`.html`: :func:`write_report` (``report.html``, self-contained, built from
  Jinja2 templates; a schedule's report with :func:`render_schedule_report`);
* :mod:`.tapes`: :func:`loan_tapes`, :func:`write_tapes` (the loan tape of each package
  and pool, for buyers);
* :mod:`.labels`: the Chinese and English labels (``lang="zh"`` / ``"en"``);
* :mod:`.excel`: :func:`write_workbook` (``report.xlsx``, needs openpyxl);
* :mod:`.plots`: the charts (need matplotlib).
"""

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
from npl_disposal.reporting.labels import LANGUAGES, labels
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
    "render_report",
    "render_schedule_report",
    "render_workbook",
    "report_tables",
    "require_openpyxl",
    "write_report",
    "write_tapes",
    "write_workbook",
]

"""Tables and a self-contained HTML report of a disposal plan.

>>> from npl_disposal.reporting.report import disposal_summary, write_report
>>> disposal_summary(result)  # doctest: +SKIP
>>> write_report(result, "out", priced=lp_result)  # doctest: +SKIP
>>> write_workbook(result, "out", priced=lp_result)  # doctest: +SKIP

:func:`write_report` writes ``report.html``: one file with inline CSS, HTML tables
(each with an ``id``) and, when matplotlib is installed, the charts of
:mod:`npl_disposal.reporting.plots` as inline base64 PNG images. Money is shown in CNY
millions (2 decimals), ratios in percent. Everything is computed in CNY yuan.
:func:`write_workbook` writes the same tables (:func:`report_tables`) and the plan
to ``report.xlsx``, one worksheet each, money in CNY yuan to the cent; it needs
openpyxl (``pip install 'npl-disposal[excel]'``).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.exceptions import ExcelUnavailableError
from npl_disposal.io.portfolio import age_bucket
from npl_disposal.io.schema import AGE_LABELS
from npl_disposal.model.problem import GridOffers
from npl_disposal.reporting.plots import PLOT_HINT

if TYPE_CHECKING:
    from npl_disposal.solvers.solve import AllocationResult

__all__ = [
    "EXCEL_HINT",
    "REPORT_NAME",
    "TABLE_IDS",
    "WORKBOOK_NAME",
    "WORKBOOK_PLAN_ROWS",
    "WORKBOOK_SHEETS",
    "ExcelUnavailableError",
    "compliance_table",
    "disposal_summary",
    "render_report",
    "render_workbook",
    "report_tables",
    "require_openpyxl",
    "write_report",
    "write_workbook",
]

#: File name written by :func:`write_report`.
REPORT_NAME = "report.html"

#: The ``id`` of every table the report can hold (``add-back`` only where the branch
#: table gives ``inclusive_loans_start``).
TABLE_IDS = (
    "summary", "channel-mix", "budgets", "tolerance", "wage-pool", "add-back", "compliance",
    "disposal",
)  # fmt: skip

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

#: The plan sheet holds at most this many rows (openpyxl takes about 0.2 ms and a few KB
#: per cell); a longer plan gets a note there instead: it is in ``plan.csv``.
WORKBOOK_PLAN_ROWS = 100_000

#: What to install for the Excel workbook.
EXCEL_HINT = "the Excel workbook needs openpyxl: pip install 'npl-disposal[excel]'"

_SUMMARY_COLUMNS = ["loans", "balance", "value", "pnl"]


def disposal_summary(result: AllocationResult) -> pd.DataFrame:
    """Loans, balance, value and pnl (CNY yuan) by channel x branch x class x age bucket.

    One row per non-empty group; ``loans`` counts loan shares (fractional plans
    give fractional counts). The ``balance`` column sums to the portfolio balance.
    """
    p = result.problem
    loans = p.portfolio.loans
    loan, chan = np.nonzero(result.shares > 1e-12)
    share = result.shares[loan, chan]
    channels = pd.Categorical.from_codes(chan, categories=list(p.channels))
    branch_order = list(dict.fromkeys([*p.branches, *loans["branch"].astype(str).unique()]))
    frame = pd.DataFrame(
        {
            "channel": channels,
            "branch": pd.Categorical(
                loans["branch"].astype(str).to_numpy()[loan], categories=branch_order
            ),
            "classification": loans["classification"].to_numpy()[loan],
            "age_bucket": pd.Categorical(
                age_bucket(loans["npl_age_months"]).to_numpy()[loan], categories=list(AGE_LABELS)
            ),
            "loans": share,
            "balance": share * p.balance[loan],
            "value": share * p.value[loan, chan],
            "pnl": share * p.pnl[loan, chan],
        }
    )
    keys = ["channel", "branch", "classification", "age_bucket"]
    out = frame.groupby(keys, observed=True, sort=True)[_SUMMARY_COLUMNS].sum()
    return out.reset_index()


def compliance_table(result: AllocationResult) -> pd.DataFrame:
    """Loans the loan rules forced out of the book, by rule and channel.

    Columns ``rule, channel, loans, balance`` (CNY yuan); ``rule`` is ``long_age``,
    ``write_off_priority`` or both joined by ``+``. Loans a rule concerns that no other
    channel can take (so stay) appear as, e.g., ``long_age (no other channel)``.
    """
    p = result.problem
    loans = p.portfolio.loans
    forced = p.forced_out
    offers = GridOffers(p.offered, p.channels)
    rule = np.full(len(loans), "", dtype=object)
    for loan_rule in p.policy.rules.loan_rules:
        hit = forced & loan_rule.barred(offers, loans)[0]
        rule[hit] = np.where(rule[hit] == "", loan_rule.label, rule[hit] + " + " + loan_rule.label)
    for loan_rule in p.policy.rules.loan_rules:
        stuck = loan_rule.concerns(offers, loans) & ~forced & (rule == "")
        rule[stuck] = f"{loan_rule.label} (no other channel)"
    picked = rule != ""
    columns = ["rule", "channel", "loans", "balance"]
    if not picked.any():
        return pd.DataFrame({c: [] for c in columns})
    loan, chan = np.nonzero(result.shares[picked] > 1e-12)
    idx = np.flatnonzero(picked)[loan]
    share = result.shares[idx, chan]
    frame = pd.DataFrame(
        {
            "rule": rule[idx],
            "channel": pd.Categorical.from_codes(chan, categories=list(p.channels)),
            "loans": share,
            "balance": share * p.balance[idx],
        }
    )
    out = frame.groupby(["rule", "channel"], observed=True, sort=True)[["loans", "balance"]].sum()
    return out.reset_index()[columns]


# --------------------------------------------------------------------------- formatting

_Fmt = Callable[[Any], str]


def _isnan(x: Any) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _money(x: Any) -> str:
    return "n/a" if _isnan(x) else f"{float(x) / 1e6 + 0.0:,.2f}".replace("-0.00", "0.00")


def _pct(x: Any) -> str:
    return "n/a" if _isnan(x) else f"{float(x) * 100:.2f}%"


def _count(x: Any) -> str:
    if _isnan(x):
        return "n/a"
    x = float(x)
    text = f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.2f}"
    return "0" if text in ("-0", "-0.00") else text


def _num(x: Any) -> str:
    return "n/a" if _isnan(x) else f"{float(x):,.4g}"


def _flag(x: Any) -> str:
    return "n/a" if _isnan(x) else ("yes" if bool(x) else "no")


def _text(x: Any) -> str:
    return "" if _isnan(x) else str(x)


_KINDS: dict[str, tuple[_Fmt, str]] = {
    "money": (_money, " (CNY m)"),
    "pct": (_pct, " (%)"),
    "count": (_count, ""),
    "num": (_num, ""),
    "flag": (_flag, ""),
    "check": (_flag, ""),
    "text": (_text, ""),
    "textnum": (_text, ""),
}


def _html_table(
    frame: pd.DataFrame, table_id: str, kinds: Mapping[str, str], caption: str = ""
) -> str:
    """An HTML table of ``frame``'s columns in ``kinds`` (column -> kind), every cell escaped."""
    cols = [c for c in kinds if c in frame.columns]
    head = "".join(f"<th>{html.escape(c + _KINDS[kinds[c]][1])}</th>" for c in cols)
    body = []
    for row in frame[cols].itertuples(index=False, name=None):
        cells = []
        for c, value in zip(cols, row, strict=True):
            kind = kinds[c]
            css = ' class="num"' if kind not in ("text", "flag", "check") else ""
            if kind == "check" and not _isnan(value):
                css = ' class="ok"' if bool(value) else ' class="bad"'
            cells.append(f"<td{css}>{html.escape(_KINDS[kind][0](value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table id="{html.escape(table_id)}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _p(text: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{html.escape(text)}</p>"


# --------------------------------------------------------------------------- charts


def _charts_available() -> bool:
    try:
        from npl_disposal.reporting.plots import require_matplotlib

        require_matplotlib()
    except ImportError:
        return False
    return True


def _chart(draw: Callable[[Any], Any], alt: str, size: tuple[float, float] = (7.5, 4.0)) -> str:
    """Draw on a fresh (pyplot-free) figure and return an ``<img>`` with the PNG inline."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    try:
        draw(fig.subplots())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    except Exception as exc:  # a chart must never cost the report its tables
        return _p(f"chart '{alt}' could not be drawn: {exc}", "note")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# --------------------------------------------------------------------------- report

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Noto Sans SC","PingFang SC",sans-serif;
margin:2em auto;max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em}th{background:#f3f5f7;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#1a7f37}td.bad{color:#c62828;font-weight:600}
tbody tr:nth-child(even){background:#fafbfc}
img.chart{max-width:100%;display:block;margin:.6em 0}
p.note{color:#666;font-size:.9em}p.meta{color:#666}
"""


# --------------------------------------------------------------------------- tables

#: Columns of every report table, in order, and how each is shown: ``money`` (CNY),
#: ``pct`` (a ratio), ``count`` (loans, possibly fractional), ``amount`` (CNY or loans
#: as the row's ``unit`` says), ``price`` (a shadow price), ``share`` (of a loan),
#: ``flag`` / ``check`` (yes / no), ``text``. ``summary`` is described by
#: :data:`_SUMMARY_KINDS` instead (its ``value`` column mixes kinds).
_COLUMNS: dict[str, dict[str, str]] = {
    "summary": {"item": "text", "value": "value"},
    "channel-mix": {"channel": "text", "loans": "count", "balance": "money", "value": "money",
                    "pnl": "money", "balance_share": "pct"},
    "budgets": {"name": "text", "branch": "text", "unit": "text", "sense": "text",
                "usage": "amount", "limit": "amount", "slack": "amount", "binding": "flag",
                "binding_lp": "flag", "shadow_price": "price"},
    "tolerance": {"branch": "text", "inclusive_npl": "money", "inclusive_loans": "money",
                  "derecognised": "money", "ratio_before": "pct", "ratio_after": "pct",
                  "threshold": "pct", "within": "check", "headroom": "money"},
    "wage-pool": {"branch": "text", "npl_loss": "money", "profit_after": "money",
                  "relief": "money", "wage_pool": "money"},
    "add-back": {"branch": "text", "written_off": "money", "growth": "pct",
                 "growth_restored": "pct", "increment": "money", "increment_restored": "money"},
    "compliance": {"rule": "text", "channel": "text", "loans": "count", "balance": "money"},
    "disposal": {"channel": "text", "branch": "text", "loans": "count", "balance": "money",
                 "value": "money", "pnl": "money"},
    "plan": {"loan_id": "text", "channel": "text", "share": "share"},
}  # fmt: skip

#: The rows of the ``summary`` table that are not text, and their kind.
_SUMMARY_KINDS = {"objective": "money", "bound": "money", "gap": "num", "seconds": "seconds"}


def _summary(result: AllocationResult) -> pd.DataFrame:
    values = [result.status.value, result.mode, result.objective, result.bound, result.gap,
              f"{result.solver.backend}/{result.solver.method}", result.solver.seconds]  # fmt: skip
    return pd.DataFrame(
        {
            "item": ["status", "mode", "objective", "bound", "gap", "solver", "seconds"],
            "value": pd.Series(values, dtype=object),
        }
    )


def _budgets(result: AllocationResult, priced: AllocationResult | None) -> pd.DataFrame:
    table = result.constraints.copy()
    if priced is not None:
        by_name = priced.constraints.set_index("name")
        table["shadow_price"] = table["name"].map(by_name["shadow_price"])
        table["binding_lp"] = table["name"].map(by_name["binding"])
    table["unit"] = table["unit"].astype(str)
    return table


def _by_channel_branch(result: AllocationResult) -> pd.DataFrame:
    detail = disposal_summary(result)
    by_cb = detail.groupby(["channel", "branch"], observed=True, sort=True)[_SUMMARY_COLUMNS]
    return by_cb.sum().reset_index()


def report_tables(
    result: AllocationResult, priced: AllocationResult | None = None
) -> dict[str, pd.DataFrame]:
    """The report's tables by id (the ids of :data:`TABLE_IDS`, in that order), unformatted.

    Money is CNY yuan, ratios are fractions, ``loans`` counts loan shares; each
    table has the columns the report shows. ``add-back`` is absent when the branch
    table gives no ``inclusive_loans_start``. ``priced`` (a fractional result of the
    same problem) supplies the budgets' ``shadow_price`` and ``binding_lp``.
    """
    figures = result.branch_figures()
    tables = {
        "summary": _summary(result),
        "channel-mix": result.channel_mix().reset_index(),
        "budgets": _budgets(result, priced),
        "tolerance": figures,
        "wage-pool": figures,
        "add-back": figures,
        "compliance": compliance_table(result),
        "disposal": _by_channel_branch(result),
    }
    if "growth" not in figures:
        del tables["add-back"]
    return {
        tid: frame[[c for c in _COLUMNS[tid] if c in frame.columns]].reset_index(drop=True)
        for tid, frame in tables.items()
    }


# --------------------------------------------------------------------------- report


def _budgets_html(budgets: pd.DataFrame) -> pd.DataFrame:
    table = budgets.copy()
    for col in ("usage", "limit", "slack"):
        table[col] = [
            _money(v) if u == "CNY" else _count(v)
            for v, u in zip(table[col], table["unit"], strict=True)
        ]
    table["unit"] = np.where(table["unit"] == "CNY", "CNY m", "loans")
    table["shadow_price"] = [
        "n/a" if _isnan(v) else f"{float(v):,.4f}" for v in table["shadow_price"]
    ]
    return table


def _summary_html(summary: pd.DataFrame) -> pd.DataFrame:
    shown = {"money": _money, "num": _num, "seconds": lambda x: f"{float(x):.2f}"}
    items, values = [], []
    for item, value in zip(summary["item"], summary["value"], strict=True):
        kind = _SUMMARY_KINDS.get(item, "text")
        items.append(item + (" (CNY m)" if kind == "money" else ""))
        values.append(shown.get(kind, _text)(value))
    return pd.DataFrame({"item": items, "value": values})


def render_report(
    result: AllocationResult, title: str | None = None, priced: AllocationResult | None = None
) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    p = result.problem
    title = title or f"NPL disposal plan: {p.portfolio.source}"
    charts = _charts_available()
    tables = report_tables(result, priced)
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _p(
            f"{p.n_loans:,} loans, balance CNY {p.balance.sum() / 1e6:,.2f}m, "
            f"{len(p.branches)} branches; generated "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
            "Money in CNY millions, ratios in percent.",
            "meta",
        ),
    ]
    if not charts:
        parts.append(_p("Charts are not shown: " + PLOT_HINT + ".", "note"))

    # -- summary
    parts += [
        "<h2>Summary</h2>",
        _html_table(_summary_html(tables["summary"]), "summary", {"item": "text", "value": "text"}),
    ]

    # -- channel mix
    parts += [
        "<h2>Channel mix</h2>",
        _html_table(tables["channel-mix"], "channel-mix", _COLUMNS["channel-mix"]),
    ]
    if charts:
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.channel_mix_by_branch(result, ax), "channel mix"))

    # -- budgets
    note = (
        "Usage, limit and slack of this plan; shadow prices from the LP relaxation (CNY of "
        "value per CNY or per loan of extra budget)."
        if priced is not None
        else "Usage, limit and slack of this plan; shadow prices exist in fractional mode only "
        "(CNY of value per CNY or per loan of extra budget)."
    )
    kinds = {"name": "text", "branch": "text", "unit": "text", "sense": "text", "usage": "textnum",
             "limit": "textnum", "slack": "textnum", "binding": "flag", "binding_lp": "flag",
             "shadow_price": "textnum"}  # fmt: skip
    parts += ["<h2>Budgets and shadow prices</h2>", _p(note, "note"),
              _html_table(_budgets_html(tables["budgets"]), "budgets", kinds)]  # fmt: skip
    shadow_source = priced if priced is not None else result
    has_prices = np.isfinite(shadow_source.constraints["shadow_price"].to_numpy(dtype=float))
    if charts and has_prices.any():
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.shadow_prices(shadow_source, ax), "shadow prices"))

    # -- branches
    parts += [
        "<h2>Branch tolerance</h2>",
        _p("Inclusive small/micro NPL ratio per branch before and after the plan; headroom is "
           "the inclusive NPL the branch may still keep (negative: still to derecognise).",
           "note"),
        _html_table(tables["tolerance"], "tolerance", _COLUMNS["tolerance"]),
    ]  # fmt: skip
    if charts:
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.tolerance_before_after(result, ax), "tolerance"))
    parts += [
        "<h2>Wage pool</h2>",
        _html_table(tables["wage-pool"], "wage-pool", _COLUMNS["wage-pool"]),
        "<h2>Write-off add-back</h2>",
    ]
    if "add-back" in tables:
        parts.append(_html_table(tables["add-back"], "add-back", _COLUMNS["add-back"]))
    else:
        parts.append(_p("The branch table gives no inclusive_loans_start: no growth figures.",
                        "note"))  # fmt: skip

    # -- compliance
    n_forced = int(p.forced_out.sum())
    parts += [
        "<h2>Compliance</h2>",
        _p(f"{n_forced:,} loans may not stay on the book (long ageing or write-off priority); "
           "where they went:", "note"),
        _html_table(tables["compliance"], "compliance", _COLUMNS["compliance"]),
    ]  # fmt: skip

    # -- disposal summary by channel x branch
    parts += [
        "<h2>Disposal by channel and branch</h2>",
        _html_table(tables["disposal"], "disposal", _COLUMNS["disposal"]),
    ]

    # -- valuation curves
    if charts:
        from npl_disposal.reporting import plots
        from npl_disposal.valuation import ValuationAssumptions

        try:
            assumptions: Any = ValuationAssumptions.from_policy(p.policy)
        except Exception:  # the chart is a courtesy; the defaults are still informative
            assumptions = None
        parts += [
            "<h2>Recovery against NPL age</h2>",
            _chart(lambda ax: plots.recovery_by_age(assumptions, ax), "recovery by age"),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_report(
    result: AllocationResult,
    out_dir: str | os.PathLike[str],
    title: str | None = None,
    priced: AllocationResult | None = None,
) -> Path:
    """Write ``report.html`` (self-contained) into ``out_dir``, atomically; return its path.

    ``priced`` is an optional fractional result of the same problem whose shadow
    prices are shown next to the budgets of ``result``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = render_report(result, title=title, priced=priced)
    target = out / REPORT_NAME
    _write_atomically(target, text.encode("utf-8"))
    return target


# --------------------------------------------------------------------------- workbook


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


def _xl_width(text: str) -> int:
    """Columns ``text`` takes in Excel: CJK (wide) characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _xl_count(value: Any) -> str:
    if _isnan(value):
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
        return [_XL_FORMATS.get(_SUMMARY_KINDS.get(i, "text")) for i in items]
    return [_XL_FORMATS.get(kind)] * len(values)


def _xl_shown(value: Any, fmt: str | None) -> str:
    """About the text Excel shows for ``value`` in ``fmt`` (to size the column)."""
    if _isnan(value):
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


def _xl_sheet(
    writer: pd.ExcelWriter,
    sheet: str,
    frame: pd.DataFrame,
    table_id: str,
    max_rows: int = _XL_MAX_ROWS - 1,
) -> None:
    """Write ``frame`` to ``sheet``: unit headers, number formats, frozen header, widths.

    A frame of more than ``max_rows`` rows gets a one-cell note instead.
    """
    from openpyxl.utils import get_column_letter

    kinds = _COLUMNS[table_id]
    columns = [c for c in kinds if c in frame.columns]
    if len(frame) > min(max_rows, _XL_MAX_ROWS - 1):
        note = (
            f"{len(frame):,} rows, more than the {max_rows:,} this sheet takes: see the "
            "CSV outputs (npl-disposal plan writes plan.csv; AllocationResult.plan in Python)."
        )
        pd.DataFrame({"note": [note]}).to_excel(writer, sheet_name=sheet, index=False)
        writer.sheets[sheet].column_dimensions["A"].width = len(note) + 2
        return
    shown = frame[columns]
    if table_id == "summary":
        items = [
            i + _XL_UNITS.get(_SUMMARY_KINDS.get(i, "text"), "") for i in frame["item"].tolist()
        ]
        shown = shown.assign(item=items)
    headers = [c + _XL_UNITS.get(kinds[c], "") for c in columns]
    shown.set_axis(headers, axis=1).to_excel(
        writer, sheet_name=sheet, index=False, freeze_panes=(1, 0)
    )
    ws = writer.sheets[sheet]
    for j, (column, header) in enumerate(zip(columns, headers, strict=True), start=1):
        formats = _xl_cell_formats(frame, column, kinds[column])
        values = shown[column].tolist()
        width = _xl_width(header)
        for i, (value, fmt) in enumerate(zip(values, formats, strict=True), start=2):
            if fmt is not None:
                ws.cell(row=i, column=j).number_format = fmt
            width = max(width, _xl_width(_xl_shown(value, fmt)))
        ws.column_dimensions[get_column_letter(j)].width = min(width + 2, 60)


def render_workbook(
    result: AllocationResult, title: str | None = None, priced: AllocationResult | None = None
) -> bytes:
    """The ``report.xlsx`` bytes (see :func:`write_workbook`).

    Raises :class:`ExcelUnavailableError` (an :class:`ImportError`) without openpyxl.
    """
    require_openpyxl()
    tables = report_tables(result, priced)
    tables["plan"] = result.plan
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for table_id, frame in tables.items():
            limit = WORKBOOK_PLAN_ROWS if table_id == "plan" else _XL_MAX_ROWS - 1
            _xl_sheet(writer, WORKBOOK_SHEETS[table_id], frame, table_id, limit)
        writer.book.properties.title = (
            title or f"NPL disposal plan: {result.problem.portfolio.source}"
        )
    return buffer.getvalue()


def write_workbook(
    result: AllocationResult,
    out_dir: str | os.PathLike[str],
    title: str | None = None,
    priced: AllocationResult | None = None,
) -> Path:
    """Write ``report.xlsx`` into ``out_dir``, atomically; return its path.

    One worksheet per table of the HTML report (:data:`WORKBOOK_SHEETS` names them)
    plus the plan (``loan_id, channel, share``; a note instead when it has more than
    :data:`WORKBOOK_PLAN_ROWS` rows). Cells hold the unrounded numbers:
    money in CNY yuan shown to the cent, ratios as fractions shown in percent; each
    money column's header says ``(CNY)``. The header row is frozen. ``priced`` is as
    in :func:`write_report`. Needs openpyxl (``pip install 'npl-disposal[excel]'``):
    without it, raises :class:`ExcelUnavailableError` (an :class:`ImportError`) and
    writes nothing.
    """
    data = render_workbook(result, title=title, priced=priced)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / WORKBOOK_NAME
    _write_atomically(target, data)
    return target

"""A self-contained HTML report of a disposal plan: tables, charts, one file.

>>> from npl_disposal.reporting import write_report
>>> write_report(result, "out", priced=lp_result)  # doctest: +SKIP

:func:`write_report` writes ``report.html``: inline CSS, HTML tables (each with an
``id``) and, when matplotlib is installed, the charts of
:mod:`npl_disposal.reporting.plots` as inline base64 PNG images. Money is shown in CNY
millions (2 decimals), ratios in percent. Everything is computed in CNY yuan.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.io.output import write_atomically
from npl_disposal.reporting.plots import PLOT_HINT
from npl_disposal.reporting.risk import risk_html
from npl_disposal.reporting.tables import (
    BUDGETS_GUIDE,
    COLUMNS,
    SUMMARY_KINDS,
    isnan,
    report_tables,
)

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult

__all__ = ["REPORT_NAME", "render_report", "write_report"]

#: File name written by :func:`write_report`.
REPORT_NAME = "report.html"

# --------------------------------------------------------------------------- formatting

_Fmt = Callable[[Any], str]



def _money(x: Any) -> str:
    return "n/a" if isnan(x) else f"{float(x) / 1e6 + 0.0:,.2f}".replace("-0.00", "0.00")


def _pct(x: Any) -> str:
    return "n/a" if isnan(x) else f"{float(x) * 100:.2f}%"


def _count(x: Any) -> str:
    if isnan(x):
        return "n/a"
    x = float(x)
    text = f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.2f}"
    return "0" if text in ("-0", "-0.00") else text


def _num(x: Any) -> str:
    return "n/a" if isnan(x) else f"{float(x):,.4g}"


def _flag(x: Any) -> str:
    return "n/a" if isnan(x) else ("yes" if bool(x) else "no")


def _text(x: Any) -> str:
    return "" if isnan(x) else str(x)


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
            if kind == "check" and not isnan(value):
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


# --------------------------------------------------------------------------- report


def _budgets_html(budgets: pd.DataFrame) -> pd.DataFrame:
    table = budgets.copy()
    for col in ("usage", "limit", "slack", "usage_lp"):
        if col not in table:
            continue
        table[col] = [
            _money(v) if u == "CNY" else _count(v)
            for v, u in zip(table[col], table["unit"], strict=True)
        ]
    table["level"] = ["" if isnan(v) else f"{float(v):.2f}" for v in table["level"]]
    table["fixed_costs"] = [_costs_in_millions(text) for text in table["fixed_costs"]]
    table["unit"] = np.where(table["unit"] == "CNY", "CNY m", "loans")
    table["shadow_price"] = [
        "n/a" if isnan(v) else f"{float(v):,.4f}" for v in table["shadow_price"]
    ]
    return table


def _costs_in_millions(text: str) -> str:
    """``securitisation CNY 3,744,595.00`` as the report shows money: ``... CNY 3.74m``."""
    parts = []
    for part in filter(None, (p.strip() for p in str(text or "").split(";"))):
        name, _, amount = part.rpartition(" CNY ")
        parts.append(f"{name} CNY {float(amount.replace(',', '')) / 1e6:,.2f}m")
    return "; ".join(parts)


def _summary_html(summary: pd.DataFrame) -> pd.DataFrame:
    shown = {"money": _money, "num": _num, "seconds": lambda x: f"{float(x):.2f}"}
    items, values = [], []
    for item, value in zip(summary["item"], summary["value"], strict=True):
        kind = SUMMARY_KINDS.get(item, "text")
        items.append(item + (" (CNY m)" if kind == "money" else ""))
        values.append(shown.get(kind, _text)(value))
    return pd.DataFrame({"item": items, "value": values})


def render_report(
    result: AllocationResult, title: str | None = None, priced: AllocationResult | None = None
) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    title = title or f"NPL disposal plan: {result.problem.portfolio.source}"
    charts = _charts_available()
    tables = report_tables(result, priced)
    parts = _head(result, title, charts)
    parts += [
        "<h2>Summary</h2>",
        _html_table(_summary_html(tables["summary"]), "summary", {"item": "text", "value": "text"}),
    ]
    parts += _mix(result, tables, charts)
    parts += _budgets(result, priced, tables, charts)
    parts += _branches(result, tables, charts)
    parts += _compliance(result, tables)
    parts += _curves(result) if charts else []
    parts += risk_html(result, charts)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _head(result: AllocationResult, title: str, charts: bool) -> list[str]:
    p = result.problem
    parts = [
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
    return parts


def _mix(result: AllocationResult, tables: Mapping[str, pd.DataFrame], charts: bool) -> list[str]:
    parts = [
        "<h2>Channel mix</h2>",
        _html_table(tables["channel-mix"], "channel-mix", COLUMNS["channel-mix"]),
    ]
    if charts:
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.channel_mix_by_branch(result, ax), "channel mix"))
    return parts


def _budgets(
    result: AllocationResult,
    priced: AllocationResult | None,
    tables: Mapping[str, pd.DataFrame],
    charts: bool,
) -> list[str]:
    note = BUDGETS_GUIDE + (
        "" if priced is not None or result.mode == "fractional"
        else " Shadow prices exist in fractional mode only."
    )
    kinds = {"name": "text", "branch": "text", "unit": "text", "sense": "text", "usage": "textnum",
             "limit": "textnum", "level": "textnum", "slack": "textnum", "binding": "flag",
             "usage_lp": "textnum", "binding_lp": "flag", "shadow_price": "textnum",
             "fixed_costs": "text", "note": "text"}  # fmt: skip
    parts = ["<h2>Budgets and shadow prices</h2>", _p(note, "note"),
             _html_table(_budgets_html(tables["budgets"]), "budgets", kinds)]  # fmt: skip
    shadow_source = priced if priced is not None else result
    has_prices = np.isfinite(shadow_source.constraints["shadow_price"].to_numpy(dtype=float))
    if charts and has_prices.any():
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.shadow_prices(shadow_source, ax), "shadow prices"))
    return parts


def _branches(
    result: AllocationResult, tables: Mapping[str, pd.DataFrame], charts: bool
) -> list[str]:
    parts = [
        "<h2>Branch tolerance</h2>",
        _p("Inclusive small/micro NPL ratio per branch before and after the plan; headroom is "
           "the inclusive NPL the branch may still keep (negative: still to derecognise).",
           "note"),
        _html_table(tables["tolerance"], "tolerance", COLUMNS["tolerance"]),
    ]  # fmt: skip
    if charts:
        from npl_disposal.reporting import plots

        parts.append(_chart(lambda ax: plots.tolerance_before_after(result, ax), "tolerance"))
    parts += [
        "<h2>Wage pool</h2>",
        _html_table(tables["wage-pool"], "wage-pool", COLUMNS["wage-pool"]),
        "<h2>Write-off add-back</h2>",
    ]
    if "add-back" in tables:
        parts.append(_html_table(tables["add-back"], "add-back", COLUMNS["add-back"]))
    else:
        parts.append(_p("The branch table gives no inclusive_loans_start: no growth figures.",
                        "note"))  # fmt: skip
    return parts


def _compliance(result: AllocationResult, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    n_forced = int(result.problem.forced_out.sum())
    return [
        "<h2>Compliance</h2>",
        _p(f"{n_forced:,} loans may not stay on the book (long ageing or write-off priority); "
           "where they went:", "note"),
        _html_table(tables["compliance"], "compliance", COLUMNS["compliance"]),
        "<h2>Disposal by channel and branch</h2>",
        _html_table(tables["disposal"], "disposal", COLUMNS["disposal"]),
    ]  # fmt: skip


def _curves(result: AllocationResult) -> list[str]:
    from npl_disposal.reporting import plots
    from npl_disposal.valuation import ValuationAssumptions

    try:
        assumptions: Any = ValuationAssumptions.from_policy(result.problem.policy)
    except Exception:  # the chart is a courtesy; the defaults are still informative
        assumptions = None
    return [
        "<h2>Recovery against NPL age</h2>",
        _chart(lambda ax: plots.recovery_by_age(assumptions, ax), "recovery by age"),
    ]


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
    text = render_report(result, title=title, priced=priced)
    target = Path(out_dir) / REPORT_NAME
    write_atomically(target, text.encode("utf-8"))
    return target


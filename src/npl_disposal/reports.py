"""Tables and a self-contained HTML report of a disposal plan.

>>> from npl_disposal.reports import disposal_summary, write_report
>>> disposal_summary(result)  # doctest: +SKIP
>>> write_report(result, "out", priced=lp_result)  # doctest: +SKIP

:func:`write_report` writes ``report.html``: one file with inline CSS, HTML tables
(each with an ``id``) and, when matplotlib is installed, the charts of
:mod:`npl_disposal.plots` as inline base64 PNG images. Money is shown in CNY
millions (2 decimals), ratios in percent. Everything is computed in CNY yuan.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.plots import PLOT_HINT
from npl_disposal.portfolio import age_bucket
from npl_disposal.schema import AGE_LABELS

if TYPE_CHECKING:
    from npl_disposal.solve import AllocationResult

__all__ = [
    "REPORT_NAME",
    "TABLE_IDS",
    "compliance_table",
    "disposal_summary",
    "render_report",
    "write_report",
]

#: File name written by :func:`write_report`.
REPORT_NAME = "report.html"

#: The ``id`` of every table the report can hold (``add-back`` only where the branch
#: table gives ``inclusive_loans_start``).
TABLE_IDS = (
    "summary", "channel-mix", "budgets", "tolerance", "wage-pool", "add-back", "compliance",
    "disposal",
)  # fmt: skip

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
    """Loans the long-age / write-off-priority rules forced out of the book, by rule and channel.

    Columns ``rule, channel, loans, balance`` (CNY yuan); ``rule`` is ``long_age``,
    ``write_off_priority`` or both joined by ``+``. Long-aged loans that no other
    channel can take (so stay) appear with rule ``long_age (no other channel)``.
    """
    p = result.problem
    loans = p.portfolio.loans
    forced = p.forced_out
    age = loans["npl_age_months"].to_numpy(dtype=float)
    long_age = p.policy.long_age
    long_aged = age >= long_age.months if long_age is not None else np.zeros(len(age), bool)
    w = p.channel("write_off")
    priority = (
        loans["small_micro"].to_numpy(dtype=bool) & p.offered[:, w]
        if w >= 0
        else np.zeros(len(age), bool)
    )
    rule = np.full(len(age), "", dtype=object)
    rule[forced & long_aged] = "long_age"
    rule[forced & priority] = "write_off_priority"
    rule[forced & long_aged & priority] = "long_age + write_off_priority"
    stuck = long_aged & ~forced & (rule == "")
    if long_age is not None:
        rule[stuck] = "long_age (no other channel)"
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
        from npl_disposal.plots import require_matplotlib

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


def _budgets(result: AllocationResult, priced: AllocationResult | None) -> pd.DataFrame:
    table = result.constraints.copy()
    if priced is not None:
        prices = priced.constraints.set_index("name")["shadow_price"]
        table["shadow_price"] = table["name"].map(prices)
        table["binding_lp"] = table["name"].map(priced.constraints.set_index("name")["binding"])
    table["unit"] = table["unit"].astype(str)
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


def render_report(
    result: AllocationResult, title: str | None = None, priced: AllocationResult | None = None
) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    p = result.problem
    title = title or f"NPL disposal plan: {p.portfolio.source}"
    charts = _charts_available()
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
    summary = pd.DataFrame(
        {
            "item": ["status", "mode", "objective (CNY m)", "bound (CNY m)", "gap",
                     "solver", "seconds"],
            "value": [result.status.value, result.mode, _money(result.objective),
                      _money(result.bound), _num(result.gap),
                      f"{result.solver.backend}/{result.solver.method}",
                      f"{result.solver.seconds:.2f}"],
        }
    )  # fmt: skip
    parts += [
        "<h2>Summary</h2>",
        _html_table(summary, "summary", {"item": "text", "value": "text"}),
    ]

    # -- channel mix
    mix = result.channel_mix().reset_index()
    parts += [
        "<h2>Channel mix</h2>",
        _html_table(mix, "channel-mix", {"channel": "text", "loans": "count", "balance": "money",
                                         "value": "money", "pnl": "money",
                                         "balance_share": "pct"}),
    ]  # fmt: skip
    if charts:
        from npl_disposal import plots

        parts.append(_chart(lambda ax: plots.channel_mix_by_branch(result, ax), "channel mix"))

    # -- budgets
    budgets = _budgets(result, priced)
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
              _html_table(budgets, "budgets", kinds)]  # fmt: skip
    shadow_source = priced if priced is not None else result
    has_prices = np.isfinite(shadow_source.constraints["shadow_price"].to_numpy(dtype=float))
    if charts and has_prices.any():
        from npl_disposal import plots

        parts.append(_chart(lambda ax: plots.shadow_prices(shadow_source, ax), "shadow prices"))

    # -- branches
    figures = result.branch_figures()
    parts += [
        "<h2>Branch tolerance</h2>",
        _p("Inclusive small/micro NPL ratio per branch before and after the plan; headroom is "
           "the inclusive NPL the branch may still keep (negative: still to derecognise).",
           "note"),
        _html_table(figures, "tolerance", {"branch": "text", "inclusive_npl": "money",
                                           "inclusive_loans": "money", "derecognised": "money",
                                           "ratio_before": "pct", "ratio_after": "pct",
                                           "threshold": "pct", "within": "check",
                                           "headroom": "money"}),
    ]  # fmt: skip
    if charts:
        from npl_disposal import plots

        parts.append(_chart(lambda ax: plots.tolerance_before_after(result, ax), "tolerance"))
    parts += [
        "<h2>Wage pool</h2>",
        _html_table(figures, "wage-pool", {"branch": "text", "npl_loss": "money",
                                           "profit_after": "money", "relief": "money",
                                           "wage_pool": "money"}),
        "<h2>Write-off add-back</h2>",
    ]  # fmt: skip
    if "growth" in figures:
        parts.append(
            _html_table(figures, "add-back", {"branch": "text", "written_off": "money",
                                              "growth": "pct", "growth_restored": "pct",
                                              "increment": "money",
                                              "increment_restored": "money"})
        )  # fmt: skip
    else:
        parts.append(_p("The branch table gives no inclusive_loans_start: no growth figures.",
                        "note"))  # fmt: skip

    # -- compliance
    comp = compliance_table(result)
    n_forced = int(p.forced_out.sum())
    parts += [
        "<h2>Compliance</h2>",
        _p(f"{n_forced:,} loans may not stay on the book (long ageing or write-off priority); "
           "where they went:", "note"),
        _html_table(comp, "compliance", {"rule": "text", "channel": "text", "loans": "count",
                                         "balance": "money"}),
    ]  # fmt: skip

    # -- disposal summary by channel x branch
    detail = disposal_summary(result)
    by_cb = detail.groupby(["channel", "branch"], observed=True, sort=True)[
        _SUMMARY_COLUMNS
    ].sum().reset_index()  # fmt: skip
    parts += [
        "<h2>Disposal by channel and branch</h2>",
        _html_table(by_cb, "disposal", {"channel": "text", "branch": "text", "loans": "count",
                                        "balance": "money", "value": "money", "pnl": "money"}),
    ]  # fmt: skip

    # -- valuation curves
    if charts:
        from npl_disposal import plots
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
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".report-", suffix=".html.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target

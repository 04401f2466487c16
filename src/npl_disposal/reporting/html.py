"""A self-contained HTML report of a disposal plan or schedule: tables, charts, one file.

>>> from npl_disposal.reporting import write_report
>>> write_report(result, "out", priced=lp_result, lang="zh")  # doctest: +SKIP

:func:`write_report` writes ``report.html``: inline CSS, HTML tables (each with an
``id``) and, when matplotlib is installed, the charts of
:mod:`npl_disposal.reporting.plots` as inline SVG whose text stays text (the browser
draws Chinese with the reader's own fonts). The page is built from the Jinja2
templates in ``reporting/templates`` with autoescaping on: every name, title and cell
is escaped, only the charts' SVG is inserted as is. ``lang="zh"`` gives Chinese
headings, channels, rules and units (money in 万元, totals in 亿元; English: CNY
millions), see :mod:`.labels`. Everything is computed in CNY yuan; a
:class:`~npl_disposal.solvers.schedule_result.ScheduleResult` gets the schedule's
report (:func:`render_schedule_report`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.io.output import write_atomically
from npl_disposal.reporting.labels import Labels, labels
from npl_disposal.reporting.plots import PLOT_HINT
from npl_disposal.reporting.tables import (
    BUDGETS_GUIDE,
    COLUMNS,
    SUMMARY_KINDS,
    gap_text,
    isnan,
    price_text,
    report_tables,
)

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult
    from npl_disposal.solvers.schedule_result import ScheduleResult
    from npl_disposal.solvers.timing import TimingValue

__all__ = [
    "REPORT_NAME",
    "Section",
    "render_report",
    "render_schedule_report",
    "write_report",
]

#: File name written by :func:`write_report`.
REPORT_NAME = "report.html"

_TEMPLATES = Path(__file__).with_name("templates")

# --------------------------------------------------------------------------- the page's parts


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and CSS class (``num``, ``ok``, ``bad`` or none)."""

    text: str
    css: str = ""


@dataclass(frozen=True)
class Table:
    """A table of the page: its ``id``, headers and rows of cells."""

    id: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart (trusted: drawn by matplotlib, which escapes its text)."""

    svg: Any
    alt: str


@dataclass(frozen=True)
class Block:
    """One piece of a section: a ``note`` (text), a ``table``, a ``chart`` or ``html``."""

    kind: str
    value: Any


@dataclass
class Section:
    """A ``<section>`` of the report: a heading (none when empty) and its blocks, in order.

    ``render_report(..., extra_sections=[...])`` adds sections after the tables.
    """

    title: str
    id: str = ""
    blocks: list[Block] = field(default_factory=list)

    def note(self, text: str) -> Section:
        """Add a paragraph of text."""
        self.blocks.append(Block("note", text))
        return self

    def table(self, table: Table) -> Section:
        """Add a table."""
        self.blocks.append(Block("table", table))
        return self

    def html(self, fragment: str) -> Section:
        """Add an HTML fragment as is: for sections built by library code, which escapes it."""
        from markupsafe import Markup

        self.blocks.append(Block("html", Markup(fragment)))
        return self

    def chart(self, chart: Chart | str) -> Section:
        """Add a chart (or, when it could not be drawn, the note saying why)."""
        self.blocks.append(Block("chart", chart) if isinstance(chart, Chart) else
                           Block("note", chart))  # fmt: skip
        return self


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


def _page(
    lab: Labels, title: str, meta: str, notes: Sequence[str], sections: Sequence[Section]
) -> str:
    template = _environment().get_template("report.html.j2")
    text = template.render(html_lang="zh-CN" if lab.zh else "en", title=title, meta=meta,
                           notes=list(notes), sections=list(sections))  # fmt: skip
    return text.rstrip() + "\n"


# --------------------------------------------------------------------------- formatting

_Fmt = Callable[[Any, Labels], str]


def _amount(x: Any, scale: float, lab: Labels) -> str:
    if isnan(x):
        return lab.t("na")
    return f"{float(x) / scale + 0.0:,.2f}".replace("-0.00", "0.00")


def _money(x: Any, lab: Labels) -> str:
    return _amount(x, lab.money_scale, lab)


def _total(x: Any, lab: Labels) -> str:
    return _amount(x, lab.total_scale, lab)


def _pct(x: Any, lab: Labels) -> str:
    return lab.t("na") if isnan(x) else f"{float(x) * 100:.2f}%"


def _count(x: Any, lab: Labels) -> str:
    if isnan(x):
        return lab.t("na")
    x = float(x)
    text = f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.2f}"
    return "0" if text in ("-0", "-0.00") else text


def _num(x: Any, lab: Labels) -> str:
    return lab.t("na") if isnan(x) else f"{float(x):,.4g}"


def _gap(x: Any, lab: Labels) -> str:
    """The optimality gap in percent (``< 0.0001%``); none when there is no bound."""
    return lab.t("na") if isnan(x) or not np.isfinite(float(x)) else gap_text(x)


def _flag(x: Any, lab: Labels) -> str:
    return lab.t("na") if isnan(x) else lab.flag(x)


def _text(x: Any, lab: Labels) -> str:
    return "" if isnan(x) else str(x)


_KINDS: dict[str, _Fmt] = {"money": _money, "total": _total, "pct": _pct, "count": _count,
                           "num": _num, "flag": _flag, "check": _flag, "text": _text,
                           "textnum": _text}  # fmt: skip

#: Text columns whose values are translated, and how.
_TRANSLATED: dict[str, Callable[[Labels, Any], str]] = {
    "channel": Labels.channel, "rule": Labels.rule, "classification": Labels.classification,
    "plan": Labels.item,
}  # fmt: skip


def _unit(kind: str, lab: Labels) -> str:
    return {"money": lab.money_unit, "total": lab.total_unit, "pct": "%"}.get(kind, "")


def _table(
    frame: pd.DataFrame, table_id: str, kinds: Mapping[str, str], lab: Labels, caption: str = ""
) -> Table:
    """The :class:`Table` of ``frame``'s columns in ``kinds`` (column -> kind)."""
    cols = [c for c in kinds if c in frame.columns]
    headers = [lab.column(c, _unit(kinds[c], lab)) for c in cols]
    rows = []
    for row in frame[cols].itertuples(index=False, name=None):
        cells = []
        for c, value in zip(cols, row, strict=True):
            kind = kinds[c]
            css = "num" if kind not in ("text", "flag", "check") else ""
            if kind == "check" and not isnan(value):
                css = "ok" if bool(value) else "bad"
            if kind == "text" and c in _TRANSLATED and not isnan(value):
                text = _TRANSLATED[c](lab, value)
            else:
                text = _KINDS[kind](value, lab)
            cells.append(Cell(text, css))
        rows.append(cells)
    return Table(table_id, headers, rows, caption)


# --------------------------------------------------------------------------- charts


def _charts_available() -> bool:
    from npl_disposal.reporting.plots import charts_available

    return charts_available()


def _chart(
    draw: Callable[[Any], Any], alt: str, lab: Labels, size: tuple[float, float] = (7.5, 4.0)
) -> Chart | str:
    """The chart ``draw`` makes, as inline SVG; the reason as text if it fails."""
    from markupsafe import Markup

    from npl_disposal.reporting.plots import svg_chart

    try:
        svg = svg_chart(draw, lab.lang, size)
    except Exception as exc:  # a chart must never cost the report its tables
        return lab.t("chart_failed", alt=alt, error=exc)
    return Chart(Markup(svg), alt)


# --------------------------------------------------------------------------- plan report


def _budgets_frame(
    budgets: pd.DataFrame, constraints: pd.DataFrame, lab: Labels
) -> pd.DataFrame:
    table = budgets.copy()
    money_unit = lab.money_unit
    for col in ("usage", "limit", "slack", "usage_lp"):
        if col not in table:
            continue
        table[col] = [
            _money(v, lab) if u == "CNY" else _count(v, lab)
            for v, u in zip(table[col], table["unit"], strict=True)
        ]
    table["level"] = ["" if isnan(v) else f"{abs(float(v)) if abs(float(v)) < 5e-3 else v:.2f}"
                      for v in table["level"]]  # fmt: skip
    table["fixed_costs"] = [_costs(text, lab) for text in table["fixed_costs"]]
    table["unit"] = np.where(table["unit"] == "CNY", money_unit, lab.item("loans"))
    table["shadow_price"] = [
        lab.t("na") if isnan(v) else price_text(v) for v in table["shadow_price"]
    ]
    if lab.zh:
        rules = constraints.set_index("name")["rule"]
        table["name"] = [lab.constraint(n, rules.get(n), b)
                         for n, b in zip(table["name"], table["branch"], strict=True)]  # fmt: skip
    for col in ("binding", "binding_lp"):
        if col in table:
            table[col] = [_flag(v, lab) for v in table[col]]
    if "note" in table:
        table["note"] = [lab.note(v) for v in table["note"]]
    return table


def _costs(text: str, lab: Labels) -> str:
    """``securitisation CNY 3,744,595.00`` as the report shows money: ``... CNY 3.74m``."""
    parts = []
    for part in filter(None, (p.strip() for p in str(text or "").split(";"))):
        name, _, amount = part.rpartition(" CNY ")
        parts.append(f"{lab.channel(name)} {lab.money(float(amount.replace(',', '')))}")
    return "; ".join(parts)


def _summary_frame(summary: pd.DataFrame, lab: Labels) -> pd.DataFrame:
    shown: dict[str, _Fmt] = {"money": _total, "num": _num, "gap": _gap,
                              "seconds": lambda x, _: f"{float(x):.2f}"}  # fmt: skip
    items, values = [], []
    for item, value in zip(summary["item"], summary["value"], strict=True):
        kind = "gap" if item == "gap" else SUMMARY_KINDS.get(item, "text")
        unit = lab.total_unit if kind == "money" else ""
        items.append(lab.column(lab.item(item), unit) if lab.zh else
                     item + (f" ({unit})" if unit else ""))  # fmt: skip
        values.append(shown[kind](value, lab) if kind in shown else lab.item(_text(value, lab)))
    return pd.DataFrame({"item": items, "value": values})


_TEXT_KINDS = {"item": "text", "value": "textnum"}
_BUDGET_KINDS = {
    "name": "text", "branch": "text", "unit": "text", "sense": "text", "usage": "textnum",
    "limit": "textnum", "level": "textnum", "slack": "textnum", "binding": "text",
    "usage_lp": "textnum", "binding_lp": "text", "shadow_price": "textnum",
    "fixed_costs": "text", "note": "text",
}  # fmt: skip


def _kinds(table_id: str) -> dict[str, str]:
    """The report's kinds of a :data:`COLUMNS` table (``share`` is shown as a number)."""
    return {c: ("num" if k == "share" else k) for c, k in COLUMNS[table_id].items()}


def render_report(
    result: AllocationResult,
    title: str | None = None,
    priced: AllocationResult | None = None,
    *,
    lang: str = "en",
    timing: TimingValue | None = None,
    extra_sections: Sequence[Section] = (),
) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    from npl_disposal.solvers.schedule_result import ScheduleResult

    if isinstance(result, ScheduleResult):
        return render_schedule_report(result, timing=timing, lang=lang, title=title,
                                      extra_sections=extra_sections)  # fmt: skip
    lab = labels(lang)
    title = title or lab.t("title", source=result.problem.portfolio.source)
    charts = _charts_available()
    tables = report_tables(result, priced)
    sections = [Section(lab.t("summary"), "summary").table(
        _table(_summary_frame(tables["summary"], lab), "summary", _TEXT_KINDS, lab))]
    sections.append(_mix(result, tables, charts, lab))
    sections.append(_budgets(result, priced, tables, charts, lab))
    sections += _branches(result, tables, charts, lab)
    sections += _compliance(result, tables, lab)
    sections.append(_packages(result, lab))
    sections += list(extra_sections)
    sections += _risk(result, charts, lab)
    if charts:
        sections.append(_curves(result, lab))
    return _page(lab, title, _meta(result, lab), _chart_notes(charts, lab), sections)


_SCENARIOS = {"scenario": "text", "probability": "pct", "value": "money"}
_FRONTIER = {"aversion": "num", "expected_value": "money", "tail_mean": "money"}


def _risk(result: AllocationResult, charts: bool, lab: Labels) -> list[Section]:
    """Recovery risk: the plan's value across scenarios, and the frontier over aversions."""
    from npl_disposal.reporting import risk as draw

    figures = result.risk
    if figures is None:
        return []
    worst = figures.frame().head(draw.WORST_SHOWN)
    section = Section(lab.t("risk"), "risk").note(lab.t(
        "risk_summary", expected=lab.money(figures.expected_value, total=True),
        tail=lab.money(figures.tail_mean, total=True), worst=f"{1 - figures.alpha:.0%}",
        n=f"{len(figures.values):,}"))  # fmt: skip
    section.table(_table(worst, "risk-worst", _SCENARIOS, lab,
                         lab.t("risk_worst", n=len(worst))))  # fmt: skip
    if charts:
        section.chart(_chart(lambda ax: draw.value_distribution(figures, ax, lab.lang),
                             lab.t("risk"), lab))  # fmt: skip
    frontier = draw.report_frontier(result)
    if frontier is None:
        return [section]
    section.note(lab.t("risk_frontier_note"))
    section.table(_table(frontier.table, "risk-frontier", _FRONTIER, lab, lab.t("risk_frontier")))
    mix = frontier.mix.reset_index()
    kinds = {"aversion": "num", **{c: "pct" for c in frontier.mix.columns}}
    mix_table = _table(mix, "risk-mix", kinds, lab, lab.t("risk_mix"))
    headers = [mix_table.headers[0], *(lab.channel(c) for c in frontier.mix.columns)]
    section.table(replace(mix_table, headers=headers))
    if charts:
        section.chart(_chart(lambda ax: draw.frontier_chart(frontier, ax, lab.lang),
                             lab.t("risk_frontier"), lab))  # fmt: skip
        section.chart(_chart(lambda ax: draw.mix_chart(frontier, ax, lab.lang),
                             lab.t("risk_mix"), lab))  # fmt: skip
    return [section]


def _meta(result: AllocationResult, lab: Labels) -> str:
    p = result.problem
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return lab.t("meta", loans=f"{p.n_loans:,}", balance=lab.money(p.balance.sum(), total=True),
                 branches=len(p.branches), when=when)  # fmt: skip


def _chart_notes(charts: bool, lab: Labels) -> list[str]:
    return [] if charts else [lab.t("no_charts", hint=PLOT_HINT)]


def _mix(
    result: AllocationResult, tables: Mapping[str, pd.DataFrame], charts: bool, lab: Labels
) -> Section:
    section = Section(lab.t("channel_mix"), "channel-mix")
    section.table(_table(tables["channel-mix"], "channel-mix", _kinds("channel-mix"), lab))
    if charts:
        from npl_disposal.reporting import plots

        section.chart(_chart(lambda ax: plots.channel_mix_by_branch(result, ax, lab.lang),
                             lab.t("chart_mix"), lab))  # fmt: skip
    return section


def _budgets(
    result: AllocationResult,
    priced: AllocationResult | None,
    tables: Mapping[str, pd.DataFrame],
    charts: bool,
    lab: Labels,
) -> Section:
    guide = lab.t("budget_guide") if lab.zh else BUDGETS_GUIDE
    lp_only = priced is None and result.mode != "fractional"
    note = guide + (lab.t("shadow_only_fractional") if lp_only else "")
    section = Section(lab.t("budgets"), "budgets").note(note)
    frame = _budgets_frame(tables["budgets"], result.constraints, lab)
    section.table(_table(frame, "budgets", _BUDGET_KINDS, lab))
    shadow_source = priced if priced is not None else result
    has_prices = np.isfinite(shadow_source.constraints["shadow_price"].to_numpy(dtype=float))
    if charts and has_prices.any():
        from npl_disposal.reporting import plots

        section.chart(_chart(lambda ax: plots.shadow_prices(shadow_source, ax, lab.lang),
                             lab.t("chart_prices"), lab))  # fmt: skip
    return section


def _branches(
    result: AllocationResult, tables: Mapping[str, pd.DataFrame], charts: bool, lab: Labels
) -> list[Section]:
    tolerance = Section(lab.t("tolerance"), "tolerance").note(lab.t("tolerance_note"))
    tolerance.table(_table(tables["tolerance"], "tolerance", _kinds("tolerance"), lab))
    if charts:
        from npl_disposal.reporting import plots

        tolerance.chart(_chart(lambda ax: plots.tolerance_before_after(result, ax, lab.lang),
                               lab.t("chart_tol"), lab))  # fmt: skip
    wage = Section(lab.t("wage_pool"), "wage-pool")
    wage.table(_table(tables["wage-pool"], "wage-pool", _kinds("wage-pool"), lab))
    add_back = Section(lab.t("add_back"), "add-back")
    if "add-back" in tables:
        add_back.table(_table(tables["add-back"], "add-back", _kinds("add-back"), lab))
    else:
        add_back.note(lab.t("no_add_back"))
    return [tolerance, wage, add_back]


def _compliance(
    result: AllocationResult, tables: Mapping[str, pd.DataFrame], lab: Labels
) -> list[Section]:
    n_forced = int(result.problem.forced_out.sum())
    compliance = Section(lab.t("compliance"), "compliance").note(
        lab.t("compliance_note", n=f"{n_forced:,}"))
    compliance.table(_table(tables["compliance"], "compliance", _kinds("compliance"), lab))
    disposal = Section(lab.t("disposal"), "disposal")
    disposal.table(_table(tables["disposal"], "disposal", _kinds("disposal"), lab))
    return [compliance, disposal]


_PACKAGES = {"package": "text", "channel": "text", "period": "text", "loans": "count",
             "balance_at_disposal": "money", "accrued_interest": "money",
             "collateral_value": "money",
             "collateral_cover": "pct", "mean_age_months": "num", "branches": "count"}  # fmt: skip


def _packages(result: AllocationResult, lab: Labels) -> Section:
    """The packages and pools for sale (what ``report --tapes`` writes a tape for)."""
    from npl_disposal.reporting.tapes import loan_tapes, packages_table

    section = Section(lab.t("packages"), "packages").note(lab.t("packages_note"))
    # A package's balance is the one the plan disposes of (a schedule's: at its window).
    table = packages_table(loan_tapes(result)).rename(columns={"balance": "balance_at_disposal"})
    if not len(table):
        return section.note(lab.t("no_packages"))
    return section.table(_table(table, "packages", _PACKAGES, lab))


def _curves(result: AllocationResult, lab: Labels) -> Section:
    from npl_disposal.reporting import plots
    from npl_disposal.valuation import ValuationAssumptions

    try:
        assumptions: Any = ValuationAssumptions.from_policy(result.problem.policy)
    except Exception:  # the chart is a courtesy; the defaults are still informative
        assumptions = None
    return Section(lab.t("recovery"), "recovery").chart(_chart(
        lambda ax: plots.recovery_by_age(assumptions, ax, lang=lab.lang), lab.t("chart_rec"), lab))


# --------------------------------------------------------------------------- schedule report

_SCHEDULE_MIX = {"channel": "text", "period": "text", "loans": "count", "balance": "money",
                 "value": "money", "pnl": "money"}  # fmt: skip
_PATH = {"branch": "text", "period": "text", "ratio_before": "pct", "ratio_after": "pct",
         "threshold": "pct", "within": "check", "headroom": "money"}  # fmt: skip
_WAGE = {"branch": "text", "period": "text", "npl_loss": "money", "profit_after": "money",
         "relief": "money", "wage_pool": "money"}  # fmt: skip
_TIMING = {"plan": "text", "value": "money", "gain": "money", "gain_pct": "textnum"}


def render_schedule_report(
    result: ScheduleResult,
    timing: TimingValue | None = None,
    *,
    lang: str = "en",
    title: str | None = None,
    extra_sections: Sequence[Section] = (),
) -> str:
    """The HTML text of a schedule's report (see :func:`write_report`).

    Sections: the summary; the balance disposed per channel and period (table and
    stacked bars, "kept" for loans kept through the horizon); the tolerance path of
    each branch at every checked period (table and lines against the threshold); the
    wage pool per branch and period; the budgets; and, when ``timing`` (from
    :func:`~npl_disposal.solvers.timing.timing_value` on the same problem) is given,
    the schedule against its two baselines (everything disposed in period 1; myopic,
    re-planned period by period): their values and the schedule's gain in money and
    percent.
    """
    lab = labels(lang)
    title = title or lab.t("schedule_title", source=result.problem.portfolio.source)
    charts = _charts_available()
    grid = result.problem.schedule
    last = grid.horizon.periods if grid is not None else 1
    summary = _schedule_summary(result)
    sections = [Section(lab.t("summary"), "summary").table(
        _table(_summary_frame(summary, lab), "summary", _TEXT_KINDS, lab))]

    mix = result.channel_mix().sort_values(["period", "channel"], kind="stable")
    mix = mix.assign(period=[lab.period(t, last) for t in mix["period"]])
    section = Section(lab.t("schedule_mix"), "schedule-mix").note(lab.t("schedule_mix_note"))
    section.table(_table(mix, "schedule-mix", _SCHEDULE_MIX, lab))
    if charts:
        from npl_disposal.reporting import plots

        section.chart(_chart(lambda ax: plots.schedule_by_period(result, ax, lab.lang),
                             lab.t("chart_sched"), lab))  # fmt: skip
    sections.append(section)

    figures = result.branch_figures()
    if "period" not in figures:
        figures = figures.assign(period=1)
    figures = figures.sort_values(["branch", "period"], kind="stable")
    shown = figures.assign(period=[lab.period(t, last) for t in figures["period"]])
    path = Section(lab.t("tolerance_path"), "tolerance-path").note(lab.t("tolerance_path_note"))
    path.table(_table(shown, "tolerance-path", _PATH, lab))
    if charts:
        from npl_disposal.reporting import plots

        path.chart(_chart(lambda ax: plots.tolerance_path(result, ax, lab.lang),
                          lab.t("chart_path"), lab, size=(7.5, 4.5)))  # fmt: skip
    sections.append(path)
    sections.append(Section(lab.t("wage_pool"), "wage-pool").table(
        _table(shown, "wage-pool", _WAGE, lab)))
    if timing is not None:
        sections.append(_timing(timing, lab))
    budgets = result.constraints.copy()
    budgets["unit"] = budgets["unit"].astype(str)
    frame = _budgets_frame(budgets[[c for c in COLUMNS["budgets"] if c in budgets]],
                           result.constraints, lab)  # fmt: skip
    sections.append(Section(lab.t("budgets"), "budgets").table(
        _table(frame, "budgets", _BUDGET_KINDS, lab)))
    sections.append(_packages(result, lab))
    sections += list(extra_sections)
    return _page(lab, title, _meta(result, lab), _chart_notes(charts, lab), sections)


def _schedule_summary(result: ScheduleResult) -> pd.DataFrame:
    values = [result.status.value, result.mode, result.objective, result.bound, result.gap,
              f"{result.solver.backend}/{result.solver.method}", result.solver.seconds]  # fmt: skip
    return pd.DataFrame({
        "item": ["status", "mode", "objective", "bound", "gap", "solver", "seconds"],
        "value": pd.Series(values, dtype=object),
    })  # fmt: skip


def _timing(timing: TimingValue, lab: Labels) -> Section:
    table = timing.table()
    table["gain_pct"] = [lab.t("no_plan") if isnan(v) else f"{float(v):.2f}%"
                         for v in table["gain_pct"]]  # fmt: skip
    section = Section(lab.t("timing"), "timing").note(lab.t("timing_note"))
    return section.table(_table(table, "timing", _TIMING, lab))


# --------------------------------------------------------------------------- writing


def write_report(
    result: AllocationResult,
    out_dir: str | os.PathLike[str],
    title: str | None = None,
    priced: AllocationResult | None = None,
    *,
    lang: str = "en",
    timing: TimingValue | None = None,
) -> Path:
    """Write ``report.html`` (self-contained) into ``out_dir``, atomically; return its path.

    ``priced`` is an optional fractional result of the same problem whose shadow
    prices are shown next to the budgets of ``result``. ``lang`` is ``"en"`` or
    ``"zh"``. A :class:`~npl_disposal.solvers.schedule_result.ScheduleResult` gets the
    schedule's report, with ``timing`` (its comparison with the two baselines) when
    given.
    """
    text = render_report(result, title=title, priced=priced, lang=lang, timing=timing)
    target = Path(out_dir) / REPORT_NAME
    write_atomically(target, text.encode("utf-8"))
    return target

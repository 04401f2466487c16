"""Charts of a disposal plan (optional: needs matplotlib, ``pip install 'npl-disposal[plot]'``).

>>> from npl_disposal.reporting import plots
>>> ax = plots.tolerance_before_after(result, lang="zh")  # doctest: +SKIP

matplotlib is imported inside each function, so this module imports without it;
calling a function without matplotlib raises :class:`ImportError` with the pip hint.
Every function draws on ``ax`` when given (else on a new figure) and returns the
Axes. ``lang`` (``"en"`` or ``"zh"``) chooses the labels (:mod:`.labels`): money in
CNY millions or 万元, ratios in percent. Chinese text is set in the first CJK font of
:data:`CJK_FONTS` the system has; :func:`svg_chart` draws a chart as SVG whose text
stays text, so the reader's browser draws every glyph with its own fonts.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.reporting.labels import Labels, labels

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult
    from npl_disposal.valuation import ValuationAssumptions

__all__ = [
    "CJK_FONTS",
    "PLOT_HINT",
    "channel_mix_by_branch",
    "recovery_by_age",
    "require_matplotlib",
    "schedule_by_period",
    "shadow_prices",
    "svg_chart",
    "tolerance_before_after",
    "tolerance_path",
    "what_if_curve",
]

#: What to install for the charts.
PLOT_HINT = "charts need matplotlib: pip install 'npl-disposal[plot]'"

#: Colours of the standard channels (others get the default cycle).
CHANNEL_COLOURS = {
    "retain": "#8c8c8c",
    "write_off": "#d62728",
    "bulk_transfer": "#ff7f0e",
    "securitisation": "#1f77b4",
    "restructure": "#2ca02c",
}

#: Fonts that draw Chinese, tried in order (Linux, Windows, macOS), then matplotlib's own.
CJK_FONTS = (
    "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
    "Arial Unicode MS", "DejaVu Sans", "sans-serif",
)  # fmt: skip

#: matplotlib's warning that its measuring font lacks a glyph.
_GLYPH_WARNING = r"(?s).*Glyph .* missing from font"


def require_matplotlib() -> Any:
    """Import and return :mod:`matplotlib`; raise ImportError with the pip hint if absent."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as exc:
        raise ImportError(PLOT_HINT) from exc
    return matplotlib


def charts_available() -> bool:
    """Whether matplotlib (the ``plot`` extra) is installed to draw charts."""
    try:
        require_matplotlib()
    except ImportError:
        return False
    return True


def stacked_bars(ax: Any, x: Any, table: pd.DataFrame, lab: Labels) -> None:
    """One bar per row of ``table`` at ``x``, stacked by its channel columns in their colours."""
    bottom = np.zeros(len(table))
    for channel in table.columns:
        heights = table[channel].to_numpy(dtype=float)
        ax.bar(x, heights, bottom=bottom, label=lab.channel(channel),
               color=CHANNEL_COLOURS.get(channel))  # fmt: skip
        bottom += heights


def _axes(ax: Any, figsize: tuple[float, float] = (7.0, 4.0)) -> Any:
    require_matplotlib()
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def _installed_fonts() -> list[str]:
    """The fonts of :data:`CJK_FONTS` matplotlib can find here, then DejaVu Sans (its own)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in names and f != "DejaVu Sans"] + ["DejaVu Sans"]


def _css_fonts() -> str:
    """:data:`CJK_FONTS` as a CSS ``font-family`` value."""
    return ", ".join(f if f == "sans-serif" else f"'{f}'" for f in CJK_FONTS)


def _finish(ax: Any, lab: Labels) -> Any:
    """Set every text of ``ax`` in the installed CJK fonts (Chinese labels); return ``ax``."""
    if lab.zh:
        from matplotlib.text import Text

        fonts = _installed_fonts()
        for text in ax.findobj(Text):
            text.set_fontfamily(fonts)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontfamily(fonts)
    return ax


def _ticks(ax: Any, names: Sequence[str]) -> None:
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=45 if len(names) > 10 else 0, ha="right")


def svg_chart(
    draw: Callable[[Any], Any], lang: str = "en", size: tuple[float, float] = (7.5, 4.0)
) -> str:
    """Draw on a fresh (pyplot-free) figure and return it as an ``<svg>`` element.

    The text stays text (``svg.fonttype: none``) and asks for the fonts of
    :data:`CJK_FONTS`, so the browser draws it with whatever Chinese font the reader
    has. matplotlib still measures the text to lay the chart out, with the first of
    those fonts it finds here; where it finds none its "glyph missing" warning
    concerns only that measure, not what the reader sees, and is silenced. The XML
    prologue is dropped and the size given by the viewBox.
    """
    import matplotlib
    from matplotlib.figure import Figure

    rc: dict[Any, Any] = {"svg.fonttype": "none", "font.family": "sans-serif",
                          "font.sans-serif": _installed_fonts(),
                          "svg.hashsalt": "npl-disposal"}  # fmt: skip
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        fig = Figure(figsize=size, dpi=100)
        draw(fig.subplots())
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"font-family: [^;\"]*", "font-family: " + _css_fonts(), text)
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)


def channel_mix_by_branch(result: AllocationResult, ax: Any = None, lang: str = "en") -> Any:
    """Stacked bars: balance (CNY m / 万元) each branch sends to each channel."""
    from npl_disposal.reporting.tables import disposal_summary

    lab = labels(lang)
    ax = _axes(ax)
    summary = disposal_summary(result)
    channels = list(result.problem.channels)
    branches = list(result.problem.branches)
    table = (
        summary.groupby(["branch", "channel"], observed=True)["balance"].sum().unstack("channel")
        if len(summary)
        else pd.DataFrame()
    )
    table = table.reindex(index=branches, columns=channels).fillna(0.0) / lab.money_scale
    x = np.arange(len(branches))
    stacked_bars(ax, x, table[channels], lab)
    _ticks(ax, branches)
    ax.set_ylabel(lab.t("chart_mix_y"))
    ax.set_title(lab.t("chart_mix"))
    ax.legend(fontsize="small", frameon=False)
    return _finish(ax, lab)


def tolerance_before_after(result: AllocationResult, ax: Any = None, lang: str = "en") -> Any:
    """Inclusive small/micro NPL ratio per branch before and after the plan, with the threshold."""
    lab = labels(lang)
    ax = _axes(ax)
    _before_after(ax, result.branch_figures(), lab)
    ax.set_title(lab.t("chart_tol"))
    return _finish(ax, lab)


def _before_after(ax: Any, figures: pd.DataFrame, lab: Labels) -> None:
    """Bars of ``ratio_before`` and ``ratio_after`` per branch, and the threshold."""
    branches = figures["branch"].astype(str).tolist()
    x = np.arange(len(branches))
    width = 0.4
    ax.bar(x - width / 2, figures["ratio_before"] * 100, width, label=lab.t("before"),
           color="#bbbbbb")  # fmt: skip
    ax.bar(x + width / 2, figures["ratio_after"] * 100, width, label=lab.t("after"),
           color="#1f77b4")  # fmt: skip
    threshold = figures["threshold"].to_numpy(dtype=float)
    if len(threshold) and np.isfinite(threshold).any():
        ax.axhline(float(np.nanmax(threshold)) * 100, color="#d62728", linestyle="--",
                   label=lab.t("threshold"))  # fmt: skip
    _ticks(ax, branches)
    ax.set_ylabel(lab.t("chart_tol_y"))
    ax.legend(fontsize="small", frameon=False)


def recovery_by_age(
    assumptions: ValuationAssumptions | None = None,
    ax: Any = None,
    max_age: float = 120.0,
    lang: str = "en",
) -> Any:
    """Unsecured recovery rate against NPL age (months) per class, from the valuation curves."""
    from npl_disposal.io.schema import NPL_CLASSES
    from npl_disposal.valuation import ValuationAssumptions

    lab = labels(lang)
    ax = _axes(ax)
    assumptions = assumptions if assumptions is not None else ValuationAssumptions()
    ages = np.linspace(0.0, max_age, 121)
    for i, cls in enumerate(NPL_CLASSES):
        colour = f"C{i}"
        name = lab.classification(cls)
        curve = assumptions.recovery_curves.get(cls)
        if curve is not None:
            ax.plot(ages, curve.rate(ages) * 100, color=colour,
                    label=f"{name} ({lab.t('workout')})")  # fmt: skip
        bulk = assumptions.bulk_price_curves.get(cls)
        if bulk is not None:
            ax.plot(ages, bulk.rate(ages) * 100, color=colour, linestyle=":",
                    label=f"{name} ({lab.t('bulk_price')})")  # fmt: skip
    ax.set_xlabel(lab.t("chart_rec_x"))
    ax.set_ylabel(lab.t("chart_rec_y"))
    ax.set_title(lab.t("chart_rec"))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", frameon=False)
    return _finish(ax, lab)


def shadow_prices(priced: AllocationResult, ax: Any = None, lang: str = "en") -> Any:
    """Horizontal bars: shadow price of each binding budget (CNY per CNY or per loan)."""
    lab = labels(lang)
    ax = _axes(ax)
    binding = priced.binding()
    binding = binding[np.isfinite(binding["shadow_price"].to_numpy(dtype=float))]
    labels_ = [
        f"{lab.constraint(n, r, b)} ({lab.t('per_cny' if u == 'CNY' else 'per_loan')})"
        for n, r, b, u in zip(binding["name"], binding["rule"], binding["branch"],
                              binding["unit"], strict=True)
    ]  # fmt: skip
    values = binding["shadow_price"].to_numpy(dtype=float)
    y = np.arange(len(labels_))
    ax.barh(y, values, color="#1f77b4")
    for yi, v in zip(y, values, strict=True):
        if v > 0:
            ax.annotate(f" {v:,.4g}", (v, yi), va="center", fontsize="small")
    ax.set_yticks(y)
    ax.set_yticklabels(labels_)
    positive = values[values > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax.set_xscale("log")
    ax.set_xlabel(lab.t("chart_prices_x"))
    ax.set_title(lab.t("chart_prices"))
    if not len(labels_):
        ax.text(0.5, 0.5, lab.t("no_binding"), ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    return _finish(ax, lab)


def schedule_by_period(result: AllocationResult, ax: Any = None, lang: str = "en") -> Any:
    """A schedule's stacked bars: balance at disposal per period, by channel (kept: last bar)."""
    lab = labels(lang)
    ax = _axes(ax)
    mix = result.channel_mix()
    grid = result.problem.schedule
    last = grid.horizon.periods if grid is not None else 1
    periods = list(range(1, last + 2))
    table = mix.pivot_table(index="period", columns="channel", values="balance",
                            aggfunc="sum", fill_value=0.0)  # fmt: skip
    names = grid.column_channel if grid is not None else result.problem.channels
    channels = [c for c in dict.fromkeys(str(c) for c in names) if c in table.columns]
    table = table.reindex(index=periods, columns=channels).fillna(0.0) / lab.money_scale
    x = np.arange(len(periods))
    stacked_bars(ax, x, table[channels], lab)
    _ticks(ax, [lab.period(t, last) for t in periods])
    ax.set_ylabel(lab.t("chart_sched_y"))
    ax.set_title(lab.t("chart_sched"))
    ax.legend(fontsize="small", frameon=False)
    return _finish(ax, lab)


def tolerance_path(result: AllocationResult, ax: Any = None, lang: str = "en") -> Any:
    """A schedule's inclusive NPL ratio per branch at each checked period, and the threshold.

    With one checked period (the tolerance held at year end of a one-year horizon), the
    ratio before and after disposal per branch instead, as bars.
    """
    lab = labels(lang)
    ax = _axes(ax)
    figures = result.branch_figures()
    if "period" not in figures:  # a one-period plan: one point per branch
        figures = figures.assign(period=1)
    if figures["period"].nunique() == 1:  # one checked period: before and after, per branch
        grid = result.problem.schedule
        last = grid.horizon.periods if grid is not None else 1
        _before_after(ax, figures, lab)
        when = lab.period(figures["period"].iloc[0], last)
        ax.set_title(f"{lab.t('chart_path')}（{when}）" if lab.zh else
                     f"{lab.t('chart_path')} ({when})")  # fmt: skip
        return _finish(ax, lab)
    for branch, rows in figures.groupby("branch", sort=True):
        rows = rows.sort_values("period")
        ax.plot(rows["period"], rows["ratio_after"] * 100, marker="o", label=str(branch))
    threshold = figures["threshold"].to_numpy(dtype=float)
    if len(threshold) and np.isfinite(threshold).any():
        ax.axhline(float(np.nanmax(threshold)) * 100, color="#d62728", linestyle="--",
                   label=lab.t("threshold"))  # fmt: skip
    periods = sorted(int(t) for t in figures["period"].unique())
    ax.set_xticks(periods)
    ax.set_xticklabels([lab.period(t, max(periods)) for t in periods])
    ax.set_xlabel(lab.t("chart_path_x"))
    ax.set_ylabel(lab.t("chart_path_y"))
    ax.set_title(lab.t("chart_path"))
    ax.legend(fontsize="x-small", frameon=False, ncol=2)
    return _finish(ax, lab)


def what_if_curve(
    quotas: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, ax: Any = None
) -> Any:
    """Plan value (CNY m) against the write-off quota (CNY m); both given in CNY yuan."""
    ax = _axes(ax)
    q = np.asarray(quotas, dtype=float)
    v = np.asarray(values, dtype=float)
    if q.shape != v.shape:
        raise ValueError(f"quotas and values differ in length ({q.size} vs {v.size})")
    order = np.argsort(q)
    ax.plot(q[order] / 1e6, v[order] / 1e6, marker="o")
    ax.set_xlabel("write-off quota (CNY m)")
    ax.set_ylabel("plan value (CNY m)")
    ax.set_title("What if: value against the write-off quota")
    return ax

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

import contextlib
import functools
import io
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.reporting.labels import Labels, labels, text_columns

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult
    from npl_disposal.valuation import ValuationAssumptions

__all__ = [
    "CJK_FONTS",
    "PLOT_HINT",
    "channel_mix_by_branch",
    "cjk_font_installed",
    "money_axis",
    "png_chart",
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


#: Parts of the file names of the CJK fonts in :data:`CJK_FONTS` (Noto's ``.ttc`` files...).
_CJK_FILES = ("CJK", "SourceHan", "wqy", "WenQuanYi", "msyh", "simhei", "PingFang", "STHeiti",
              "Hiragino", "Arial Unicode")  # fmt: skip


@functools.lru_cache(maxsize=1)
def _installed_fonts() -> list[str]:
    """The fonts of :data:`CJK_FONTS` matplotlib can find here, then DejaVu Sans (its own).

    matplotlib lists the system's fonts once, in a cache it keeps; a Chinese font
    installed after that is not in it. If none of :data:`CJK_FONTS` is listed, the
    system's font files that look like one are added to matplotlib's list for this run.
    """
    from matplotlib import font_manager

    found = _cjk_listed(font_manager)
    if not found:
        for path in font_manager.findSystemFonts():
            if any(part.lower() in Path(path).name.lower() for part in _CJK_FILES):
                with contextlib.suppress(Exception):  # a font matplotlib cannot read
                    font_manager.fontManager.addfont(path)
        found = _cjk_listed(font_manager)
    return [*found, "DejaVu Sans"]


def _cjk_listed(font_manager: Any) -> list[str]:
    names = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in names and f != "DejaVu Sans"]


def cjk_font_installed() -> bool:
    """Whether a font that draws Chinese is installed where matplotlib can use it."""
    return len(_installed_fonts()) > 1


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


#: A column of text (half a Chinese character) in ems of its font, a little generous.
_COLUMN_EM = 0.55


def _text_points(text: str, size: float) -> float:
    """About how wide ``text`` is set at ``size`` (points; a Chinese character is 2 columns)."""
    return text_columns(text) * _COLUMN_EM * size


def _axes_points(ax: Any) -> float:
    """The width of ``ax`` in points (before the layout widens it: a lower bound)."""
    return float(ax.figure.get_figwidth() * 72.0 * ax.get_position().width)


def _tick_size(ax: Any) -> float:
    """The size of the x tick labels of ``ax``, in points."""
    import matplotlib
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=matplotlib.rcParams["xtick.labelsize"]).get_size_in_points())


def _rotation(names: Sequence[str], slot: float, size: float) -> int:
    """Degrees to turn tick labels by so they do not overlap (0: they fit side by side).

    ``slot`` is the room per label (points). Turned labels are parallel: they need the
    slot times the sine of the angle to be more than a line of text.
    """
    widest = max((_text_points(str(n), size) for n in names), default=0.0)
    if widest + size * 0.5 <= slot:
        return 0
    return next((a for a in (30, 45, 60) if slot * math.sin(math.radians(a)) >= 1.4 * size), 90)


def _ticks(ax: Any, names: Sequence[str]) -> None:
    """Category labels under the bars: centred, or turned (anchored at the tick) when too wide."""
    ax.set_xticks(np.arange(len(names)))
    size = _tick_size(ax)
    angle = _rotation(names, _axes_points(ax) / max(len(names), 1), size)
    if angle:
        ax.set_xticklabels(names, rotation=angle, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticklabels(names, ha="center")


def _tick_decimals(locs: Sequence[float] | np.ndarray) -> int:
    """The fewest decimals (up to 6) that show every tick ``locs`` exactly."""
    values = np.asarray(locs, dtype=float)
    values = values[np.isfinite(values)]
    return next((d for d in range(7) if np.allclose(values, np.round(values, d), rtol=0,
                                                     atol=1e-9 * (1 + np.abs(values).max()))),
                6)  # fmt: skip


def grouped_ticks(divisor: float = 1.0) -> Any:
    """A tick formatter: the value over ``divisor``, thousands separated (``100,000``).

    The decimals are the fewest that tell the ticks apart exactly (``0.5``, ``1.0``).
    """
    from matplotlib.ticker import Formatter

    class Grouped(Formatter):
        def __call__(self, x: float, pos: Any = None) -> str:
            return self.format_ticks([x])[0]

        def format_ticks(self, values: Any) -> list[str]:
            shown = np.asarray(values, dtype=float) / divisor
            decimals = _tick_decimals(shown) if shown.size else 0
            return [f"{v + 0.0:,.{decimals}f}" for v in shown]

    return Grouped()


def money_axis(ax: Any, lab: Labels, which: str, key: str, **fields: Any) -> None:
    """Label the money axis ``which`` (``"x"``, ``"y"``) with sentence ``key`` in its unit.

    The data are drawn in ``lab.money_unit`` (CNY m, 万元); a Chinese axis that reaches
    1 亿元 is shown in 亿元. Ticks are thousands separated. ``key`` has a ``{unit}`` field.
    """
    axis = ax.xaxis if which == "x" else ax.yaxis
    reach = float(np.max(np.abs(axis.get_view_interval())))
    per_total = lab.total_scale / lab.money_scale
    divisor, unit = (per_total, lab.total_unit) if lab.zh and reach >= per_total else (
        1.0, lab.money_unit)  # fmt: skip
    axis.set_major_formatter(grouped_ticks(divisor))
    axis.set_label_text(lab.t(key, unit=unit, **fields))


def png_chart(
    draw: Callable[[Any, str], Any],
    path: str | os.PathLike[str],
    lang: str = "en",
    size: tuple[float, float] = (7.0, 4.5),
) -> str:
    """Draw ``draw(ax, lang)`` on a fresh (pyplot-free) figure, saved as PNG at ``path``.

    A picture cannot ask the reader's fonts for its Chinese text, as an SVG chart does:
    it is drawn in the first font of :data:`CJK_FONTS` installed here. Where there is
    none, the chart is drawn in English, not with empty boxes. Returns the language drawn.
    """
    from matplotlib.figure import Figure

    used = "zh" if lang == "zh" and cjk_font_installed() else "en"
    fig = Figure(figsize=size, dpi=100)
    with _fonts():
        draw(fig.subplots(), used)
        fig.tight_layout()
        fig.savefig(path, format="png")
    return used


def _fonts() -> Any:
    """Matplotlib's settings for the installed CJK fonts (a context manager)."""
    import matplotlib

    return matplotlib.rc_context({"font.family": "sans-serif",
                                  "font.sans-serif": _installed_fonts()})  # fmt: skip


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

    svg: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "npl-disposal"}
    with _fonts(), matplotlib.rc_context(svg), warnings.catch_warnings():
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
    money_axis(ax, lab, "y", "chart_mix_y")
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
    """Horizontal bars: shadow price of each binding budget (CNY per CNY or per loan).

    Each bar is labelled with its price (:func:`~.tables.price_text`; a zero price ``0``),
    and the axis leaves room for the longest label. Prices over more than two orders of
    magnitude are drawn on a log axis.
    """
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
    ax.set_yticks(y)
    ax.set_yticklabels(labels_)
    ax.set_xlabel(lab.t("chart_prices_x"))
    ax.set_title(lab.t("chart_prices"))
    if not len(labels_):
        ax.text(0.5, 0.5, lab.t("no_binding"), ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    else:
        _price_labels(ax, y, values)
    return _finish(ax, lab)


def _price_labels(ax: Any, y: np.ndarray, values: np.ndarray) -> None:
    """Write each bar's price at its end, the axis widened to hold the longest."""
    from npl_disposal.reporting.tables import PRICE_DECIMALS, price_text

    texts = [price_text(v) for v in values]
    values = np.round(values, PRICE_DECIMALS)  # a price shown as 0 is drawn as 0
    size = _tick_size(ax) * 0.85
    room = max(_text_points(t, size) for t in texts) + size  # the widest label and a gap
    share = min(0.45, room / (_axes_points(ax) * 0.6))  # the bars' side of the figure
    positive = values[values > 0]
    top = float(positive.max()) if positive.size else 1.0
    if positive.size and top / positive.min() > 100:
        ax.set_xscale("log")
        low = float(positive.min()) / 2
        ax.set_xlim(low, top * (top / low) ** (share / (1 - share)))
        _log_ticks(ax.xaxis)
    else:
        ax.set_xlim(0.0, top / (1 - share))
        ax.xaxis.set_major_formatter(grouped_ticks())
    ends = ax.get_yaxis_transform()  # x in axes fractions, y in data
    for yi, v, text in zip(y, values, texts, strict=True):
        if v > 0:
            ax.annotate(text, (v, yi), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=size)  # fmt: skip
        else:
            ax.annotate(text, (0.0, yi), xycoords=ends, xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=size)  # fmt: skip


def _log_ticks(axis: Any) -> None:
    """Label a log axis ``0.01``, ``1``, ``1,000`` (not powers of ten), at most 6 labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from npl_disposal.reporting.tables import price_text

    axis.set_major_locator(LogLocator(base=10, numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: price_text(value)))
    axis.set_minor_formatter(NullFormatter())


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
    money_axis(ax, lab, "y", "chart_sched_y")
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
    ax.legend(fontsize="x-small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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
    ax.xaxis.set_major_formatter(grouped_ticks())
    ax.yaxis.set_major_formatter(grouped_ticks())
    ax.set_title("What if: value against the write-off quota")
    return ax

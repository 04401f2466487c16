"""Recovery risk in the report: the plan's value across scenarios and the risk frontier.

:func:`value_distribution` and :func:`frontier_chart` draw (matplotlib, the ``plot``
extra); :func:`risk_html` is the report's section, self-contained HTML: the plan's
expected value and tail mean, the scenarios worst first, the distribution of its
value and, at several aversions, the frontier and how the channel mix shifts.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from npl_disposal.reporting.plots import CHANNEL_COLOURS, require_matplotlib

if TYPE_CHECKING:
    from npl_disposal.model.risk_verify import RiskFigures
    from npl_disposal.solvers.frontier import RiskFrontier
    from npl_disposal.solvers.result import AllocationResult

__all__ = ["REPORT_AVERSIONS", "frontier_chart", "mix_chart", "risk_html", "value_distribution"]

#: The aversions the report's frontier solves (with the plan's own), fractional mode.
REPORT_AVERSIONS = (0.0, 0.5, 1.0, 2.0)
_WORST_SHOWN = 10


def _axes(ax: Any) -> Any:
    require_matplotlib()
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(7.0, 4.0)).subplots()


def value_distribution(risk: RiskFigures, ax: Any = None) -> Any:
    """Histogram of the plan's value over the scenarios (probability-weighted, CNY m)."""
    ax = _axes(ax)
    v = risk.values.to_numpy() / 1e6
    ax.hist(v, bins=min(40, max(5, v.size // 5)), weights=risk.probability.to_numpy(),
            color="#1f77b4", alpha=0.75)  # fmt: skip
    ax.axvline(risk.expected_value / 1e6, color="#2ca02c", label="expected value")
    ax.axvline(risk.tail_mean / 1e6, color="#d62728",
               label=f"tail mean (worst {1 - risk.alpha:.0%})")  # fmt: skip
    ax.set_xlabel("value of the plan in a scenario (CNY m)")
    ax.set_ylabel("probability")
    ax.legend()
    return ax


def frontier_chart(frontier: RiskFrontier, ax: Any = None) -> Any:
    """Expected value against tail mean of the optimal plan at each aversion (CNY m)."""
    ax = _axes(ax)
    t = frontier.table
    ax.plot(t["tail_mean"] / 1e6, t["expected_value"] / 1e6, "o-", color="#1f77b4")
    for row in t.itertuples(index=False):
        ax.annotate(f"λ={row.aversion:g}", (row.tail_mean / 1e6, row.expected_value / 1e6),
                    textcoords="offset points", xytext=(5, 5))  # fmt: skip
    ax.set_xlabel(f"tail mean at α={t['alpha'].iloc[0]:g} (CNY m)")
    ax.set_ylabel("expected value (CNY m)")
    return ax


def mix_chart(frontier: RiskFrontier, ax: Any = None) -> Any:
    """Each channel's share of the balance at each aversion (stacked bars)."""
    ax = _axes(ax)
    mix = frontier.mix
    bottom = np.zeros(len(mix))
    labels = [f"λ={a:g}" for a in mix.index]
    for channel in mix.columns:
        share = mix[channel].to_numpy() * 100
        ax.bar(labels, share, bottom=bottom, label=channel, color=CHANNEL_COLOURS.get(channel))
        bottom += share
    ax.set_ylabel("share of the balance (%)")
    ax.legend(fontsize="small")
    return ax


def _table(frame: pd.DataFrame, money: Sequence[str], caption: str) -> str:
    shown = frame.copy()
    for col in money:
        shown[col] = [f"{v / 1e6:,.2f}" for v in shown[col]]
    shown = shown.rename(columns={c: f"{c} (CNY m)" for c in money})
    body = shown.to_html(index=False, border=0, escape=True, float_format=lambda x: f"{x:,.4f}")
    return f"<p><b>{html.escape(caption)}</b></p>{body}"


def _chart(draw: Callable[[Any], Any], alt: str) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.0), dpi=100)
    try:
        draw(fig.subplots())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    except Exception as exc:  # a chart must never cost the report its tables
        return f"<p class=\"note\">{html.escape(f'chart {alt!r} could not be drawn: {exc}')}</p>"
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def report_frontier(result: AllocationResult) -> RiskFrontier | None:
    """The frontier at :data:`REPORT_AVERSIONS` and the plan's own aversion (fractional)."""
    from npl_disposal.solvers.frontier import risk_frontier

    p = result.problem
    if p.risk is None or result.risk is None:
        return None
    aversions = sorted({*REPORT_AVERSIONS, result.risk.aversion})
    return risk_frontier(p.portfolio, p.policy, p.options, p.risk.scenarios, aversions,
                         mode="fractional")  # fmt: skip


def risk_html(result: AllocationResult, charts: bool,
              frontier: RiskFrontier | None = None) -> list[str]:  # fmt: skip
    """The report's section on recovery risk (nothing for a plan solved without scenarios)."""
    risk = result.risk
    if risk is None:
        return []
    frame = risk.frame()
    parts = [
        "<h2>Recovery risk</h2>",
        f"<p>{html.escape(risk.summary())}</p>",
        _table(frame.head(_WORST_SHOWN), ["value"],
               f"The {min(_WORST_SHOWN, len(frame))} worst scenarios"),
    ]  # fmt: skip
    if charts:
        parts.append(_chart(lambda ax: value_distribution(risk, ax), "value distribution"))
    frontier = frontier if frontier is not None else report_frontier(result)
    if frontier is not None:
        parts.append("<p>The optimal plan at several aversions λ (fractional): expected value "
                     "given up for a better tail, and the channel mix that buys it.</p>")
        t = frontier.table[["aversion", "expected_value", "tail_mean"]]
        parts.append(_table(t, ["expected_value", "tail_mean"], "Risk frontier"))
        mix = (frontier.mix * 100).reset_index()
        parts.append(_table(mix, [], "Channel mix by aversion (% of balance)"))
        if charts:
            parts.append(_chart(lambda ax: frontier_chart(frontier, ax), "risk frontier"))
            parts.append(_chart(lambda ax: mix_chart(frontier, ax), "channel mix by aversion"))
    return parts

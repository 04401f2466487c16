"""Recovery risk in the report: the plan's value across scenarios and the risk frontier.

:func:`value_distribution`, :func:`frontier_chart` and :func:`mix_chart` draw
(matplotlib, the ``plot`` extra) with the labels of ``lang`` and money in its unit (CNY
millions; 万元 in Chinese); :func:`report_frontier` solves the frontier the report shows.
The report's section itself is built with the others (:mod:`npl_disposal.reporting.html`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from npl_disposal.reporting.labels import labels
from npl_disposal.reporting.plots import money_axis, require_matplotlib, stacked_bars

if TYPE_CHECKING:
    from npl_disposal.model.risk_verify import RiskFigures
    from npl_disposal.solvers.frontier import RiskFrontier
    from npl_disposal.solvers.result import AllocationResult

__all__ = ["REPORT_AVERSIONS", "frontier_chart", "mix_chart", "report_frontier",
           "value_distribution"]  # fmt: skip

#: The aversions the report's frontier solves (with the plan's own), fractional mode.
REPORT_AVERSIONS = (0.0, 0.5, 1.0, 2.0)
#: Scenarios the report lists, worst first.
WORST_SHOWN = 10


def _axes(ax: Any) -> Any:
    require_matplotlib()
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(7.0, 4.0)).subplots()


def value_distribution(risk: RiskFigures, ax: Any = None, lang: str = "en") -> Any:
    """Histogram of the plan's value over the scenarios (probability-weighted)."""
    ax, lab = _axes(ax), labels(lang)
    scale = lab.money_scale
    v = risk.values.to_numpy() / scale
    ax.hist(v, bins=min(40, max(5, v.size // 5)), weights=risk.probability.to_numpy(),
            color="#1f77b4", alpha=0.75)  # fmt: skip
    ax.axvline(risk.expected_value / scale, color="#2ca02c", label=lab.t("chart_expected"))
    ax.axvline(risk.tail_mean / scale, color="#d62728",
               label=lab.t("chart_tail", worst=f"{1 - risk.alpha:.0%}"))  # fmt: skip
    money_axis(ax, lab, "x", "chart_risk_values")
    ax.set_ylabel(lab.t("chart_probability"))
    ax.legend()
    return ax


def frontier_chart(frontier: RiskFrontier, ax: Any = None, lang: str = "en") -> Any:
    """Expected value against tail mean of the optimal plan at each aversion."""
    ax, lab = _axes(ax), labels(lang)
    t, scale = frontier.table, lab.money_scale
    ax.plot(t["tail_mean"] / scale, t["expected_value"] / scale, "o-", color="#1f77b4")
    for row in t.itertuples(index=False):
        ax.annotate(f"λ={row.aversion:g}", (row.tail_mean / scale, row.expected_value / scale),
                    textcoords="offset points", xytext=(5, 5))  # fmt: skip
    ax.margins(x=0.15, y=0.15)  # room for the λ labels
    money_axis(ax, lab, "x", "chart_tail_axis", alpha=f"{t['alpha'].iloc[0]:g}")
    money_axis(ax, lab, "y", "chart_expected_axis")
    return ax


def mix_chart(frontier: RiskFrontier, ax: Any = None, lang: str = "en") -> Any:
    """Each channel's share of the balance at each aversion (stacked bars)."""
    ax, lab = _axes(ax), labels(lang)
    mix = frontier.mix
    stacked_bars(ax, [f"λ={a:g}" for a in mix.index], mix * 100, lab)
    ax.set_ylabel(lab.t("chart_share"))
    # Every bar reaches 100%: the legend goes beside the bars, not over them.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def report_frontier(result: AllocationResult) -> RiskFrontier | None:
    """The frontier at :data:`REPORT_AVERSIONS` and the plan's own aversion (fractional)."""
    from npl_disposal.solvers.frontier import risk_frontier

    p = result.problem
    if p.risk is None or result.risk is None:
        return None
    aversions = sorted({*REPORT_AVERSIONS, result.risk.aversion})
    return risk_frontier(p.portfolio, p.policy, p.options, p.risk.scenarios, aversions,
                         mode="fractional")  # fmt: skip

"""Charts of a disposal plan (optional: needs matplotlib, ``pip install 'npl-disposal[plot]'``).

>>> from npl_disposal.reporting import plots
>>> ax = plots.tolerance_before_after(result)  # doctest: +SKIP

matplotlib is imported inside each function, so this module imports without it;
calling a function without matplotlib raises :class:`ImportError` with the pip hint.
Every function draws on ``ax`` when given (else on a new figure) and returns the
Axes. Money is shown in CNY millions, ratios in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from npl_disposal.solvers.result import AllocationResult
    from npl_disposal.valuation import ValuationAssumptions

__all__ = [
    "PLOT_HINT",
    "channel_mix_by_branch",
    "recovery_by_age",
    "require_matplotlib",
    "shadow_prices",
    "tolerance_before_after",
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


def require_matplotlib() -> Any:
    """Import and return :mod:`matplotlib`; raise ImportError with the pip hint if absent."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as exc:
        raise ImportError(PLOT_HINT) from exc
    return matplotlib


def _axes(ax: Any, figsize: tuple[float, float] = (7.0, 4.0)) -> Any:
    require_matplotlib()
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def channel_mix_by_branch(result: AllocationResult, ax: Any = None) -> Any:
    """Stacked bars: balance (CNY m) each branch sends to each channel."""
    from npl_disposal.reporting.tables import disposal_summary

    ax = _axes(ax)
    summary = disposal_summary(result)
    channels = list(result.problem.channels)
    branches = list(result.problem.branches)
    table = (
        summary.groupby(["branch", "channel"], observed=True)["balance"].sum().unstack("channel")
        if len(summary)
        else pd.DataFrame()
    )
    table = table.reindex(index=branches, columns=channels).fillna(0.0) / 1e6
    x = np.arange(len(branches))
    bottom = np.zeros(len(branches))
    for channel in channels:
        heights = table[channel].to_numpy(dtype=float)
        ax.bar(x, heights, bottom=bottom, label=channel, color=CHANNEL_COLOURS.get(channel))
        bottom += heights
    ax.set_xticks(x)
    ax.set_xticklabels(branches, rotation=45 if len(branches) > 10 else 0, ha="right")
    ax.set_ylabel("balance (CNY m)")
    ax.set_title("Channel mix by branch")
    ax.legend(fontsize="small", frameon=False)
    return ax


def tolerance_before_after(result: AllocationResult, ax: Any = None) -> Any:
    """Inclusive small/micro NPL ratio per branch before and after the plan, with the threshold."""
    ax = _axes(ax)
    figures = result.branch_figures()
    branches = figures["branch"].astype(str).tolist()
    x = np.arange(len(branches))
    width = 0.4
    ax.bar(x - width / 2, figures["ratio_before"] * 100, width, label="before", color="#bbbbbb")
    ax.bar(x + width / 2, figures["ratio_after"] * 100, width, label="after", color="#1f77b4")
    threshold = figures["threshold"].to_numpy(dtype=float)
    if len(threshold) and np.isfinite(threshold).any():
        ax.axhline(float(np.nanmax(threshold)) * 100, color="#d62728", linestyle="--",
                   label="threshold")  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels(branches, rotation=45 if len(branches) > 10 else 0, ha="right")
    ax.set_ylabel("inclusive NPL ratio (%)")
    ax.set_title("Tolerance: NPL ratio before and after the plan")
    ax.legend(fontsize="small", frameon=False)
    return ax


def recovery_by_age(
    assumptions: ValuationAssumptions | None = None,
    ax: Any = None,
    max_age: float = 120.0,
) -> Any:
    """Unsecured recovery rate against NPL age (months) per class, from the valuation curves."""
    from npl_disposal.io.schema import NPL_CLASSES
    from npl_disposal.valuation import ValuationAssumptions

    ax = _axes(ax)
    assumptions = assumptions if assumptions is not None else ValuationAssumptions()
    ages = np.linspace(0.0, max_age, 121)
    for i, cls in enumerate(NPL_CLASSES):
        colour = f"C{i}"
        curve = assumptions.recovery_curves.get(cls)
        if curve is not None:
            ax.plot(ages, curve.rate(ages) * 100, color=colour, label=f"{cls} (workout)")
        bulk = assumptions.bulk_price_curves.get(cls)
        if bulk is not None:
            ax.plot(ages, bulk.rate(ages) * 100, color=colour, linestyle=":",
                    label=f"{cls} (bulk price)")  # fmt: skip
    ax.set_xlabel("NPL age (months)")
    ax.set_ylabel("unsecured recovery (% of claim)")
    ax.set_title("Recovery against NPL age")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", frameon=False)
    return ax


def shadow_prices(priced: AllocationResult, ax: Any = None) -> Any:
    """Horizontal bars: shadow price of each binding budget (CNY per CNY or per loan)."""
    ax = _axes(ax)
    binding = priced.binding()
    binding = binding[np.isfinite(binding["shadow_price"].to_numpy(dtype=float))]
    labels = [f"{n} (CNY/{'CNY' if u == 'CNY' else 'loan'})"
              for n, u in zip(binding["name"], binding["unit"], strict=True)]  # fmt: skip
    values = binding["shadow_price"].to_numpy(dtype=float)
    y = np.arange(len(labels))
    ax.barh(y, values, color="#1f77b4")
    for yi, v in zip(y, values, strict=True):
        if v > 0:
            ax.annotate(f" {v:,.4g}", (v, yi), va="center", fontsize="small")
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    positive = values[values > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax.set_xscale("log")
    ax.set_xlabel("shadow price (CNY of value per unit of budget)")
    ax.set_title("Binding budgets: shadow prices (LP relaxation)")
    if not len(labels):
        ax.text(0.5, 0.5, "no binding budget", ha="center", va="center", transform=ax.transAxes)
    return ax


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

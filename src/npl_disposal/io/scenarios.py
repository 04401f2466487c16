"""Recovery scenarios: ``scenarios.csv`` read, validated and held as factors.

A scenario multiplies the value of every option of a channel and a segment of loans
by a factor (``scenario, probability, channel, segment, factor``); a (scenario,
channel, segment) not listed keeps factor 1. The segment of a loan is the text of its
portfolio column named by ``[risk] segment_by`` (default ``classification``).
:func:`read_scenarios` names every bad row at once; :class:`Scenarios` gives the
factors on a problem's channels and segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import CHANNEL_ALIASES, SCENARIO_COLUMNS
from npl_disposal.io.tables import (
    TableSource,
    check_headers,
    clean_columns,
    read_table,
    source_name,
)

__all__ = ["PROBABILITY_TOL", "Scenarios", "read_scenarios", "segment_codes"]

#: How far the scenarios' probabilities may sum away from 1.
PROBABILITY_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class Scenarios:
    """Validated scenarios: names in order of appearance, probabilities, the factor table.

    ``table`` has the columns of ``scenarios.csv`` with text keys; ``segment_by``
    is the portfolio column the segments are values of.
    """

    table: pd.DataFrame
    names: tuple[str, ...]
    probability: np.ndarray
    segment_by: str = "classification"

    @property
    def count(self) -> int:
        """Number of scenarios."""
        return len(self.names)

    def factors(self, channels: Sequence[str], segments: Sequence[str]) -> np.ndarray:
        """Factors of shape ``(scenarios, channels, segments)``; 1 where not listed."""
        out = np.ones((self.count, len(channels), len(segments)))
        t = self.table
        s = pd.Index(self.names).get_indexer(t["scenario"])
        m = pd.Index(list(channels)).get_indexer(t["channel"])
        g = pd.Index(list(segments)).get_indexer(t["segment"])
        keep = (m >= 0) & (g >= 0)
        out[s[keep], m[keep], g[keep]] = t["factor"].to_numpy(dtype=float)[keep]
        return out

    def summary(self) -> str:
        """How many scenarios, over which channels and segments."""
        t = self.table
        return (f"{self.count:,} scenarios on {t['channel'].nunique()} channels x "
                f"{t['segment'].nunique()} segments ({self.segment_by}); factors "
                f"{t['factor'].min():.2f} to {t['factor'].max():.2f}")  # fmt: skip


def segment_codes(loans: pd.DataFrame, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each loan's segment (a code) and the segments' names: the column's values as text.

    Values compare as text (``1`` and ``"1"`` are one segment); a missing value is
    the segment ``""``. Works through the column's distinct values, not loan by loan.
    """
    col = loans[column]
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    codes = col.cat.codes.to_numpy().astype(np.int64)
    missing = codes < 0
    names = [str(c) for c in col.cat.categories] + ([""] if missing.any() else [])
    labels, inverse = np.unique(np.array(names, dtype=str), return_inverse=True)
    codes[missing] = len(names) - 1
    return inverse[codes].astype(np.int64), tuple(str(x) for x in labels)


def read_scenarios(
    source: TableSource | Scenarios,
    portfolio: Portfolio,
    channels: Sequence[str],
    segment_by: str = "classification",
) -> Scenarios:
    """Read and validate a scenarios table against the portfolio and the channels offered.

    Every problem (a probability outside [0, 1] or differing within a scenario,
    probabilities not summing to 1, a negative factor, an unknown channel or
    segment, a (scenario, channel, segment) listed twice, no ``segment_by`` column
    in the portfolio) is named in one :class:`~npl_disposal.PortfolioValidationError`.
    """
    if isinstance(source, Scenarios):
        source = source.table
    name = source_name(source, "scenarios")
    frame = read_table(source, SCENARIO_COLUMNS)
    ids = frame["scenario"].astype("string").array if "scenario" in frame else None
    log = ProblemLog.for_table(name, frame, ids, id_label="scenario")
    check_headers(frame, SCENARIO_COLUMNS, log)
    if segment_by not in portfolio.loans.columns:
        cols = ", ".join(c for c in portfolio.loans.columns if c not in ("loan_id", "balance"))
        log.note("segment", f"the portfolio has no column {segment_by!r} ([risk] segment_by)",
                 f"a portfolio column: {cols}")  # fmt: skip
    log.raise_if_any("scenarios validation failed")
    clean_columns(frame, SCENARIO_COLUMNS, log)
    for col in ("scenario", "channel", "segment"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame["channel"] = frame["channel"].replace(CHANNEL_ALIASES)  # 核销: write_off
    _check_numbers(frame, log)
    _check_keys(frame, log, portfolio, channels, segment_by)
    names, probability = _probabilities(frame, log)
    log.raise_if_any("scenarios validation failed")
    table = frame[[c.name for c in SCENARIO_COLUMNS]].reset_index(drop=True)
    return Scenarios(table, names, probability, segment_by)


def _check_numbers(frame: pd.DataFrame, log: ProblemLog) -> None:
    p, f = frame["probability"].to_numpy(), frame["factor"].to_numpy()
    log.flag(((p < 0) | (p > 1)) & log.ok("probability"), "probability", p,
             "probability outside [0, 1]", "a probability in [0, 1]")  # fmt: skip
    log.flag((f < 0) & log.ok("factor"), "factor", f, "negative factor",
             "a factor >= 0 (0.8: the options are worth 80% of their value)")  # fmt: skip


def _check_keys(
    frame: pd.DataFrame,
    log: ProblemLog,
    portfolio: Portfolio,
    channels: Sequence[str],
    segment_by: str,
) -> None:
    known = frame["channel"].notna().to_numpy()
    unknown = known & ~frame["channel"].isin(list(channels)).to_numpy()
    log.flag(unknown, "channel", frame["channel"], "channel not in the options table",
             f"a channel of the options: {', '.join(channels)}")  # fmt: skip
    _, segments = segment_codes(portfolio.loans, segment_by)
    shown = ", ".join(segments[:12]) + (", ..." if len(segments) > 12 else "")
    present = frame["segment"].notna().to_numpy()
    bad = present & ~frame["segment"].isin(list(segments)).to_numpy()
    log.flag(bad, "segment", frame["segment"], f"not a value of the portfolio's {segment_by}",
             f"a value of {segment_by}: {shown}")  # fmt: skip
    dup = frame.duplicated(["scenario", "channel", "segment"], keep=False).to_numpy()
    log.flag(dup & log.ok("scenario", "channel", "segment"), "segment", frame["segment"],
             "(scenario, channel, segment) listed twice", "one factor per scenario, channel "
             "and segment")  # fmt: skip


def _probabilities(frame: pd.DataFrame, log: ProblemLog) -> tuple[tuple[str, ...], np.ndarray]:
    """The scenarios in order of appearance and their probabilities (checked to sum to 1)."""
    if frame.empty:
        log.note("scenario", "the table lists no scenario", "at least one row")
        return (), np.zeros(0)
    good = frame[frame["scenario"].notna()]
    names = tuple(str(s) for s in pd.unique(good["scenario"]))
    by = good.groupby("scenario", sort=False)["probability"]
    spread = (by.transform("max") - by.transform("min")).to_numpy()
    differs = np.zeros(len(frame), dtype=bool)
    differs[frame["scenario"].notna().to_numpy()] = spread > 1e-12
    log.flag(differs, "probability", frame["probability"],
             "rows of one scenario give different probabilities",
             "the scenario's one probability on each of its rows")  # fmt: skip
    probability = by.first().reindex(list(names)).to_numpy(dtype=float)
    total = float(np.nansum(probability))
    if abs(total - 1.0) > PROBABILITY_TOL:
        log.note("probability", f"the scenarios' probabilities sum to {total:.6g}",
                 "probabilities summing to 1 (each scenario counted once)")  # fmt: skip
    return names, probability / total if total > 0 else probability

"""The options table: each loan's eligible channels with their value, pnl and derecognised share.

:func:`read_options` reads a user's table (``loan_id, channel, value, pnl,
derecognised``; a row present means the loan is eligible) and checks it against the
portfolio; :func:`channel_order` gives the order the problem's grid puts channels in.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection

import numpy as np
import pandas as pd

from npl_disposal.exceptions import ChannelWarning
from npl_disposal.io._ids import in_order, locate, repeated_keys
from npl_disposal.io.portfolio import Portfolio
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import (
    CHANNEL_ALIASES,
    CHANNEL_NAME_ALLOWED,
    OPTION_COLUMNS,
    STANDARD_CHANNELS,
    is_channel_name,
    near_standard,
)
from npl_disposal.io.tables import (
    TableSource,
    check_headers,
    clean_columns,
    read_table,
    rename_categories,
    source_name,
)

__all__ = [
    "channel_order",
    "check_channels",
    "clean_channels",
    "portfolio_rows",
    "read_options",
]


def read_options(source: TableSource, portfolio: Portfolio) -> pd.DataFrame:
    """Read and validate an options table against the portfolio.

    A row present means the loan is eligible for that channel. Bad input (a
    loan_id absent from the portfolio, a duplicate (loan_id, channel), a share
    outside [0, 1], a loan without its ``retain`` row) raises one
    :class:`~npl_disposal.PortfolioValidationError` naming every problem.
    """
    name = source_name(source, "options")
    frame = read_table(source, OPTION_COLUMNS)
    own = portfolio_rows(frame, portfolio)
    if "loan_id" in frame and own is None:  # as text once: the log's labels and cleaning share it
        frame["loan_id"] = frame["loan_id"].astype("string")
    log = ProblemLog.for_table(name, frame, frame["loan_id"].array if "loan_id" in frame else None)
    check_headers(frame, OPTION_COLUMNS, log)
    if len(frame) == 0:
        log.note("", "the table has no options",
                 "one row per loan and channel it may go to, below the header")  # fmt: skip
    log.raise_if_any("options validation failed")
    clean_columns(frame, OPTION_COLUMNS, log, ids_as_text=True,
                  clean=("loan_id",) if own is not None else ())  # fmt: skip
    frame["channel"] = clean_channels(frame["channel"], log)
    unread = ~np.broadcast_to(log.ok("channel"), (len(frame),))  # missing or refused
    loan_pos = own if own is not None else locate(portfolio.loans["loan_id"], frame["loan_id"])
    log.flag(
        (loan_pos < 0) & log.ok("loan_id"),
        "loan_id",
        frame["loan_id"],
        "loan_id not in the portfolio",
        "a loan_id of the portfolio",
    )
    dup = _duplicate_options(frame, loan_pos)
    log.flag(
        dup & log.ok("loan_id", "channel"),  # not for cells refused already
        "channel",
        frame["channel"],
        "duplicate (loan_id, channel)",
        "one row per loan and channel",
    )
    share = frame["derecognised"].to_numpy()
    log.flag(
        (share < 0) | (share > 1),
        "derecognised",
        share,
        "share outside [0, 1]",
        "a share in [0, 1] of the balance",
    )
    has_retain = np.zeros(portfolio.n_loans, dtype=bool)
    # A channel refused may be the retain row: no knock-on problem for its loan.
    is_retain = (frame["channel"] == "retain").to_numpy(dtype=bool, na_value=False) | unread
    has_retain[loan_pos[is_retain & (loan_pos >= 0)]] = True
    # Rows of the portfolio, not of this table: named by loan_id alone.
    missing = ProblemLog(name, portfolio.loans["loan_id"].to_numpy(dtype=object), numbered=False)
    missing.flag(
        ~has_retain,
        "channel",
        None,
        "the loan has no retain row",
        "one row with channel = retain for every loan",
    )
    log.extend(missing)
    log.raise_if_any("options validation failed")
    # Share the portfolio's id objects and store channels as categories: at 3 million
    # options this saves a few hundred MB of repeated strings.
    if own is None:
        ids = portfolio.loans["loan_id"].to_numpy(dtype=object)
        frame["loan_id"] = pd.Series(ids[loan_pos], index=frame.index, dtype=ids.dtype)
    frame["_loan"] = loan_pos
    frame.attrs["file"] = name
    return frame


def clean_channels(raw: pd.Series, log: ProblemLog) -> pd.Series:
    """Channel names as categories, Chinese names as the standard channels they name.

    A name that is not a usable channel name (:func:`~npl_disposal.io.schema.is_channel_name`;
    channel names become file names) is flagged on its first row, with its count.
    """
    column = raw if isinstance(raw.dtype, pd.CategoricalDtype) else raw.astype("category")
    names = [str(name) for name in column.cat.categories]
    column = rename_categories(column, [CHANNEL_ALIASES.get(n, n) for n in names])
    bad = [i for i, name in enumerate(column.cat.categories) if not is_channel_name(name)]
    _flag_first(log, column, bad, "not a usable channel name", CHANNEL_NAME_ALLOWED)
    return column


def _flag_first(
    log: ProblemLog, channel: pd.Series, codes: list[int], problem: str, allowed: str
) -> None:
    """Flag the first row of each channel of ``codes``, saying on how many rows it is."""
    if not codes:
        return
    at = channel.cat.codes.to_numpy()
    wanted = np.zeros(len(channel.cat.categories) + 1, dtype=bool)  # the last: missing (-1)
    wanted[np.asarray(codes, dtype=np.int64)] = True
    hit = np.flatnonzero(wanted[at])
    _, first_of, counts = np.unique(at[hit], return_index=True, return_counts=True)
    rows = hit[first_of]  # each code's first row (``hit`` is in row order)
    fine = np.broadcast_to(log.ok("channel"), at.shape)[rows]  # a formula is flagged already
    rows, counts = rows[fine], counts[fine]
    first = np.zeros(len(at), dtype=bool)
    first[rows] = True
    text = np.full(len(at), "", dtype=object)
    text[rows] = [problem + (f" (on {n:,} rows; this is the first)" if n > 1 else "")
                  for n in counts.tolist()]  # fmt: skip
    log.flag(first, "channel", channel, text, allowed)


def check_channels(options: pd.DataFrame, declared: Collection[str] = ()) -> None:
    """Warn of a channel that looks like a misspelt standard one (``writeoff``), undeclared.

    Any other name is a channel of its own (README, channels of your own), with no budget
    unless the policy has a ``[channels.NAME]`` table for it (``declared``). A name close
    to a standard one is probably a typo that escapes that channel's budget: a
    :class:`~npl_disposal.exceptions.ChannelWarning` names the file, its first row and
    the rows it is on, and what to do.
    """
    channel = options["channel"]
    if not isinstance(channel.dtype, pd.CategoricalDtype):
        channel = channel.astype("category")
    names = [str(name) for name in channel.cat.categories]
    near = {n: near_standard(n) for n in names if n not in declared}
    suspects = [(code, n, near[n]) for code, n in enumerate(names) if near.get(n)]
    if not suspects:
        return
    at = channel.cat.codes.to_numpy()
    file = str(options.attrs.get("file", "options"))
    for code, name, standard in suspects:
        rows = np.flatnonzero(at == code)
        warnings.warn(
            f"{file}: channel {name!r} (row {rows[0] + 1}, on {rows.size:,} rows) is not a "
            f"standard channel and no budget limits it; did you mean {standard}? Rename it, "
            f"or give it a [channels.{name}] table in the policy",
            ChannelWarning,
            stacklevel=3,
        )


def portfolio_rows(frame: pd.DataFrame, portfolio: Portfolio) -> np.ndarray | None:
    """Each option's loan row when its ids are the portfolio's, in portfolio order.

    ``value_options`` writes the options so (the portfolio's own id objects,
    loan by loan). Such ids equal the validated ones, so they need no cleaning
    and no lookup, which spares converting every option's id to text and matching
    it. None for any other table, read as usual.
    """
    if "loan_id" not in frame.columns or not frame.columns.is_unique:
        return None
    keys = frame["loan_id"]
    if keys.dtype != object:
        return None
    return in_order(portfolio.loans["loan_id"].to_numpy(dtype=object), keys.to_numpy())


def _duplicate_options(frame: pd.DataFrame, loan_pos: np.ndarray) -> np.ndarray:
    """Rows whose (loan_id, channel) appears more than once, on integer keys when it can.

    Keys already increasing (rows sorted by loan and channel) have none; others
    are sorted, which takes a third of the time of hashing them.
    """
    channel = frame["channel"]
    if isinstance(channel.dtype, pd.CategoricalDtype):  # as value_options writes it: no hashing
        codes, names = channel.cat.codes.to_numpy(), channel.cat.categories
    else:
        codes, names = pd.factorize(channel)
    if (loan_pos < 0).any() or (codes < 0).any():  # unknown ids or no channel: compare text
        return frame.duplicated(["loan_id", "channel"], keep=False).to_numpy()
    # Channels ranked in the problem's order, so the rows of value_options come sorted.
    rank_of = {name: i for i, name in enumerate(channel_order(pd.Series(np.asarray(names))))}
    rank = np.array([rank_of[name] for name in np.asarray(names)], dtype=np.int64)
    key = loan_pos * max(len(names), 1)
    key += rank[codes]
    return repeated_keys(key)


def channel_order(names: pd.Series) -> tuple[str, ...]:
    """The channels present: the standard ones in their order, then the others sorted."""
    if isinstance(names.dtype, pd.CategoricalDtype):  # the categories in use, without hashing
        codes = names.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(names.cat.categories)) > 0
        distinct = list(names.cat.categories[used])
    else:
        distinct = list(pd.unique(names.dropna()))
    present = set(distinct)
    standard = [c for c in STANDARD_CHANNELS if c in present]
    others = [c for c in distinct if c not in STANDARD_CHANNELS]
    return (*standard, *sorted(str(c) for c in others))



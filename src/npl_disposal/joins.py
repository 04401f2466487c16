"""A plan joined to the loan table and the options table, on integer keys.

:mod:`npl_disposal.verify` and :mod:`npl_disposal.rules` recompute rules and
figures from the tables a plan names (never from the solver's matrix); this is
their one join: every plan row located in the loan table and in the options
table, in a few hashing passes instead of string merges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PlanJoin"]


class PlanJoin:
    """The plan joined to the loan table and the options table on integer keys.

    Every plan row is located in the loan table (``-1`` if absent) and in the
    options table by ``(loan, channel)`` (``-1`` if that option does not exist,
    i.e. the loan is not eligible for the channel). Rows found in both are kept
    as arrays for the group sums.
    """

    def __init__(self, loans: pd.DataFrame, options: pd.DataFrame, plan: pd.DataFrame) -> None:
        self.loans = loans
        opt_loan = _checked_positions(loans, options)
        if opt_loan is None:
            opt_loan, plan_loan = _locate(loans["loan_id"], options["loan_id"], plan["loan_id"])
        else:
            (plan_loan,) = _locate(loans["loan_id"], plan["loan_id"])
        opt_chan, plan_chan, names = _channel_codes(options["channel"], plan["channel"])
        self.channels = names
        n_ch = max(len(names), 1)
        opt_key = np.where(opt_loan >= 0, opt_loan.astype(np.int64) * n_ch + opt_chan, -1)
        plan_key = np.where(plan_loan >= 0, plan_loan.astype(np.int64) * n_ch + plan_chan, -2)
        row = pd.Index(opt_key).get_indexer(plan_key)
        share = plan["share"].to_numpy(dtype=float)
        self.plan_loan_ids = plan["loan_id"].to_numpy()
        self.all_share = share
        self.all_loan = plan_loan
        self.found = (row >= 0) & (plan_loan >= 0)
        self.opt_loan, self.opt_chan = opt_loan, opt_chan
        keep = self.found
        self.loan = plan_loan[keep]
        self.chan = plan_chan[keep]
        self.share = share[keep]
        picked = row[keep]
        self.value = options["value"].to_numpy(dtype=float)[picked]
        self.pnl = options["pnl"].to_numpy(dtype=float)[picked]
        self.derecognised = options["derecognised"].to_numpy(dtype=float)[picked]
        self.amount = loans["balance"].to_numpy(dtype=float)[self.loan] * self.share

    def by_channel(self, weights: np.ndarray) -> pd.Series:
        """Sum of ``weights`` per channel used in the plan (channel names as index)."""
        sums = np.bincount(self.chan, weights=weights, minlength=len(self.channels))
        used = np.bincount(self.chan, minlength=len(self.channels)) > 0
        return pd.Series(sums[used], index=self.channels[used], dtype=float)

    def per_loan(self, weights: np.ndarray, channels: list[str] | None = None) -> np.ndarray:
        """Sum of ``weights`` per loan of the loan table, over ``channels`` (all if None)."""
        mask = np.ones(self.chan.size, dtype=bool)
        if channels is not None:
            mask = np.isin(self.chan, self.channels.get_indexer(channels))
        n = len(self.loans)
        return np.bincount(self.loan[mask], weights=weights[mask], minlength=n)

    def option_count(self, mask: np.ndarray) -> np.ndarray:
        """Number of options of each loan among the options rows ``mask``."""
        sel = mask & (self.opt_loan >= 0)
        return np.bincount(self.opt_loan[sel], minlength=len(self.loans))

    def series(self, loans: np.ndarray, amounts: np.ndarray) -> pd.Series:
        """Amounts of the loans at positions ``loans``, indexed by loan_id."""
        return pd.Series(amounts, index=self.loans["loan_id"].to_numpy()[loans], dtype=float)


def _checked_positions(loans: pd.DataFrame, options: pd.DataFrame) -> np.ndarray | None:
    """The loan row of every option from its ``_loan`` column, once every id is checked.

    :func:`~npl_disposal.problem.read_options` records the row; each id it
    points at is compared with the option's own (None, to look them up instead).
    Comparing 3 million ids element by element costs a tenth of hashing them.
    """
    if "_loan" not in options.columns or len(options) == 0:
        return None
    pos = options["_loan"].to_numpy()
    if pos.dtype.kind not in "iu" or pos.min() < 0 or pos.max() >= len(loans):
        return None
    ids = loans["loan_id"].to_numpy(dtype=object)
    if not (ids[pos] == options["loan_id"].to_numpy(dtype=object)).all():
        return None
    return pos.astype(np.int64)


def _channel_codes(options: pd.Series, plan: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Codes of the options' and the plan's channels in one index of channel names."""
    codes, names = pd.factorize(pd.concat([options, plan], ignore_index=True))
    index = pd.Index(np.asarray(names, dtype=object))
    return codes[: len(options)], codes[len(options) :], index


def _locate(ids: pd.Series, *keys: pd.Series) -> list[np.ndarray]:
    """Row of each key in ``ids`` (unique), or -1: one hash pass over all the strings."""
    codes, _ = pd.factorize(pd.concat([ids, *keys], ignore_index=True))
    n = len(ids)
    position = np.full(int(codes.max(initial=-1)) + 1, -1, dtype=np.int64)
    position[codes[:n]] = np.arange(n)
    out, start = [], n
    for key in keys:
        out.append(position[codes[start : start + len(key)]])
        start += len(key)
    return out

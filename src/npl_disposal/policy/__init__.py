"""The disposal policy: the budgets and regulatory rules of ``policy.toml``.

A policy is read from a TOML file (:meth:`Policy.from_toml`), a mapping
(:meth:`Policy.from_dict`) or built directly, and is validated as a whole: every
problem is collected and reported in one :class:`~npl_disposal.exceptions.PolicyError`
(a ``ValueError``) whose lines name the section and key, e.g.
``[securitisation] min_pool``.

Sections (``docs/model.md`` states the rule each one feeds):

``[mode]``
    ``mode = "whole_loan"`` (default; each loan goes to exactly one channel, a MILP)
    or ``"fractional"`` (loans may be split; the LP relaxation, with shadow prices).
``[long_age]``
    ``months`` (months of NPL age): NPLs with ``npl_age_months >= months`` may not be
    retained when another channel can take them.
``[write_off]``
    ``quota`` (CNY yuan): the most book balance that may be written off; ``priority``
    (default ``"leave_book"``): how small/micro loans come first for write-off (优先安排核销):
    ``"leave_book"``, a small/micro loan eligible for write-off may not be retained or
    restructured (it leaves the book by some channel); ``"quota_first"``, the quota goes
    to small/micro loans eligible for write-off first (they may stay once it is spent);
    ``"none"``.
``[bulk_transfer]``
    ``capacity`` (CNY yuan): the most balance the AMCs will buy; ``min_loans``
    (loans, default 0): the minimum number of loans in a package.
``[securitisation]``
    ``max_pool`` (CNY yuan): the largest pool; ``min_pool`` (CNY yuan, default 0):
    the smallest pool worth issuing; ``fixed_cost`` (CNY yuan, default 0): the
    issuance cost, paid only when a pool is issued.
``[restructure]``
    ``max_loans`` (loans): how many restructurings staff can handle.
``[profit]``
    ``max_loss`` (CNY yuan): this year's profit may fall by at most this.
``[tolerance]``
    ``bank_npl_ratio`` (share, required): the bank's overall NPL ratio;
    ``margin`` (share, default 0.03, i.e. 3 percentage points); ``enforce``
    (default true): impose the per-branch tolerance in the optimiser. A branch's
    inclusive small/micro NPL ratio is tolerated up to ``bank_npl_ratio + margin``.
``[wage_pool]``
    ``consider_share`` (share, default 1): the part of the NPL loss still counted
    against the wage pool of a branch within tolerance (0 = disregarded);
    ``rate`` (share, default 0): wage pool as a share of profit;
    ``weight`` (default 0): CNY of objective per CNY of the branches' total wage
    pool, so the optimiser also values keeping wage pools up (0 = value only);
    ``max_fall`` (CNY yuan, default inf): the most any branch's wage pool may
    fall because of the plan's NPL losses.

``[channels.NAME]`` (one table per user-defined channel, e.g. ``[channels.amc_b]``)
    ``capacity`` (CNY yuan, default inf): the most balance the channel takes;
    ``min_balance`` (CNY yuan, default 0) and ``min_loans`` (loans, default 0): the
    least it takes when used; ``max_loans`` (loans, default inf); ``fixed_cost``
    (CNY yuan, default 0): paid when the channel is used. A minimum or a fixed cost
    makes the channel an on/off block like securitisation.

**A missing section means that constraint is absent** (no write-off quota, no
profit floor, ...); the corresponding attribute of :class:`Policy` is ``None``. One
exception: the write-off priority is the notice's, not a budget, and holds in its
default reading ``leave_book`` without a ``[write_off]`` section.
Without ``[wage_pool]`` the defaults above apply (:attr:`Policy.wage_pool_or_default`).

Units: money in CNY yuan, ages in months, counts in loans, ratios and rates as
shares in [0, 1] (0.03 means 3%). ``[valuation]`` and ``[solver]`` are accepted
and stored as-is in :attr:`Policy.extra`, and checked by the modules that use them
(:func:`~npl_disposal.valuation.value_options`,
:func:`~npl_disposal.solvers.solve.solver_settings`);
any other section is an error.
"""

from npl_disposal.policy._values import MODES, Mode
from npl_disposal.policy.policy import Policy, PolicyLike, load_policy
from npl_disposal.policy.sections import (
    EXTRA_SECTIONS,
    SECTIONS,
    BulkTransfer,
    ChannelLimits,
    LongAge,
    ModeSection,
    Profit,
    Restructure,
    Schedule,
    Securitisation,
    Tolerance,
    WagePool,
    WriteOff,
)

__all__ = [
    "EXTRA_SECTIONS",
    "MODES",
    "SECTIONS",
    "BulkTransfer",
    "ChannelLimits",
    "LongAge",
    "Mode",
    "ModeSection",
    "Policy",
    "PolicyLike",
    "Profit",
    "Restructure",
    "Schedule",
    "Securitisation",
    "Tolerance",
    "WagePool",
    "WriteOff",
    "load_policy",
]

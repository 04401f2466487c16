"""The NPL portfolio: the loan table and the branch table, validated, with first summaries.

>>> from npl_disposal import read_portfolio
>>> pf = read_portfolio("portfolio.csv", branches="branches.csv")  # doctest: +SKIP
>>> pf.by_class()  # doctest: +SKIP

Columns and units are those of the input files (``docs/model.md``; money in CNY yuan). Chinese
headers such as 贷款编号, 机构, 贷款余额, 五级分类 and the classes 次级 / 可疑 / 损失
are accepted and mapped to the canonical names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from npl_disposal.io._ids import duplicated, positions_in
from npl_disposal.io.problems import ProblemLog
from npl_disposal.io.schema import AGE_BUCKETS, AGE_LABELS, BRANCH_COLUMNS, LOAN_COLUMNS
from npl_disposal.io.tables import (
    TableSource,
    check_headers,
    clean_columns,
    formula_like,
    read_table,
    source_name,
)

__all__ = [
    "Branches",
    "Portfolio",
    "inclusive_npl",
    "read_branches",
    "read_loans",
    "read_portfolio",
]

_OPTIONAL_ZERO = ("collateral_value", "guarantee_cover", "interest_receivable")


def inclusive_npl(loans: pd.DataFrame, names: Sequence[object]) -> np.ndarray:
    """Inclusive small/micro NPL (CNY yuan) of each branch of ``names``, in that order.

    The balance of the branch's loans flagged ``inclusive``; loans of other branches
    are not counted.
    """
    codes = positions_in(loans["branch"], names)
    counted = loans["inclusive"].to_numpy(dtype=bool) & (codes >= 0)
    balance = loans["balance"].to_numpy(dtype=float)
    return np.bincount(codes[counted], balance[counted], minlength=len(names))


@dataclass(frozen=True, eq=False)
class Branches:
    """The branch table's figures as arrays, one entry per branch in table order.

    ``inclusive_npl`` (from the loans), ``inclusive_loans``, ``profit`` and
    ``inclusive_loans_start`` are CNY yuan; ``wage_rate`` is a share, NaN where the
    table gives none.
    """

    names: tuple[str, ...]
    inclusive_npl: np.ndarray
    inclusive_loans: np.ndarray
    profit: np.ndarray
    wage_rate: np.ndarray
    inclusive_loans_start: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class Portfolio:
    """A validated NPL portfolio: ``loans`` (one row per loan) and ``branches``.

    Build it with :func:`read_portfolio`; the constructor trusts its inputs.
    ``loans`` has the canonical columns with canonical dtypes (money float64 in
    CNY yuan, ``classification`` an ordered categorical, flags bool).
    """

    loans: pd.DataFrame
    branches: pd.DataFrame | None = None
    source: str = "portfolio"

    @cached_property
    def branch_table(self) -> Branches:
        """The branch table's figures as arrays (needs the branch table)."""
        if self.branches is None:
            raise ValueError("branch figures need the branch table: read_portfolio(..., branches=)")
        table = self.branches
        names = tuple(str(b) for b in table["branch"])

        def column(name: str) -> np.ndarray:
            return table[name].to_numpy(dtype=float)

        rate = column("wage_rate") if "wage_rate" in table else np.full(len(names), np.nan)
        start = column("inclusive_loans_start") if "inclusive_loans_start" in table else None
        return Branches(names, inclusive_npl(self.loans, names), column("inclusive_loans"),
                        column("profit"), rate, start)  # fmt: skip

    @property
    def n_loans(self) -> int:
        """Number of loans."""
        return len(self.loans)

    @property
    def total_balance(self) -> float:
        """Total book balance, CNY yuan."""
        return float(self.loans["balance"].sum())

    def by_class(self) -> pd.DataFrame:
        """Count, balance and provision (CNY yuan) by loan class, with coverage."""
        return _group(self.loans, "classification")

    def by_branch(self) -> pd.DataFrame:
        """Count, balance and provision (CNY yuan) by branch, with coverage."""
        return _group(self.loans, "branch")

    def by_age(self) -> pd.DataFrame:
        """Count, balance and provision (CNY yuan) by NPL age bucket (months)."""
        loans = self.loans.assign(age_bucket=age_bucket(self.loans["npl_age_months"]))
        return _group(loans, "age_bucket")

    def branch_ratios(self) -> pd.DataFrame:
        """Inclusive small/micro NPL ratio per branch today (before any disposal).

        ``inclusive_npl`` and ``inclusive_loans`` are CNY yuan; ``npl_ratio`` is
        their quotient. Needs the branch table.
        """
        if self.branches is None:
            raise ValueError("branch_ratios needs the branch table: read_portfolio(..., branches=)")
        out = self.branches.set_index("branch")[["inclusive_loans"]].copy()
        out.insert(0, "inclusive_npl", inclusive_npl(self.loans, list(out.index)))
        out["npl_ratio"] = out["inclusive_npl"] / out["inclusive_loans"]
        return out

    def summary(self) -> str:
        """A short text a risk officer reads first."""
        loans = self.loans
        lines = [
            f"{self.source}: {self.n_loans:,} NPLs, balance CNY {self.total_balance / 1e6:,.2f}m, "
            f"provision CNY {loans['provision'].sum() / 1e6:,.2f}m",
            f"small/micro {loans['small_micro'].mean():.1%} of loans, "
            f"inclusive {loans['inclusive'].mean():.1%}; "
            f"{int((loans['npl_age_months'] >= 36).sum()):,} loans aged 36 months or more",
        ]
        if self.branches is not None:
            lines.append(f"{len(self.branches)} branches")
        return "\n".join(lines)


def age_bucket(months: pd.Series) -> pd.Series:
    """NPL age bucket label (0-12m, 12-24m, 24-36m, 36-60m, 60m+) of ages in months."""
    edges = [*AGE_BUCKETS, np.inf]
    return pd.cut(months, bins=edges, labels=list(AGE_LABELS), right=False)


def _group(loans: pd.DataFrame, key: str) -> pd.DataFrame:
    grouped = loans.groupby(key, observed=False)
    out = pd.DataFrame(
        {
            "loans": grouped.size(),
            "balance": grouped["balance"].sum(),
            "provision": grouped["provision"].sum(),
        }
    )
    out["balance_share"] = out["balance"] / out["balance"].sum()
    out["coverage"] = out["provision"] / out["balance"].where(out["balance"] > 0)
    return out


def read_loans(source: TableSource, log: ProblemLog | None = None) -> pd.DataFrame:
    """Read and validate the loan table; raise one error listing every problem.

    ``source`` is a DataFrame or the path of a CSV / Parquet file. Pass ``log``
    to collect the problems instead of raising (used by :func:`read_portfolio`).
    """
    name = source_name(source, "portfolio")
    frame = read_table(source, LOAN_COLUMNS)
    # Row labels for the problems: converted to Python strings only for flagged rows.
    ids = frame["loan_id"].astype("string").array if "loan_id" in frame.columns else None
    own = ProblemLog.for_table(name, frame, ids)
    check_headers(frame, LOAN_COLUMNS, own)
    if len(frame) == 0:
        own.note("", "the table has no loans", "one row per non-performing loan below the header")
    clean_columns(frame, LOAN_COLUMNS, own, categorical=("branch",))
    _check_loans(frame, own)
    for col in _OPTIONAL_ZERO:
        if col in frame.columns:
            frame[col] = frame[col].fillna(0.0)
    if "branch" in frame.columns:
        frame["branch"] = frame["branch"].astype("category")
    if log is None:
        own.raise_if_any("portfolio validation failed")
    else:
        log.extend(own)
    return frame.reset_index(drop=True)


def read_branches(source: TableSource, log: ProblemLog | None = None) -> pd.DataFrame:
    """Read and validate the branch table (``branch, inclusive_loans, profit`` ...)."""
    name = source_name(source, "branches")
    frame = read_table(source, BRANCH_COLUMNS)
    ids = frame["branch"].astype("string").to_numpy(dtype=object) if "branch" in frame else None
    own = ProblemLog.for_table(name, frame, ids, id_label="branch")
    check_headers(frame, BRANCH_COLUMNS, own)
    if len(frame) == 0:
        own.note("", "the table has no branches", "one row per branch below the header")
    clean_columns(frame, BRANCH_COLUMNS, own)
    _check_branches(frame, own)
    if log is None:
        own.raise_if_any("branch table validation failed")
    else:
        log.extend(own)
    return frame.reset_index(drop=True)


def read_portfolio(
    loans: TableSource | Portfolio,
    branches: TableSource | None = None,
) -> Portfolio:
    """Read, clean and validate the loans and (optionally) the branch table.

    Every problem of both tables, and of the checks between them (a loan's
    branch missing from the branch table; a branch whose ``inclusive_loans`` is
    below its inclusive NPL balance), is collected before one
    :class:`~npl_disposal.PortfolioValidationError` is raised.
    """
    if isinstance(loans, Portfolio):
        if branches is None:
            return loans
        loans = loans.loans
    log, branch_log = ProblemLog(""), ProblemLog("")
    loan_table = read_loans(loans, log)
    branch_table = read_branches(branches, branch_log) if branches is not None else None
    log.extend(branch_log)
    if _comparable(loan_table, branch_table) and not branch_log.concerns("branch"):
        _check_between(
            loan_table,
            branch_table,
            source_name(loans, "portfolio"),
            source_name(branches, "branches"),
            log,
        )
    log.raise_if_any("portfolio validation failed")
    return Portfolio(loan_table, branch_table, source_name(loans, "portfolio"))


def _check_loans(frame: pd.DataFrame, log: ProblemLog) -> None:
    cols = frame.columns
    if "loan_id" in cols:
        ids = frame["loan_id"]
        log.flag(duplicated(ids), "loan_id", ids, "duplicate loan_id", "each loan_id once")
    balance = frame["balance"].to_numpy() if "balance" in cols else None
    if balance is not None:
        log.flag(
            balance <= 0, "balance", balance, "balance must be positive", "a number > 0 (CNY yuan)"
        )
    if "provision" in cols:
        prov = frame["provision"].to_numpy()
        log.flag(prov < 0, "provision", prov, "negative provision", "0 <= provision <= balance")
        if balance is not None:
            above = (prov > balance + 0.005) & log.ok("balance", "provision")
            log.flag(
                above,
                "provision",
                prov,
                "provision above the balance",
                "0 <= provision <= balance (CNY yuan)",
            )
    for name in ("npl_age_months", "recourse_days", "days_past_due"):
        if name in cols:
            values = frame[name].to_numpy()
            log.flag(values < 0, name, values, "negative", "a number >= 0")
    for name in ("collateral_value", "interest_receivable"):
        if name in cols:
            values = frame[name].to_numpy()
            log.flag(values < 0, name, values, "negative amount", "a number >= 0 (CNY yuan)")
    if "guarantee_cover" in cols:
        cover = frame["guarantee_cover"].to_numpy()
        log.flag(
            (cover < 0) | (cover > 1),
            "guarantee_cover",
            cover,
            "share outside [0, 1]",
            "a share in [0, 1] of the loss the guarantor pays",
        )
    if "inclusive" in cols and "small_micro" in cols:
        wrong = frame["inclusive"].to_numpy() & ~frame["small_micro"].to_numpy()
        wrong &= log.ok("inclusive", "small_micro")
        log.flag(
            wrong,
            "inclusive",
            frame["inclusive"].to_numpy(),
            "inclusive but not small/micro",
            "inclusive = true only where small_micro = true",
        )


def _check_branches(frame: pd.DataFrame, log: ProblemLog) -> None:
    cols = frame.columns
    if "branch" in cols:
        ids = frame["branch"]
        log.flag(duplicated(ids), "branch", ids, "duplicate branch", "each branch once")
    for name in ("inclusive_loans", "inclusive_loans_start"):
        if name in cols:
            values = frame[name].to_numpy()
            log.flag(values <= 0, name, values, "must be positive", "a number > 0 (CNY yuan)")
    if "wage_rate" in cols:
        rate = frame["wage_rate"].to_numpy()
        log.flag(
            (rate < 0) | (rate > 1),
            "wage_rate",
            rate,
            "rate outside [0, 1]",
            "a share in [0, 1] of profit",
        )


def _comparable(loans: pd.DataFrame, branches: pd.DataFrame | None) -> bool:
    """Whether the checks between the tables can run: their columns present, branches once.

    No branch, or a blank, repeated or otherwise refused one is reported already; looking
    loans up by it would only add knock-on problems (or fail).
    """
    if branches is None or "branch" not in branches.columns or len(branches) == 0:
        return False
    if not {"branch", "balance", "inclusive"} <= set(loans.columns):
        return False
    ids = branches["branch"]
    return not (ids.isna().any() or duplicated(ids).any())


def _check_between(
    loans: pd.DataFrame,
    branches: pd.DataFrame,
    loans_file: str,
    branches_file: str,
    log: ProblemLog,
) -> None:
    known = set(branches["branch"].dropna())
    branch = loans["branch"]
    if isinstance(branch.dtype, pd.CategoricalDtype):  # one check per branch, not per loan
        names = pd.Series(branch.cat.categories, dtype="string")
        listed = np.append(names.isin(known).to_numpy() | formula_like(names), True)
        absent = ~listed[branch.cat.codes.to_numpy()]
    else:
        values = pd.Series(branch.astype(object).to_numpy(), dtype="string")
        absent = ~values.isin(known).to_numpy() & values.notna().to_numpy()
        absent &= ~formula_like(values)  # refused already, in the loans' own checks
    missing_log = ProblemLog.for_table(loans_file, loans, loans["loan_id"].array)
    missing_log.flag(
        absent,
        "branch",
        branch,
        f"branch not in {branches_file}",
        f"a branch listed in {branches_file}",
    )
    log.extend(missing_log)
    if "inclusive_loans" not in branches.columns:  # already reported as missing
        return
    valid = loans[(loans["balance"] > 0).to_numpy()]
    needed = inclusive_npl(valid, branches["branch"].tolist())
    have = branches["inclusive_loans"].to_numpy()
    branch_log = ProblemLog.for_table(branches_file, branches,
                                      branches["branch"].to_numpy(dtype=object), "branch")
    branch_log.flag(
        have < needed - 0.005,
        "inclusive_loans",
        have,
        np.array(
            [
                f"below the branch's inclusive NPL balance CNY {x:,.2f} in {loans_file}"
                for x in needed
            ],
            dtype=object,
        ),
        "inclusive_loans >= the inclusive NPL balance (it includes performing loans)",
    )
    log.extend(branch_log)

"""The result of a solve: the plan, its value and proven bound, the budgets' usage.

:class:`AllocationResult` holds a verified plan; it writes itself
(:meth:`AllocationResult.write`: ``plan.csv``, ``branches.csv``, ``summary.json``, all
or nothing), shows itself briefly (``repr``, and a small table in a notebook) and
summarises itself for a risk officer (:meth:`AllocationResult.summary`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from npl_disposal.io._ids import as_text, as_text_codes
from npl_disposal.io.csv_output import OUTPUT_ENCODING, check_encoding, recode, write_csv
from npl_disposal.io.output import replace_folder
from npl_disposal.model._join import PlanKeys
from npl_disposal.model.figures import BRANCH_FIGURES, branch_figures
from npl_disposal.model.problem import AllocationProblem
from npl_disposal.model.risk_verify import RiskFigures
from npl_disposal.model.verify import Verification
from npl_disposal.policy.risk import MODEL_RULES as RISK_MODEL_RULES
from npl_disposal.solvers._formulation import MONEY_SCALE, row_scale

__all__ = [
    "BINDING_TOLERANCE",
    "MODEL_RULES",
    "OUTPUT_FILES",
    "AllocationResult",
    "SolverReport",
    "Status",
    "branches_table",
    "constraint_records",
    "constraint_table",
    "html_view",
    "plan_frame",
    "plan_with_keys",
]

#: The files :meth:`AllocationResult.write` writes.
OUTPUT_FILES = ("plan.csv", "branches.csv", "summary.json")

#: Rows that define the wage-pool model's levels rather than limit the plan.
MODEL_RULES = (
    "wage_pool.loss",
    "wage_pool.consider_share",
    "wage_pool.within",
    "wage_pool.floor",
)


class Status(str, Enum):
    """Outcome of a solve."""

    OPTIMAL = "optimal"
    """Best plan found and proven within the requested gap."""
    FEASIBLE = "feasible"
    """A verified plan, but the time limit stopped the proof; see ``gap``."""
    NO_SOLUTION = "no_solution"
    """The time limit came before any feasible plan."""


@dataclass(frozen=True)
class SolverReport:
    """How the plan was found: backend, method, seconds and work done."""

    backend: str
    method: str
    seconds: float
    iterations: int = 0
    open_loans: int = 0
    message: str = ""


@dataclass(frozen=True, eq=False)
class AllocationResult:
    """A disposal plan with its value, proven bound and the budgets' usage.

    ``plan`` has one row per loan and channel with a positive ``share``;
    ``objective`` and ``bound`` are CNY yuan; ``gap`` is ``(bound - objective) /
    |bound|``; ``constraints`` has per rule its ``usage``, ``limit``, ``slack`` and,
    in fractional mode, its ``shadow_price``: CNY of value gained per unit (CNY
    or loan) by which the rule is relaxed.
    """

    status: Status
    mode: str
    plan: pd.DataFrame
    objective: float
    bound: float
    gap: float
    constraints: pd.DataFrame
    blocks: Mapping[str, float]
    verification: Verification
    solver: SolverReport
    shares: np.ndarray = field(repr=False)
    problem: AllocationProblem = field(repr=False)
    plan_keys: PlanKeys | None = field(default=None, repr=False)
    _figures: list[pd.DataFrame] = field(default_factory=list, repr=False)

    def channel_mix(self) -> pd.DataFrame:
        """Loans, balance, value and pnl (CNY yuan) sent to each channel."""
        p, shares = self.problem, self.shares
        out = pd.DataFrame(  # column sums without a loans x channels product in memory
            {
                "loans": shares.sum(axis=0),
                "balance": p.balance @ shares,
                "value": np.einsum("ij,ij->j", shares, p.value),
                "pnl": np.einsum("ij,ij->j", shares, p.pnl),
            },
            index=pd.Index(p.channels, name="channel"),
        )
        out["balance_share"] = out["balance"] / out["balance"].sum()
        return out

    def branch_figures(self) -> pd.DataFrame:
        """Tolerance, wage-pool and add-back figures per branch after this plan.

        Computed once (it joins the plan to the tables); each call returns a copy.
        """
        if not self._figures:
            p = self.problem
            self._figures.append(branch_figures(p.portfolio, p.policy, self.plan, p.options,
                                                self.blocks, keys=self.plan_keys))  # fmt: skip
        return self._figures[0].copy()

    @property
    def risk(self) -> RiskFigures | None:
        """With scenarios: the plan's value in each, its expected value and tail mean."""
        return self.verification.risk

    def binding(self) -> pd.DataFrame:
        """The rules at their limit, with their shadow prices.

        Rows that only define a model's levels (the wage pool's, the tail model's scenario
        values) are not rules and are left out.
        """
        from npl_disposal.policy.risk import MODEL_RULES as TAIL_RULES

        table = self.constraints
        model = table["rule"].isin(MODEL_RULES) | table["rule"].isin(TAIL_RULES)
        return table[table["binding"] & ~model]

    def summary(self) -> str:
        """What a risk officer reads first: status, value, gap and binding budgets."""
        lines = [
            f"{self.status.value} {self.mode} plan for {self.problem.n_loans:,} loans: value "
            f"CNY {self.objective / 1e6:,.2f}m, bound CNY {self.bound / 1e6:,.2f}m, "
            f"gap {self.gap:.2e} ({self.solver.backend}/{self.solver.method}, "
            f"{self.solver.seconds:.2f} s)",
        ]
        weighed = self.verification.objective - self.objective
        if abs(weighed) > 0.005:
            lines.append(
                f"  = the plan's value CNY {self.verification.objective / 1e6:,.2f}m less the "
                f"weighted wage-pool fall CNY {weighed / 1e6:,.2f}m ([wage_pool] weight)"
            )
        mix = self.channel_mix()
        for channel, row in mix.iterrows():
            lines.append(
                f"  {channel:<16} {_loans(row['loans']):>10} loans  CNY "
                f"{row['balance'] / 1e6:>12,.2f}m"
            )
        if self.risk is not None:
            lines.append("  " + self.risk.summary())
        binding = self.binding()
        binding = binding[~binding["rule"].isin(MODEL_RULES + RISK_MODEL_RULES)]
        if len(binding):
            lines.append("binding: " + ", ".join(binding["name"]))
        return "\n".join(lines)

    def __repr__(self) -> str:
        loans = self.problem.n_loans
        return (
            f"<AllocationResult {self.status.value} {self.mode}, {loans:,} loans: value "
            f"CNY {self.objective / 1e6:,.2f}m, bound CNY {self.bound / 1e6:,.2f}m, "
            f"gap {self.gap:.1e}>"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: status, value, bound, gap and the channel mix (CNY m)."""
        mix = self.channel_mix()[["loans", "balance", "value"]] / [1.0, 1e6, 1e6]
        return html_view(
            "AllocationResult",
            {"status": self.status.value, "mode": self.mode,
             "loans": f"{self.problem.n_loans:,}", "value (CNY m)": f"{self.objective / 1e6:,.2f}",
             "bound (CNY m)": f"{self.bound / 1e6:,.2f}", "gap": f"{self.gap:.1e}"},
            mix.rename(columns={"balance": "balance (CNY m)", "value": "value (CNY m)"}),
        )  # fmt: skip

    #: The plan's file in the output folder (a schedule's: ``schedule.csv``).
    plan_file: ClassVar[str] = "plan.csv"

    def branches_frame(self) -> pd.DataFrame:
        """What ``branches.csv`` holds: :func:`branches_table`."""
        return branches_table(self)

    def write(
        self, directory: str | os.PathLike[str], encoding: str = OUTPUT_ENCODING
    ) -> list[Path]:
        """Write ``plan.csv``, ``branches.csv`` and ``summary.json`` into ``directory``.

        ``plan.csv`` has ``loan_id, channel, share`` (one row per positive share);
        ``branches.csv`` the branch figures (:func:`branches_table`); ``summary.json``
        the fields of :meth:`to_dict`. The CSV files are in ``encoding``: by default UTF-8
        with a byte-order mark, so that Excel on a Chinese desktop reads their text (pandas
        and this library's readers skip the mark); ``"utf-8"`` leaves it out, ``"gb18030"``
        writes Chinese Windows' own encoding. ``summary.json`` is UTF-8 without a mark, as
        JSON requires. The folder is replaced as one: a failure or an
        interruption leaves it as it was, and a folder holding files this library did
        not write is refused (:class:`~npl_disposal.OutputError`). Returns the paths
        written.
        """
        check_encoding(encoding)
        branches = self.branches_frame()
        summary = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        return replace_folder(
            directory,
            {
                self.plan_file: lambda p: _write_plan(self.plan, p, encoding),
                "branches.csv": lambda p: branches.to_csv(p, index=False, encoding=encoding),
                "summary.json": lambda p: p.write_text(summary, encoding="utf-8"),
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``summary.json``.

        With scenarios also ``expected_value``, ``tail_mean``, ``alpha``, ``aversion``,
        ``min_tail_value`` and each scenario's value (``scenarios``).
        """
        constraints = self.constraints[~self.constraints["rule"].isin(RISK_MODEL_RULES)]
        out = {
            "status": self.status.value,
            "mode": self.mode,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "loans": self.problem.n_loans,
            "blocks": dict(self.blocks),
            "channels": json.loads(self.channel_mix().to_json(orient="index")),
            "constraints": constraint_records(constraints),
            "solver": {
                "backend": self.solver.backend,
                "method": self.solver.method,
                "seconds": self.solver.seconds,
                "iterations": self.solver.iterations,
                "open_loans": self.solver.open_loans,
            },
        }
        if self.risk is not None:
            out.update(self.risk.to_dict())
        return out



def branches_table(result: AllocationResult) -> pd.DataFrame:
    """``branches.csv``: the branch figures after the plan, in the file's column order."""
    figures = result.branch_figures()
    extra = [c for c in ("growth", "growth_restored") if c in figures]
    rest = [c for c in figures.columns if c not in ["branch", *BRANCH_FIGURES, *extra]]
    return figures[["branch", *BRANCH_FIGURES, *extra, *rest]]


def html_view(title: str, fields: Mapping[str, str], table: pd.DataFrame) -> str:
    """A small HTML view: a title, ``fields`` in one line, and ``table`` (2 decimals)."""
    import html  # for notebooks only: a plan run never shows its result as HTML

    head = " &middot; ".join(
        f"<b>{html.escape(k)}</b> {html.escape(v)}" for k, v in fields.items()
    )
    body = table.to_html(float_format=lambda x: f"{x:,.2f}", border=0)
    return f"<div><p><b>{html.escape(title)}</b>: {head}</p>{body}</div>"


def constraint_records(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """A constraints table as ``{name: {column: value}}`` for JSON (NaN as None)."""
    cons = table.replace({np.nan: None})
    return {
        rec["name"]: {k: rec[k] for k in cons.columns if k != "name"}
        for rec in cons.to_dict(orient="records")
    }


def plan_frame(problem: AllocationProblem, shares: np.ndarray) -> pd.DataFrame:
    """The plan as ``loan_id, channel, share`` rows, one per positive share."""
    return plan_with_keys(problem, shares)[0]


def plan_with_keys(
    problem: AllocationProblem, shares: np.ndarray
) -> tuple[pd.DataFrame, PlanKeys | None]:
    """The plan frame, and where its rows point (loan table row, channel code).

    No keys for a problem over part of its portfolio (e.g. a sample): its grid
    rows are not the loan table's.
    """
    loan, channel = np.nonzero(shares > 1e-12)
    frame = pd.DataFrame(
        {
            "loan_id": as_text(problem.loan_ids[loan]),
            "channel": as_text_codes(channel, problem.channels),
            "share": shares[loan, channel],
        }
    )
    if problem.n_loans != len(problem.portfolio.loans):
        return frame, None
    return frame, PlanKeys(loan.astype(np.int64), channel.astype(np.int64), problem.channels)


#: A rule is binding when its slack is at most this share of its limit, or a cent (a
#: millionth of a loan for counts), whichever is larger.
BINDING_TOLERANCE = 1e-6
#: Notes of the constraints table.
NOTES = {
    "off": "off: the channel is not used, so its budgets do not apply",
    "degenerate": "binding at a zero price: relaxing this rule alone gains nothing (another "
    "binding rule holds the plan there)",
    "model": "a row of the wage-pool model, not a budget",
    "risk_model": "a row of the tail model (scenario values), not a budget",
}


def constraint_table(
    problem: AllocationProblem, shares: np.ndarray, y: np.ndarray, duals: np.ndarray | None
) -> pd.DataFrame:
    """Per rule: its usage against the policy's own number, slack, binding, shadow price.

    Each rule is shown as the policy states it: ``limit`` is the policy's number (a
    capacity, a minimum, ``max_loss``) and ``usage`` the plan's amount in the same sign
    (the profit rule shows how far profit falls, fixed costs included, and names them in
    ``fixed_costs``). ``level`` is the on/off level of the channel a rule belongs to (1
    used, 0 not; in between in a fractional plan): its limit in force is ``limit x
    level`` (``limit_in_force``), and a channel off has status ``off``, not binding.
    ``binding`` means the slack is within :data:`BINDING_TOLERANCE` of the limit (or a
    cent). ``shadow_price`` (fractional mode) is the CNY of value gained per unit (CNY
    or loan) by which the rule's limit in force is relaxed; a binding rule may have a
    zero price when another rule holds the plan (``note`` says so).
    """
    rows = problem.rows
    limit, negate, switch = rows.stated()
    names = [b.name for b in problem.blocks]
    column = np.array([names.index(s) if s in names else -1 for s in switch], dtype=np.int64)
    own = np.zeros(rows.blocks.shape, dtype=bool)
    own[np.flatnonzero(column >= 0), column[column >= 0]] = True
    activity = rows.matrix @ shares.ravel() + np.where(own, 0.0, rows.blocks) @ y
    usage = np.where(negate, -activity, activity) + 0.0
    level = np.where(column >= 0, y[np.maximum(column, 0)] if len(y) else 0.0, np.nan)
    off = level == 0
    with np.errstate(invalid="ignore"):
        in_force = np.where(np.isnan(level), limit, np.where(off, 0.0, limit * level))
    upper_side = np.isfinite(rows.upper) ^ negate  # the policy's "at most"
    slack = np.where(upper_side, in_force - usage, usage - in_force)
    floor = np.where(np.array(rows.unit) == "CNY", 0.01, 1e-6)
    finite = np.where(np.isfinite(limit), np.abs(limit), 0.0)
    binding = ~off & (slack <= np.maximum(floor, BINDING_TOLERANCE * finite))
    shadow = (
        np.abs(duals) * row_scale(problem) / MONEY_SCALE if duals is not None
        else np.full(len(rows), np.nan)
    )  # fmt: skip
    return pd.DataFrame(
        {
            "name": rows.names,
            "rule": rows.rule,
            "branch": rows.branch,
            "unit": rows.unit,
            "sense": np.where(upper_side, "<=", ">="),
            "usage": usage,
            "limit": limit,
            "level": level,
            "limit_in_force": in_force,
            "budget": limit,
            "utilisation": np.divide(
                usage, limit, out=np.full(len(rows), np.nan), where=np.abs(limit) > 0
            ),
            "slack": slack,
            "binding": binding,
            "shadow_price": shadow,
            "fixed_costs": _fixed_costs(problem, own, y),
            "note": _notes(rows.rule, off, binding, shadow),
        }
    )


def _fixed_costs(problem: AllocationProblem, own: np.ndarray, y: np.ndarray) -> list[str]:
    """Per row, the fixed costs of on/off channels counted in its usage, named with amounts."""
    switch = [j for j, b in enumerate(problem.blocks) if b.kind == "switch"]
    out = []
    for r in range(len(problem.rows)):
        coefs = problem.rows.blocks[r]
        parts = [
            f"{problem.blocks[j].name} CNY {-coefs[j] * y[j]:,.2f}"
            for j in switch
            if coefs[j] < 0 and not own[r, j] and y[j] > 0
        ]
        out.append("; ".join(parts))
    return out


def _notes(
    rule: tuple[str, ...], off: np.ndarray, binding: np.ndarray, shadow: np.ndarray
) -> list[str]:
    out = []
    for r, name in enumerate(rule):
        if name in MODEL_RULES:
            out.append(NOTES["model"])
        elif name in RISK_MODEL_RULES:
            out.append(NOTES["risk_model"])
        elif off[r]:
            out.append(NOTES["off"])
        elif binding[r] and shadow[r] == 0.0:
            out.append(NOTES["degenerate"])
        else:
            out.append("")
    return out


def _write_plan(plan: pd.DataFrame, path: Path, encoding: str) -> None:
    """The plan through :func:`~npl_disposal.io.csv_output.write_csv` (UTF-8), then recoded."""
    write_csv(plan, path)
    recode(path, encoding)


def _loans(n: float) -> str:
    """A number of loans as a person reads it: whole, or two decimals where loans are split."""
    return f"{n:,.0f}" if abs(n - round(n)) < 1e-6 else f"{n:,.2f}"

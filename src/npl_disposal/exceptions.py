"""Exceptions raised by npl_disposal.

Every exception derives from :class:`NplDisposalError` and from the built-in that
fits it, so ``except ValueError`` keeps working in code that does not know this
library. Each message says what is wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by whoever raises with a table, not here
    import pandas as pd

__all__ = [
    "ChannelWarning",
    "ExcelUnavailableError",
    "InfeasiblePolicyError",
    "MigrationMatrixError",
    "MigrationWarning",
    "NotFittedError",
    "NplDisposalError",
    "OutputError",
    "PolicyError",
    "PortfolioValidationError",
    "SolverError",
    "SolverUnavailableError",
]

#: Columns of the ``problems`` table carried by :class:`PortfolioValidationError`.
PROBLEM_COLUMNS = ["file", "row", "loan_id", "column", "value", "problem", "allowed"]

_SHOWN = 20


class NplDisposalError(Exception):
    """Base class of every error raised by npl_disposal."""


class PortfolioValidationError(NplDisposalError, ValueError):
    """Input tables (loans, branches, options, history) failed validation.

    ``problems`` is a DataFrame with one row per problem found, all rows checked
    before raising, and columns ``file, row, loan_id, column, value, problem,
    allowed``; ``column`` is the canonical name (a message names the header as the
    file wrote it too: ``贷款余额 (balance)``). ``row`` is the 1-based data row (the
    header is not counted, blank rows are), so a CSV row ``r`` is on line ``r + 1``.
    """

    def __init__(
        self,
        problems: pd.DataFrame,
        what: str = "input",
        headers: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        """``headers``: (file, canonical column) -> the header that file wrote for it."""
        self.problems = problems.reset_index(drop=True)
        super().__init__(_format_problems(self.problems, what, headers or {}))


class PolicyError(NplDisposalError, ValueError):
    """The policy (``policy.toml``, a :class:`~npl_disposal.Policy`, or solver settings) is invalid.

    ``problems`` lists each problem as ``(location, message)``.
    """

    def __init__(self, problems: list[tuple[str, str]], source: str = "policy") -> None:
        self.problems = list(problems)
        lines = [f"{source}: {len(problems)} problem(s); fix them and run again:"]
        lines += [f"  - {where}: {msg}" for where, msg in problems]
        super().__init__("\n".join(lines))


class InfeasiblePolicyError(NplDisposalError, RuntimeError):
    """No plan meets every rule and budget of the policy.

    ``conflicts`` is a DataFrame with columns ``rule, branch, needed, available,
    shortfall, unit, explanation`` naming the rules that cannot all hold and the
    amounts (CNY yuan or loans) by which they miss.
    """

    def __init__(self, conflicts: pd.DataFrame) -> None:
        self.conflicts = conflicts.reset_index(drop=True)
        lines = ["The policy cannot be met; no disposal plan satisfies every rule:"]
        lines += [f"  - {text}" for text in self.conflicts["explanation"].head(_SHOWN)]
        if len(self.conflicts) > _SHOWN:
            lines.append(f"  ... and {len(self.conflicts) - _SHOWN} more (see .conflicts)")
        lines.append(_advice(set(self.conflicts["rule"].astype(str))))
        super().__init__("\n".join(lines))


#: What a bank can change, per rule an infeasibility names (the rule's key prefix).
_ADVICE = {
    "tolerance": "set tolerance.enforce = false to check the tolerance without imposing it",
    "wage_pool.max_fall": "raise wage_pool.max_fall",
    "long_age": "raise long_age.months or the budgets of the channels that can take those loans",
    "profit.max_loss": "raise profit.max_loss",
    "whole_loan": "plan with mode = 'fractional'",
    "risk.min_tail_value": "lower [risk] min_tail_value",
}


def _advice(rules: set[str]) -> str:
    """The closing line: raise the budgets, plus what fits the rules named."""
    tips = [tip for key, tip in _ADVICE.items() if any(r.startswith(key) for r in rules)]
    extra = "; ".join(tips)
    return (
        "Raise the budgets named above"
        + (f" ({extra})" if extra else "")
        + ", or make more loans eligible for the channels."
    )


class OutputError(NplDisposalError, ValueError):
    """An output folder or file cannot be written as asked; the message says what to change."""


class SolverError(NplDisposalError, RuntimeError):
    """A solver failed in a way that is not the policy's fault."""


class SolverUnavailableError(NplDisposalError, ImportError):
    """The requested solver backend is not installed or not usable here."""


class MigrationMatrixError(NplDisposalError, ValueError):
    """A migration matrix (or a request made of one) is invalid; the message says how to fix it."""


class NotFittedError(NplDisposalError, AttributeError):
    """The estimator is used before ``fit(history)`` was called."""


class MigrationWarning(UserWarning):
    """An estimate or a matrix root is usable but approximate; the message says why."""


class ChannelWarning(UserWarning):
    """An options table's channel looks like a misspelt standard one and no budget limits it.

    Other channel names are allowed (a second AMC, a trust); one close to a standard
    name (``writeoff``) is probably a typo that would escape the standard channel's
    budget. The message names the file, the rows and what to do: rename it, or give
    it a ``[channels.NAME]`` table in the policy.
    """


class ExcelUnavailableError(NplDisposalError, ImportError):
    """A package Excel needs is not installed; the message says which and how to install it.

    openpyxl writes the report's workbook; python-calamine reads ``.xlsx`` input tables.
    """


def _format_problems(
    problems: pd.DataFrame, what: str, headers: Mapping[tuple[str, str], str]
) -> str:
    n = len(problems)
    lines = [f"{what}: {n} problem(s) found; nothing was written. Fix them and run again:"]
    for rec in problems.head(_SHOWN).itertuples(index=False):
        lines.append("  - " + _describe(rec, headers))
    if n > _SHOWN:
        lines.append(f"  ... and {n - _SHOWN} more (the error's .problems table lists all)")
    return "\n".join(lines)


def _describe(rec: object, headers: Mapping[tuple[str, str], str]) -> str:
    import pandas as pd

    get = rec.__getattribute__
    where = [str(get("file"))] if get("file") else []
    if not pd.isna(get("row")):
        where.append(f"row {int(get('row'))}")
    loan_id = get("loan_id")
    if loan_id is not None and not pd.isna(loan_id) and loan_id != "":
        where.append(f"loan_id {get('loan_id')}")
    column = get("column")
    if column:
        written = headers.get((str(get("file")), str(column)))
        where.append(f"column {written} ({column})" if written else f"column {column}")
    text = ", ".join(where) + f": {get('problem')}"
    value = get("value")
    if (
        value is not None
        and value is not pd.NA
        and not (isinstance(value, float) and pd.isna(value))
        and value not in ("", "<missing>")
    ):
        text += f" (got {value!r})"
    if get("allowed"):
        text += f"; allowed: {get('allowed')}"
    return text

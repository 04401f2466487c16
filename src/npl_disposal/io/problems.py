"""The problem log: every bad cell of a table, collected, then one error listing them all.

The checks of :mod:`npl_disposal.io.tables` and the readers of the options, scenarios
and schedule tables flag whole columns at once; :meth:`ProblemLog.raise_if_any` raises
one :class:`~npl_disposal.exceptions.PortfolioValidationError` naming the file, row,
id, column, value and what is allowed for each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from npl_disposal.exceptions import PROBLEM_COLUMNS, PortfolioValidationError
from npl_disposal.io.rows import RowNumbers, row_numbers

__all__ = ["ProblemLog"]


class ProblemLog:
    """Collects validation problems, vectorised: one call flags every bad row of a column."""

    def __init__(
        self,
        file: str,
        ids: np.ndarray | ExtensionArray | None = None,
        id_label: str = "loan_id",
        numbered: bool = True,
        rows: RowNumbers | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``ids`` label the flagged rows; ``numbered=False``: rows not of ``file`` (no row).

        ``rows`` numbers the rows as the file does (:func:`row_numbers`); ``headers`` gives
        the file's own header of a canonical column, where it differs.
        """
        self.file = file
        self.ids = ids
        self.id_label = id_label
        self.numbered = numbered
        self.rows = rows
        self._headers = {(file, name): str(h) for name, h in (headers or {}).items()}
        self._parts: list[pd.DataFrame] = []
        self._bad: dict[str, np.ndarray] = {}

    @classmethod
    def for_table(
        cls,
        file: str,
        frame: pd.DataFrame,
        ids: np.ndarray | ExtensionArray | None = None,
        id_label: str = "loan_id",
    ) -> ProblemLog:
        """A log of a table :func:`read_table` read: rows and headers named as in its file."""
        headers = frame.attrs.get("headers")
        return cls(file, ids, id_label, rows=row_numbers(frame),
                   headers=headers if isinstance(headers, dict) else None)  # fmt: skip

    def flag(
        self,
        mask: np.ndarray | pd.Series,
        column: str,
        values: pd.Series | np.ndarray | None,
        problem: str | np.ndarray,
        allowed: str,
    ) -> None:
        """Record ``problem`` for every row where ``mask`` is true.

        ``problem`` is one text, or an array of texts (one per row of the table).
        """
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        self._bad[column] = self._bad[column] | mask if column in self._bad else mask
        text = pd.Series(
            np.asarray(problem, dtype=object)[rows]
            if isinstance(problem, np.ndarray)
            else [problem] * rows.size,
            dtype=object,
        )
        if isinstance(values, pd.Series):  # convert only the flagged cells
            shown = pd.Series(values.iloc[rows].to_numpy(dtype=object), dtype=object)
        elif values is not None:
            shown = pd.Series(np.asarray(values, dtype=object)[rows], dtype=object)
        else:
            shown = pd.Series([None] * rows.size, dtype=object)
        loan = pd.Series([None] * rows.size, dtype=object)
        if self.ids is not None and self.id_label == "loan_id":
            loan = pd.Series(self.ids[rows], dtype=object)
        elif self.ids is not None:
            text = _labelled(self.id_label, pd.Series(self.ids[rows], dtype=object), text)
        part = pd.DataFrame(
            {
                "file": self.file,
                "row": self._numbers(rows) if self.numbered else None,
                "loan_id": loan,
                "column": column,
                "value": shown.map(_show),
                "problem": text,
                "allowed": allowed,
            }
        )
        self._parts.append(part)

    def _numbers(self, rows: np.ndarray) -> np.ndarray:
        return rows + 1 if self.rows is None else self.rows.of(rows)

    def concerns(self, column: str) -> bool:
        """Whether any problem recorded concerns ``column``."""
        return any(bool((part["column"] == column).any()) for part in self._parts)

    def ok(self, *columns: str) -> np.ndarray | bool:
        """Rows where none of ``columns`` has been flagged (so later checks skip bad cells)."""
        good: np.ndarray | bool = True
        for column in columns:
            if column in self._bad:
                good = good & ~self._bad[column]
        return good

    def note(self, column: str, problem: str, allowed: str = "", row: int | None = None) -> None:
        """Record a problem that concerns a whole column or the whole table."""
        self._parts.append(
            pd.DataFrame(
                [[self.file, row, None, column, None, problem, allowed]], columns=PROBLEM_COLUMNS
            )
        )

    def extend(self, other: ProblemLog) -> None:
        """Append the problems of another log (another file)."""
        self._parts.extend(other._parts)
        self._headers.update(other._headers)

    def __bool__(self) -> bool:
        return bool(self._parts)

    def frame(self) -> pd.DataFrame:
        """All problems as a DataFrame with the columns of ``PROBLEM_COLUMNS``."""
        if not self._parts:
            return pd.DataFrame(columns=PROBLEM_COLUMNS)
        out = pd.concat(self._parts, ignore_index=True)
        out["row"] = out["row"].astype("Int64")
        order = pd.Categorical(out["file"], categories=out["file"].unique())
        out = out.assign(_f=order).sort_values(["_f", "row"], kind="stable", na_position="first")
        out = out.drop(columns="_f").reset_index(drop=True)
        return out[PROBLEM_COLUMNS]

    def raise_if_any(self, what: str) -> None:
        """Raise one PortfolioValidationError listing every problem, if there is any."""
        if self:
            raise PortfolioValidationError(self.frame(), what, headers=self._headers)


def _labelled(label: str, ids: pd.Series, text: pd.Series) -> pd.Series:
    """``text`` after ``"{label} {id}: "`` where the row has an id (none where it is missing)."""
    named = ids.notna() & (ids.astype(str).str.strip() != "")
    prefix = (label + " " + ids.astype(str) + ": ").where(named, "")
    return prefix + text


def _show(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "<missing>"
    return value

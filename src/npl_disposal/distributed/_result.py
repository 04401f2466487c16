"""The result of a solve over partitions."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from npl_disposal.distributed._storage import _list_parquet, _read_parquet
from npl_disposal.io.csv_output import OUTPUT_ENCODING, check_encoding, recode, write_csv
from npl_disposal.io.output import Writer, replace_folder
from npl_disposal.solvers.result import SolverReport, Status, constraint_records, html_view

PLAN_COLUMNS = ["loan_id", "channel", "share"]


@dataclass(frozen=True, eq=False)
class PartitionedResult:
    """A disposal plan solved over partitions, with its value, proven bound and budgets.

    The fields mean what they mean on :class:`~npl_disposal.AllocationResult`:
    ``objective`` and ``bound`` in CNY yuan, ``gap = (bound - objective) /
    |bound|``, ``constraints`` each rule's usage, limit, slack and (fractional
    mode) shadow price. The plan itself is in ``out`` (one Parquet file per input
    partition, ``loan_id, channel, share``); when no ``out`` was given it is
    gathered into ``plan``. ``partitions`` has per file its loans, the loans the
    coordinator saw (``open_loans``), the plan's rows and value; ``seconds`` the
    time of each phase (validate, value, build, solve, write, total);
    ``peak_memory_mb`` each worker's peak resident memory.
    """

    status: Status
    mode: str
    objective: float
    bound: float
    gap: float
    constraints: pd.DataFrame
    blocks: Mapping[str, float]
    solver: SolverReport
    partitions: pd.DataFrame
    seconds: Mapping[str, float]
    out: str | None = None
    plan: pd.DataFrame | None = field(default=None, repr=False)
    peak_memory_mb: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_loans(self) -> int:
        """Number of loans over every partition."""
        return int(self.partitions["loans"].sum()) if len(self.partitions) else 0

    def binding(self) -> pd.DataFrame:
        """The rules at their limit, with their shadow prices."""
        return self.constraints[self.constraints["binding"]]

    def read_plan(self, storage_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The whole plan as one DataFrame (from ``plan`` or the files in ``out``)."""
        if self.plan is not None:
            return self.plan
        if self.out is None:
            return pd.DataFrame(columns=PLAN_COLUMNS)
        files = _list_parquet(self.out, storage_options)
        return pd.concat(
            [_read_parquet(url, storage_options) for url in files.urls], ignore_index=True
        )

    def summary(self) -> str:
        """What a risk officer reads first: status, value, gap and binding budgets."""
        lines = [
            f"{self.status.value} {self.mode} plan for {self.n_loans:,} loans in "
            f"{len(self.partitions)} partitions: value CNY {self.objective / 1e6:,.2f}m, "
            f"bound CNY {self.bound / 1e6:,.2f}m, gap {self.gap:.2e} "
            f"({self.solver.iterations} pricing passes, {self.solver.open_loans:,} loans "
            f"sent to the coordinator, {self.solver.seconds:.2f} s)",
            "  " + ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items()),
        ]
        binding = self.binding()
        if len(binding):
            lines.append("binding: " + ", ".join(binding["name"]))
        if self.out is not None:
            lines.append(f"plan written to {self.out}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<PartitionedResult {self.status.value} {self.mode}, {self.n_loans:,} loans in "
            f"{len(self.partitions)} partitions: value CNY {self.objective / 1e6:,.2f}m, "
            f"bound CNY {self.bound / 1e6:,.2f}m, gap {self.gap:.1e}>"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: status, value, bound, gap and the partitions."""
        shown = self.partitions.copy()
        if "value" in shown:
            shown["value"] = shown["value"] / 1e6
            shown = shown.rename(columns={"value": "value (CNY m)"})
        return html_view(
            "PartitionedResult",
            {"status": self.status.value, "mode": self.mode, "loans": f"{self.n_loans:,}",
             "value (CNY m)": f"{self.objective / 1e6:,.2f}",
             "bound (CNY m)": f"{self.bound / 1e6:,.2f}", "gap": f"{self.gap:.1e}"},
            shown,
        )  # fmt: skip

    def write(
        self, directory: str | os.PathLike[str], encoding: str = OUTPUT_ENCODING
    ) -> list[Path]:
        """Write ``summary.json``, ``partitions.csv`` and (when gathered) ``plan.csv``.

        The plan written to ``out`` by the solve stays there; ``plan.csv`` is written
        only when the plan was gathered (``out`` not given). The folder is replaced as
        one, and the CSV files are in ``encoding``, as
        :meth:`~npl_disposal.AllocationResult.write` does.
        """
        check_encoding(encoding)
        summary = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        files: dict[str, Writer] = {
            "summary.json": lambda p: p.write_text(summary, encoding="utf-8"),
            "partitions.csv": lambda p: self.partitions.to_csv(p, index=False, encoding=encoding),
        }
        if self.plan is not None:
            plan = self.plan
            files["plan.csv"] = lambda p: _write_plan(plan, p, encoding)
        return replace_folder(directory, files)

    def to_dict(self) -> dict[str, Any]:
        """Status, value, bound, gap, blocks, constraints and timings as plain data."""
        return {
            "status": self.status.value,
            "mode": self.mode,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "loans": self.n_loans,
            "partitions": len(self.partitions),
            "blocks": dict(self.blocks),
            "constraints": constraint_records(self.constraints),
            "seconds": dict(self.seconds),
            "out": self.out,
        }


def _write_plan(plan: pd.DataFrame, path: Path, encoding: str) -> None:
    """The plan through :func:`~npl_disposal.io.csv_output.write_csv` (UTF-8), then recoded."""
    write_csv(plan, path)
    recode(path, encoding)

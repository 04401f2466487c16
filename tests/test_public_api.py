"""The public surface: ``npl_disposal.__all__`` is exactly the names below, each documented.

Renaming or dropping a public name fails here on purpose: it breaks users' code, so
update this list (and the CHANGELOG) deliberately.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

import npl_disposal

EXPECTED = {
    # errors
    "ExcelUnavailableError",
    "InfeasiblePolicyError",
    "NplDisposalError",
    "OutputError",
    "PolicyError",
    "PortfolioValidationError",
    "SolverError",
    "SolverUnavailableError",
    # data: portfolio, policy, migration, valuation
    "MigrationEstimator",
    "MigrationMatrix",
    "Policy",
    "Portfolio",
    "ValuationAssumptions",
    "estimate_migration",
    "load_policy",
    "read_branches",
    "read_loans",
    "read_options",
    "read_portfolio",
    "value_options",
    # recovery scenarios
    "RiskFigures",
    "RiskFrontier",
    "Scenarios",
    "Stress",
    "read_scenarios",
    "risk_frontier",
    "stress_scenarios",
    # the problem, its solution and its check
    "AllocationProblem",
    "AllocationResult",
    "SolverReport",
    "Status",
    "Verification",
    "build_problem",
    "solve",
    "verify_plan",
    # process-wide memory settings, for programs (the library never calls them itself)
    "keep_freed_memory",
    "release_memory",
    "__version__",
}

PUBLIC = sorted(set(npl_disposal.__all__) - {"__version__"})


def test_all_is_the_expected_list() -> None:
    names = list(npl_disposal.__all__)
    assert len(names) == len(set(names)), "duplicate names in __all__"
    assert set(names) - EXPECTED == set(), "new public name(s): add them to EXPECTED"
    assert EXPECTED - set(names) == set(), "public name(s) removed or renamed"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from npl_disposal import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(npl_disposal.__all__)


def test_version() -> None:
    from npl_disposal import __version__

    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?\w+)*", __version__)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_imports_and_is_documented(name: str) -> None:
    obj = getattr(importlib.import_module("npl_disposal"), name)
    assert obj.__module__.startswith("npl_disposal."), f"{name} comes from {obj.__module__}"
    # The object's own docstring (inspect.getdoc would borrow a parent class's), and not
    # the "Name(field, ...)" signature a dataclass gets when it has none.
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    assert doc and doc.strip(), f"{name} has no docstring"
    assert not doc.startswith(f"{name}("), f"{name} has only the dataclass's generated docstring"


#: ``npl_disposal.reporting``'s public names: the report, the workbook, the labels, the tapes,
#: the console's tables.
REPORTING = {
    "EXCEL_HINT", "LANGUAGES", "REPORT_NAME", "TABLE_IDS", "TAPE_FIELDS", "WORKBOOK_NAME",
    "WORKBOOK_PLAN_ROWS", "WORKBOOK_SHEETS", "LoanTape", "compliance_table", "disposal_summary",
    "labels", "loan_tapes", "packages_table", "render_report", "render_schedule_report",
    "render_workbook", "report_tables", "require_openpyxl", "write_report", "write_tapes",
    "write_workbook", "readable", "table_text",
}  # fmt: skip


def test_reporting_all_is_the_expected_list() -> None:
    reporting = importlib.import_module("npl_disposal.reporting")
    assert set(reporting.__all__) == REPORTING
    for name in REPORTING:
        obj = getattr(reporting, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            assert doc and doc.strip() and not doc.startswith(f"{name}("), name

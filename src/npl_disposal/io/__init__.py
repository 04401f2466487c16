"""Input tables: the loan, branch and options tables read, validated and cleaned.

Files (CSV, Parquet) or DataFrames with English or Chinese headers come in; the
canonical columns of :mod:`npl_disposal.io.schema` in canonical dtypes come out, or one
:class:`~npl_disposal.PortfolioValidationError` naming every bad cell.
"""

from npl_disposal.io.csv_output import write_csv
from npl_disposal.io.options import read_options
from npl_disposal.io.portfolio import Portfolio, read_branches, read_loans, read_portfolio
from npl_disposal.io.tables import TableSource, read_table

__all__ = [
    "Portfolio",
    "TableSource",
    "read_branches",
    "read_loans",
    "read_options",
    "read_portfolio",
    "read_table",
    "write_csv",
]

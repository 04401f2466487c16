"""Data to try the library on: synthetic portfolios and histories, and the bundled sample.

:func:`make_portfolio` draws, from one seed and fully vectorised, a portfolio in the
canonical layout of the input files (``docs/model.md``):

* ``loans`` -- one row per non-performing loan, every column of
  :data:`npl_disposal.io.schema.LOAN_COLUMNS`, money in CNY yuan rounded to cents;
* ``branches`` -- per branch its inclusive small/micro loans (performing + NPL), profit,
  wage-pool rate and start-of-period inclusive loans;
* ``options`` -- per loan and eligible channel its value, profit impact and derecognised
  share. **These channel economics are synthetic** (simple closed-form recoveries, AMC
  prices and costs chosen to look plausible); the library's own valuation layer replaces
  them for real work.

:meth:`SyntheticPortfolio.policy_dict` proposes budgets, sized from what is eligible, under
which several constraints bind and a whole-loan plan is known to exist.

Calibration in one paragraph (sources and every parameter: ``docs/calibration.md``): the
bank's NPL ratio is 1.59 % (NFRA, commercial banks, end-2023) and the inclusive small/micro
tolerance is that ratio plus 3 percentage points (State Council executive meeting,
5 June 2019); inclusive loans are small/micro loans with a credit line of at most
CNY 10 million (CBIRC); specific provisions start at the PBoC 2002 guidance rates
(substandard 25 %, doubtful 50 %, loss 100 %) and are drawn within ranges; bulk-transfer
prices average about 30 % of principal plus interest (Credit Asset Registration & Transfer
Center pilot report 2022: 30.19 %; unsecured personal packages 2.65 %); securitisation keeps
a 5 % risk retention (PBoC/CBRC announcement, December 2013); government guarantees cover
40-80 % of a loss (National Financing Guarantee Fund: the bank keeps at least 20 %).
Balances, ages, class mix, collateral and recoveries are assumptions.

``make_history`` draws loan-month histories of a known migration chain;
:func:`sample_path` gives the files of the bundled sample and :func:`write_sample` copies
them into a folder.
"""

from npl_disposal.datasets._calibration import (
    BANK_NPL_RATIO,
    COLLATERAL_TYPES,
    INCLUSIVE_CREDIT_LIMIT,
    LONG_AGE_MONTHS,
    TOLERANCE_MARGIN,
)
from npl_disposal.datasets.histories import make_history
from npl_disposal.datasets.portfolios import SyntheticPortfolio, make_portfolio
from npl_disposal.datasets.sample import SAMPLE_FILES, sample_path, write_sample

__all__ = [
    "BANK_NPL_RATIO",
    "COLLATERAL_TYPES",
    "INCLUSIVE_CREDIT_LIMIT",
    "LONG_AGE_MONTHS",
    "SAMPLE_FILES",
    "TOLERANCE_MARGIN",
    "SyntheticPortfolio",
    "make_history",
    "make_portfolio",
    "sample_path",
    "write_sample",
]

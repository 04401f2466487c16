"""The synthetic portfolios' figures: regulatory ones and the assumptions.

The regulatory figures are sourced in ``docs/calibration.md``; the others (loans,
channel economics, branches, budgets) are assumptions.
"""

from __future__ import annotations

# --- Regulatory figures (sourced: docs/calibration.md) --------------------------------------
#: Commercial banks' NPL ratio, end-2023 (NFRA quarterly statistics).
BANK_NPL_RATIO = 0.0159
#: Inclusive small/micro NPL tolerance above the bank's ratio (State Council, 2019).
TOLERANCE_MARGIN = 0.03
#: Credit line (CNY yuan) up to which a small/micro loan counts as inclusive (普惠型).
INCLUSIVE_CREDIT_LIMIT = 10_000_000.0
#: NPL age (months) from which the policy asks for disposal (synthetic policy choice).
LONG_AGE_MONTHS = 36
#: Specific provision ranges by class (PBoC 2002 guidance rates 25 % / 50 % / 100 % within).
PROVISION_RATE_RANGE = ((0.25, 0.50), (0.50, 0.80), (0.95, 1.00))
#: Government financing guarantee cover of the loss (the bank keeps at least 20 %).
GUARANTEE_COVER_RANGE = (0.40, 0.80)
#: Share of a securitised loan that leaves the NPL stock (5 % risk retention).
SECURITISATION_DERECOGNISED = 0.95
#: Days past due at which each class typically starts (90+ / 180+ / 360+ days).
DPD_FLOOR = (90.0, 180.0, 360.0)

# --- Portfolio assumptions ------------------------------------------------------------------
SMALL_MICRO_SHARE = 0.88
INCLUSIVE_SHARE_OF_SMALL_MICRO = 0.85
#: Loan count shares of substandard, doubtful, loss.
CLASS_SHARES = (0.45, 0.35, 0.20)
#: Mean months since the loan became non-performing, by class (gamma, shape 1.5).
MEAN_AGE_MONTHS = (10.0, 22.0, 40.0)
AGE_SHAPE = 1.5
MAX_AGE_MONTHS = 180.0
#: Lognormal balance: median (CNY yuan) and log-sigma, small/micro and other borrowers.
BALANCE_MEDIAN = {"small_micro": 300_000.0, "other": 4_000_000.0}
BALANCE_SIGMA = 1.0
MIN_BALANCE = 1_000.0
COLLATERAL_TYPES = ("none", "real_estate", "equipment", "receivables")
COLLATERAL_TYPE_SHARES = (0.40, 0.42, 0.10, 0.08)
#: Median collateral value / balance and its log-sigma, by collateral type.
COLLATERAL_TO_BALANCE = (0.0, 0.80, 0.50, 0.40)
COLLATERAL_SIGMA = 0.5
GUARANTEED_SHARE_OF_SMALL_MICRO = 0.15
#: Contract rate (per year) used to accrue interest receivable.
INTEREST_RATE = 0.05
INDUSTRIES = (
    "manufacturing", "wholesale_retail", "construction", "accommodation_catering",
    "agriculture", "transport_logistics", "business_services", "other",
)  # fmt: skip
INDUSTRY_SHARES = (0.24, 0.30, 0.08, 0.08, 0.07, 0.07, 0.08, 0.08)
#: Probability that the borrower is viable for restructuring, by class, at age 0.
VIABLE_SHARE = (0.55, 0.30, 0.08)
VIABILITY_DECAY_MONTHS = 36.0
#: Legal recourse starts this many months after default (uniform range), then accrues at
#: a uniform 40-100 % pace.
RECOURSE_LAG_MONTHS = (3.0, 12.0)
DAYS_PER_MONTH = 30.4

# --- Synthetic channel economics (assumptions) ----------------------------------------------
UNSECURED_RECOVERY = (0.40, 0.22, 0.06)
RECOVERY_DECAY_MONTHS = 36.0
COLLATERAL_DECAY_MONTHS = 120.0
LIQUIDATION_RATE = (0.0, 0.60, 0.35, 0.30)
GUARANTEE_PAY_RATE = 0.90
YEARS_TO_RECOVER = (1.5, 2.0, 2.5)
BANK_DISCOUNT_RATE = 0.08
COLLECTION_COST = 0.03
WRITE_OFF_RECOVERY = (0.03, 0.10)
WRITE_OFF_MIN_RECOURSE_DAYS = 180.0
WRITE_OFF_MIN_AGE_MONTHS = 24.0
#: AMC price as a share of principal plus interest before age decay and noise.
BULK_PRICE = {"secured": 0.40, "unsecured": 0.06}
BULK_CLASS_FACTOR = (1.15, 1.00, 0.80)
BULK_AGE_DECAY_MONTHS = 60.0
BULK_PRICE_SIGMA = 0.2
BULK_FEES = 0.02
#: An AMC pays at most this share of the recoveries the bank expects from collection.
BULK_PRICE_CAP = 0.8
BULK_INELIGIBLE_SHARE = 0.03
SECURITISATION_GRANULAR_BALANCE = 500_000.0
INVESTOR_DISCOUNT_RATE = 0.06
SECURITISATION_SERVICING = 0.06
REDEFAULT_PROBABILITY = (0.30, 0.45)
REDEFAULT_PER_MONTH = 0.005
RESTRUCTURED_PV_FACTOR = 0.90
MODIFICATION_LOSS = 0.02

# --- Branch assumptions ---------------------------------------------------------------------
BRANCH_DIRICHLET_ALPHA = 1.5
INCLUSIVE_NPL_RATIO_RANGE = (0.015, 0.042)
#: Excess over the tolerance threshold of the branches drawn above it.
ABOVE_THRESHOLD_EXCESS = (0.003, 0.015)
#: Share of derecognisable inclusive NPL a branch above threshold needs, at most.
TOLERANCE_REACH = 0.6
#: Inclusive small/micro loans as a share of all loans (PBoC, March 2024: 13.5 %).
INCLUSIVE_SHARE_OF_LOANS = 0.135
PROFIT_ON_LOANS = (0.006, 0.012)
WAGE_RATE_RANGE = (0.08, 0.15)
INCLUSIVE_GROWTH_RANGE = (0.02, 0.08)

# --- Policy sizing --------------------------------------------------------------------------
BASELINE_HEADROOM = 1.10
DEMAND_SHARE = {"write_off": 0.8, "bulk_transfer": 0.8, "securitisation": 0.6,
                "restructure": 0.5, "profit": 0.9}  # fmt: skip
BULK_MIN_LOANS = 10
MIN_POOL_SHARE = 0.25
SECURITISATION_FIXED_COST = {"rate": 0.005, "floor": 300_000.0}

RETAIN, WRITE_OFF, BULK, SECURITISATION, RESTRUCTURE = range(5)

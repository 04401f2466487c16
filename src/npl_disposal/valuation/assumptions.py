"""The valuation's assumptions: every parameter with its unit, default and public source.

:class:`ValuationAssumptions` holds them; a ``[valuation]`` section of ``policy.toml``
overrides any of them (:meth:`ValuationAssumptions.from_policy`). ``docs/valuation.md``
lists each with its source (:data:`SOURCES`, :data:`PARAMETERS`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from npl_disposal.exceptions import PolicyError
from npl_disposal.policy import PolicyLike, load_policy
from npl_disposal.valuation._defaults import (
    CURE_STATES,
    HAZARD_DESTINATIONS,
    RESTRUCTURABLE,
    TYPES,
    bulk_curves_default,
    bulk_share_default,
    curves_default,
    haircuts_default,
    hazards_default,
    redefault_default,
    slopes_default,
)
from npl_disposal.valuation._parsing import parse
from npl_disposal.valuation.recovery import (
    CollateralHaircut,
    RecoveryCurve,
)

__all__ = [
    "CURE_STATES",
    "HAZARD_DESTINATIONS",
    "PARAMETERS",
    "RESTRUCTURABLE",
    "SOURCES",
    "TYPES",
    "ValuationAssumptions",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
Problem = tuple[str, str]


# --------------------------------------------------------------------------- sources

#: The public sources behind the defaults (key -> citation). ``assumption`` marks a choice.
SOURCES: dict[str, str] = {
    "assumption": "assumption (a plausible choice, not a published figure)",
    "generator": (
        "assumption; the same figure as the synthetic generator "
        "(docs/calibration.md, 'Channel economics')"
    ),
    "pilot": (
        "Credit Asset Registration & Transfer Center (银登中心), 《不良贷款转让试点业务年度报告"
        "(2022年)》, released 25 Jul 2023: pilot transfers to end-2022 sold at 30.19 % of "
        "principal + interest on average; batch personal NPLs at 2.65 % "
        "(http://cnwlgc.com/n/a172871.html). Calibration target; the functional form is an "
        "assumption"
    ),
    "retention": (
        "PBoC and CBRC announcement of 31 Dec 2013: originators keep at least 5 % of each "
        "securitisation's credit risk (https://m.163.com/money/article/9HEQL3EU00253B0H.html)"
    ),
    "tax_rate": (
        "PRC Enterprise Income Tax Law, promulgated 16 Mar 2007, effective 1 Jan 2008, "
        "art. 4: 25 % (https://www.chinalawandpractice.com/2007/04/01/prc-enterprise-"
        "income-tax-law; art. 4 quoted at http://lnmlw.com/Localtaxation/splzqgpncp.html)"
    ),
    "tax_sme": (
        "State Taxation Administration Announcement 2015 No. 25 on SME and agricultural "
        "loan losses: loans overdue over 1 year with a balance up to CNY 3 m are deductible "
        "on the original recourse records; CNY 3-10 m need judicial recourse records "
        "(https://cncitcc.com/article-detail/BPLl9JlB)"
    ),
    "observation": (
        "CBIRC and PBoC, 商业银行金融资产风险分类办法, issued 11 Feb 2023, effective 1 Jul 2023: "
        "restructured assets have an observation period of at least two consecutive "
        "repayment periods and not less than 1 year "
        "(https://bactf.com/news/china_politics/202311/1835181.html)"
    ),
    "auction": (
        "Supreme People's Court rules on online judicial auctions (2016, effective 1 Jan "
        "2017), art. 10: the reserve price is at least 70 % of the appraised value; SPC "
        "rules on auctions in civil enforcement (as amended 23 Dec 2020): each reduction "
        "after a failed auction at most 20 % (both quoted at "
        "http://www.shouzhilawyer.com/news-dt?article_id=86). 1 - 0.70 x 0.80 = 0.44 is the "
        "discount at a second auction; the 0.40 default (before fees and taxes) is an "
        "assumption within it"
    ),
    "loan_rate": (
        "new inclusive small/micro loans priced at 4.42 % in 2024 Q1 "
        "(http://chinasihan.com/news/cyzc/14674.html, as in docs/calibration.md)"
    ),
    "abs_2016": (
        "China Daily, 31 May 2016, 'China launches nonperforming loan securitization': "
        "Bank of China's senior NPL tranche at a 3.42 % coupon; China Merchants Bank sold "
        "CNY 233 m of notes on CNY 1.58 bn of credit-card NPLs, about 15 % of face "
        "(copy at http://m.orobotics.cn/business/2016-05/31/content_25549481.htm). Context "
        "only: the blended investor return is an assumption"
    ),
    "guarantee": (
        "assumption; the 2022 notice (seed) asks government guarantors to 依法依规及时履行"
        "代偿责任, 适度提高代偿比例 -- payment is neither certain nor immediate"
    ),
    "write_off": (
        "assumption; the Ministry of Finance's 金融企业呆账核销管理办法 lets banks write off "
        "small loans after a period of unsuccessful recourse without court evidence, but its "
        "text was not read here. The CNY 10 m small/micro threshold matches the inclusive "
        "credit limit (CBIRC, docs/calibration.md) and the upper band of the tax rule "
        "(State Taxation Administration Announcement 2015 No. 25)"
    ),
}


#: Per parameter: (kind, unit, meaning, source key in :data:`SOURCES`).
PARAMETERS: dict[str, tuple[str, str, str, str]] = {
    "discount_rate": (
        "rate", "per year", "bank's discount rate for workout cash flows", "generator"),
    "horizon_months": (
        "count", "months", "workout horizon; later recoveries count as nothing", "assumption"),
    "collection_cost": (
        "share", "of recoveries", "legal and collection costs of the bank's own workout",
        "assumption"),
    "interest_in_exposure": (
        "bool", "flag", "whether the workout also pursues interest receivable (retain, "
        "securitisation, restructure); false keeps the retain value <= balance", "assumption"),
    "hazards": (
        "hazards", "per month", "monthly probability that a retained loan of each class moves "
        "to another class, is recovered, repaid (cured) or written off; the rest stays",
        "assumption"),
    "recovery_curves": (
        "curves", "share of the uncovered claim", "unsecured recovery when the workout ends, by "
        "class, decaying with NPL age (initial, floor, half-life in months)", "assumption"),
    "collateral_haircuts": (
        "types", "share of market value", "forced-sale haircut at NPL age 0 by collateral type "
        "(real_estate from the auction rules; equipment, receivables, unknown and none: "
        "assumption)", "auction"),
    "collateral_age_slope": (
        "types", "share per month", "further haircut per month of NPL age, by type",
        "assumption"),
    "guarantee_pay_rate": (
        "share", "of claims", "share of guarantee claims the guarantor honours", "guarantee"),
    "guarantee_lag_months": (
        "months", "months", "delay from the end of the workout to the guarantee payment",
        "guarantee"),
    "write_off_recourse_days": (
        "days", "days", "legal recourse after which doubtful / substandard loans within the "
        "simplified thresholds may be written off", "write_off"),
    "write_off_balance_small_micro": (
        "money", "CNY yuan", "simplified write-off threshold for small/micro loans",
        "write_off"),
    "write_off_balance_other": (
        "money", "CNY yuan", "simplified write-off threshold for other loans", "assumption"),
    "write_off_evidence_columns": (
        "columns", "column names", "optional boolean loan columns; true means legal evidence "
        "(court ruling, bankruptcy...) that makes the loan eligible for write-off and its loss "
        "deductible", "assumption"),
    "post_write_off_recovery": (
        "share", "of workout recoveries", "collections that continue after write-off "
        "(账销案存)", "assumption"),
    "post_write_off_cost": (
        "share", "of those collections", "cost of post-write-off collection (outsourced "
        "commissions)", "assumption"),
    "tax_rate": ("share", "of taxable income", "corporate income tax rate", "tax_rate"),
    "write_off_tax_deductible": (
        "bool", "flag", "whether the write-off loss is tax deductible (a tax saving in the "
        "write-off value)", "tax_sme"),
    "tax_simplified_balance": (
        "money", "CNY yuan", "balance up to which the write-off loss is deductible on the "
        "bank's own recourse records", "tax_sme"),
    "tax_deductible_share": (
        "share", "of the loss", "expected deductible share of larger write-offs without a "
        "legal-evidence flag", "assumption"),
    "tax_lag_months": (
        "months", "months", "delay until the tax saving is realised", "assumption"),
    "bulk_price_curves": (
        "curves", "share of the uncovered claim", "AMC's unsecured recovery expectation by "
        "class and NPL age", "pilot"),
    "bulk_price_share": (
        "npl_classes", "of the AMC's expected recovery", "what the AMC pays, by class, for "
        "the recovery it expects on principal + interest (its funding, time and margin)",
        "pilot"),
    "bulk_transaction_cost": (
        "share", "of the price", "legal, platform and due-diligence costs of a transfer",
        "assumption"),
    "securitisation_granular_balance": (
        "money", "CNY yuan", "unsecured loans up to this balance are granular enough to pool",
        "generator"),
    "investor_discount_rate": (
        "rate", "per year", "investors' blended required return on NPL notes", "abs_2016"),
    "securitisation_servicing_cost": (
        "share", "of pool recoveries", "servicing and collection cost of the pool",
        "generator"),
    "securitisation_issuance_cost": (
        "share", "of pool recoveries", "variable issuance costs (rating, legal, underwriting); "
        "the fixed cost is the policy's [securitisation] fixed_cost", "assumption"),
    "risk_retention": (
        "share", "of the pool", "share the originator keeps; derecognised = 1 - this",
        "retention"),
    "restructure_redefault": (
        "classes", "probability", "re-default probability of a restructured loan at NPL age 0, "
        "by class", "generator"),
    "restructure_redefault_per_month": (
        "share", "per month of NPL age", "rise of the re-default probability with age",
        "generator"),
    "restructure_redefault_max": (
        "share", "probability", "cap on the re-default probability", "generator"),
    "restructure_rate": (
        "rate", "per year", "contract rate of the restructured loan", "loan_rate"),
    "restructure_term_months": (
        "count", "months", "term of the restructured loan (equal instalments)", "assumption"),
    "restructure_concession": (
        "share", "of the claim", "principal forgiven in the restructuring", "assumption"),
    "restructure_cost": (
        "share", "of the balance", "legal and administrative cost of restructuring",
        "assumption"),
    "restructure_observation_months": (
        "observation", "months", "observation period before a restructured loan may be "
        "upgraded (>= 12, so derecognised = 0 this year)", "observation"),
}  # fmt: skip


# --------------------------------------------------------------------------- assumptions


@dataclass(frozen=True)
class ValuationAssumptions:
    """Every parameter of the valuation, with defaults (sources: ``docs/valuation.md``).

    Rates are per year, shares in [0, 1], money CNY yuan, ages and lags months. Build
    one from a ``[valuation]`` mapping with :meth:`from_dict` (partial: keys absent keep
    their defaults; nested tables are merged key by key) or from a policy with
    :meth:`from_policy`. Construction validates every field and raises one
    :class:`~npl_disposal.exceptions.PolicyError` naming each bad ``[valuation] key``.
    """

    # -- general
    discount_rate: float = 0.08
    horizon_months: int = 120
    collection_cost: float = 0.05
    interest_in_exposure: bool = False
    # -- workout
    hazards: Mapping[str, Mapping[str, float]] = field(default_factory=hazards_default)
    recovery_curves: Mapping[str, RecoveryCurve] = field(default_factory=curves_default)
    collateral_haircuts: Mapping[str, float] = field(default_factory=haircuts_default)
    collateral_age_slope: Mapping[str, float] = field(default_factory=slopes_default)
    guarantee_pay_rate: float = 0.90
    guarantee_lag_months: float = 6.0
    # -- write-off
    write_off_recourse_days: float = 180.0
    write_off_balance_small_micro: float = 10_000_000.0
    write_off_balance_other: float = 5_000_000.0
    write_off_evidence_columns: tuple[str, ...] = ("legal_evidence",)
    post_write_off_recovery: float = 0.25
    post_write_off_cost: float = 0.30
    tax_rate: float = 0.25
    write_off_tax_deductible: bool = True
    tax_simplified_balance: float = 3_000_000.0
    tax_deductible_share: float = 0.5
    tax_lag_months: float = 12.0
    # -- bulk transfer
    bulk_price_curves: Mapping[str, RecoveryCurve] = field(default_factory=bulk_curves_default)
    bulk_price_share: Mapping[str, float] = field(default_factory=bulk_share_default)
    bulk_transaction_cost: float = 0.02
    # -- securitisation
    securitisation_granular_balance: float = 500_000.0
    investor_discount_rate: float = 0.07
    securitisation_servicing_cost: float = 0.06
    securitisation_issuance_cost: float = 0.02
    risk_retention: float = 0.05
    # -- restructuring
    restructure_redefault: Mapping[str, float] = field(default_factory=redefault_default)
    restructure_redefault_per_month: float = 0.005
    restructure_redefault_max: float = 0.90
    restructure_rate: float = 0.045
    restructure_term_months: int = 36
    restructure_concession: float = 0.0
    restructure_cost: float = 0.01
    restructure_observation_months: float = 12.0

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        for f in dataclasses.fields(self):
            value, found = parse(f.name, PARAMETERS[f.name][0], getattr(self, f.name))
            problems += found
            if not found:
                object.__setattr__(self, f.name, value)
        if problems:
            raise PolicyError(problems, source="[valuation]")

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Mapping proxies cannot be pickled; rebuild from the plain dictionary.
        return (_assumptions_from_dict, (self.to_dict(),))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, source: str = "[valuation]"
    ) -> ValuationAssumptions:
        """Build from a ``[valuation]`` mapping; absent keys keep their defaults.

        Every problem (unknown key, negative rate, share outside [0, 1], ...) is
        collected and raised in one :class:`~npl_disposal.exceptions.PolicyError`
        whose locations read ``[valuation] key``.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError([("[valuation]", f"must be a table of keys; got {data!r}")], source)
        names = tuple(f.name for f in dataclasses.fields(cls))
        problems: list[Problem] = []
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(
                    (
                        f"[valuation] {key}",
                        f"unknown key{hint}; see docs/valuation.md for the allowed keys",
                    )
                )
        known = {k: v for k, v in data.items() if k in names}
        try:
            built = cls(**known)
        except PolicyError as exc:
            problems += exc.problems
        if problems:
            raise PolicyError(problems, source)
        return built

    @classmethod
    def from_policy(cls, policy: PolicyLike) -> ValuationAssumptions:
        """Build from the ``[valuation]`` section of a policy (a Policy, mapping or path)."""
        pol = load_policy(policy)
        return cls.from_dict(pol.valuation)

    def to_dict(self) -> dict[str, Any]:
        """Every parameter as plain Python values, as written in ``[valuation]``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = PARAMETERS[f.name][0]
            if kind == "curves":
                out[f.name] = {k: c.to_dict() for k, c in value.items()}
            elif kind == "hazards":
                out[f.name] = {k: dict(row) for k, row in value.items()}
            elif kind in ("types", "classes", "npl_classes"):
                out[f.name] = dict(value)
            elif kind == "columns":
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    def replace(self, **changes: Any) -> ValuationAssumptions:
        """A copy with some parameters changed (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def parameter_table(cls) -> pd.DataFrame:
        """Every parameter with its default, unit, meaning and source (for the docs)."""
        default = cls().to_dict()
        rows = []
        for f in dataclasses.fields(cls):
            _, unit, meaning, source = PARAMETERS[f.name]
            rows.append(
                {
                    "parameter": f.name,
                    "default": default[f.name],
                    "unit": unit,
                    "meaning": meaning,
                    "source": SOURCES[source],
                }
            )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ arrays

    def haircuts(self) -> tuple[CollateralHaircut, ...]:
        """Collateral haircuts in the order ``(*COLLATERAL_TYPES, "unknown")``."""
        return tuple(
            CollateralHaircut(self.collateral_haircuts[t], self.collateral_age_slope[t])
            for t in TYPES
        )


def _assumptions_from_dict(data: Mapping[str, Any]) -> ValuationAssumptions:
    """Unpickling helper."""
    return ValuationAssumptions.from_dict(data)


"""Drawn cases from the synthetic portfolios: ``make_portfolio`` with a perturbed policy."""


from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from npl_disposal.datasets import SyntheticPortfolio, make_portfolio
from strategies.cases import CONSTRAINT_SECTIONS, Case, PolicyDict


@functools.lru_cache(maxsize=256)
def _synthetic(n_loans: int, n_branches: int, seed: int) -> tuple[SyntheticPortfolio, PolicyDict]:
    sp = make_portfolio(n_loans, n_branches, seed)
    return sp, sp.policy_dict()


def _inclusive_ratios(loans: pd.DataFrame, branches: pd.DataFrame) -> np.ndarray:
    inclusive = loans[loans["inclusive"].astype(bool)]
    npl = inclusive.groupby(inclusive["branch"].astype(object))["balance"].sum()
    have = branches["branch"].astype(object).map(npl).fillna(0.0).to_numpy(dtype=float)
    return have / branches["inclusive_loans"].to_numpy(dtype=float)


@st.composite
def tolerance_sections(
    draw: st.DrawFn, loans: pd.DataFrame, branches: pd.DataFrame
) -> dict[str, Any]:
    """A ``[tolerance]`` section; when enforced, τ sits below the worst branch's ratio."""
    ratios = _inclusive_ratios(loans, branches)
    top = float(ratios.max()) if ratios.size else 0.0
    enforce = draw(st.booleans())
    # With no inclusive NPL anywhere, any threshold; else one the worst branch is above.
    tau = draw(st.floats(0.01, 0.2)) if top <= 0.0 else top * draw(st.floats(0.6, 0.999))
    margin = min(0.03, tau / 2.0)
    return {"bank_npl_ratio": tau - margin, "margin": margin, "enforce": enforce}


@st.composite
def synthetic_cases(
    draw: st.DrawFn,
    min_loans: int = 3,
    max_loans: int = 60,
    max_branches: int = 4,
    require: tuple[str, ...] = (),
) -> Case:
    """``make_portfolio`` tables with a randomly perturbed ``policy_dict()``.

    Sections named in ``require`` are always present; the others are present at random.
    """
    n = draw(st.integers(min_loans, max_loans), label="n_loans")
    k = draw(st.integers(1, max_branches), label="n_branches")
    seed = draw(st.integers(0, 10_000), label="seed")
    sp, base = _synthetic(n, k, seed)
    policy: PolicyDict = {"mode": {"mode": "whole_loan"}}
    for name in CONSTRAINT_SECTIONS:
        if name not in require and not draw(st.booleans(), label=f"has {name}"):
            continue
        body = dict(base[name])
        scale = lambda: draw(st.floats(0.3, 2.0))  # noqa: E731
        if name == "write_off":
            body["quota"] = round(body["quota"] * scale(), 2)
        elif name == "bulk_transfer":
            body["capacity"] = round(body["capacity"] * scale(), 2)
            body["min_loans"] = draw(st.integers(0, 3))
        elif name == "securitisation":
            body["max_pool"] = round(body["max_pool"] * scale(), 2)
            body["min_pool"] = round(body["max_pool"] * draw(st.sampled_from([0.0, 0.1, 0.3])), 2)
            body["fixed_cost"] = round(body["fixed_cost"] * draw(st.floats(0.0, 2.0)), 2)
        elif name == "restructure":
            body["max_loans"] = round(max(body["max_loans"], 1) * scale())
        elif name == "profit":
            body["max_loss"] = round(body["max_loss"] * scale(), 2)
        elif name == "long_age":
            body["months"] = draw(st.sampled_from([12, 24, 36, 60]))
        elif name == "tolerance":
            body = draw(tolerance_sections(sp.loans, sp.branches))
        policy[name] = body
    return Case(
        sp.loans,
        sp.branches,
        sp.options,
        policy,
        f"synthetic(n={n}, branches={k}, seed={seed})",
    )


# --------------------------------------------------------------------------- hand-built source



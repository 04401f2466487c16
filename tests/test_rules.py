"""Branch figures of docs/model.md on hand-computed cases, to the cent."""

from __future__ import annotations

import pandas as pd
import pytest

from npl_disposal import Policy, read_portfolio
from npl_disposal.model.figures import BRANCH_FIGURES, branch_figures

LOANS = pd.DataFrame(
    {
        "loan_id": ["a1", "a2", "a3", "b1", "c1"],
        "branch": ["A", "A", "A", "B", "C"],
        "balance": [40.0, 20.0, 30.0, 10.0, 20.0],
        "provision": [30.0, 10.0, 5.0, 5.0, 10.0],
        "classification": ["loss", "doubtful", "substandard", "doubtful", "substandard"],
        "npl_age_months": [40, 10, 5, 12, 3],
        "small_micro": [True, True, True, True, True],
        "inclusive": [True, True, False, True, True],
    }
)
BRANCHES = pd.DataFrame(
    {
        "branch": ["A", "B", "C"],
        "inclusive_loans": [1000.0, 500.0, 100.0],
        "profit": [100.0, 50.0, 30.0],
        "wage_rate": [0.1, 0.2, 0.1],
        "inclusive_loans_start": [900.0, 450.0, 95.0],
    }
)
OPTIONS = pd.DataFrame(
    {
        "loan_id": ["a1", "a1", "a2", "a2", "a3", "b1", "b1", "c1"],
        "channel": [
            "retain",
            "write_off",
            "retain",
            "securitisation",
            "retain",
            "retain",
            "securitisation",
            "retain",
        ],
        "value": [1.0, 2.0, 5.0, 6.0, 20.0, 3.0, 4.0, 12.0],
        "pnl": [-5.0, -10.0, -2.0, -4.0, 0.0, -0.5, -1.0, -2.0],
        "derecognised": [0.0, 1.0, 0.0, 0.95, 0.0, 0.0, 0.95, 0.0],
    }
)
PLAN = pd.DataFrame(
    {
        "loan_id": ["a1", "a2", "a3", "b1", "c1"],
        "channel": ["write_off", "securitisation", "retain", "securitisation", "retain"],
        "share": [1.0, 1.0, 1.0, 1.0, 1.0],
    }
)
POLICY = Policy.from_dict(
    {
        "tolerance": {"bank_npl_ratio": 0.02, "margin": 0.03},
        "securitisation": {"max_pool": 1e6, "fixed_cost": 6.0},
        "wage_pool": {"consider_share": 0.5, "rate": 0.3},
    }
)


@pytest.fixture(scope="module")
def figures() -> pd.DataFrame:
    pf = read_portfolio(LOANS, BRANCHES)
    out = branch_figures(pf, POLICY, PLAN, OPTIONS, {"securitisation": 1.0})
    return out.set_index("branch")


def test_columns_in_contract_order(figures: pd.DataFrame) -> None:
    assert list(figures.columns[: len(BRANCH_FIGURES)]) == BRANCH_FIGURES
    assert {"growth", "growth_restored"} <= set(figures.columns)


def test_branch_a_by_hand(figures: pd.DataFrame) -> None:
    a = figures.loc["A"]
    # N = 40 + 20 = 60 inclusive NPL; D = 40 * 1 + 20 * 0.95 = 59.
    assert a["ratio_before"] == pytest.approx(60 / 1000)
    assert a["ratio_after"] == pytest.approx(1 / 941)
    assert a["threshold"] == pytest.approx(0.05)
    assert bool(a["within"]) is True
    # pnl -10 - 4 + 0 = -14; securitisation fixed cost 6 shared 20:10 -> 4 for A.
    assert a["npl_loss"] == pytest.approx(18.0, abs=0.005)
    assert a["profit_after"] == pytest.approx(82.0, abs=0.005)
    assert a["relief"] == pytest.approx(9.0, abs=0.005)
    assert a["wage_pool"] == pytest.approx(0.1 * 91.0, abs=0.005)
    assert a["written_off"] == pytest.approx(40.0)
    assert a["growth"] == pytest.approx((941 - 900) / 900)
    assert a["growth_restored"] == pytest.approx((941 + 40 - 900) / 900)
    assert a["increment_restored"] == pytest.approx(81.0, abs=0.005)
    assert a["headroom"] == pytest.approx((0.05 * 941 - 1) / 0.95, abs=0.005)


def test_branch_b_by_hand(figures: pd.DataFrame) -> None:
    b = figures.loc["B"]
    assert b["ratio_after"] == pytest.approx(0.5 / 490.5)
    assert b["npl_loss"] == pytest.approx(3.0, abs=0.005)  # 1 + its fixed-cost share 2
    assert b["relief"] == pytest.approx(1.5, abs=0.005)
    assert b["wage_pool"] == pytest.approx(0.2 * 48.5, abs=0.005)
    assert b["growth"] == pytest.approx(b["growth_restored"])


def test_branch_outside_tolerance_gets_no_relief(figures: pd.DataFrame) -> None:
    c = figures.loc["C"]
    assert c["ratio_after"] == pytest.approx(0.2)
    assert bool(c["within"]) is False
    assert c["npl_loss"] == pytest.approx(2.0)
    assert c["relief"] == 0.0
    assert c["wage_pool"] == pytest.approx(0.1 * 28.0, abs=0.005)
    assert c["headroom"] == pytest.approx((0.05 * 100 - 20) / 0.95, abs=0.005)


def test_before_disposal() -> None:
    pf = read_portfolio(LOANS, BRANCHES)
    before = branch_figures(pf, POLICY).set_index("branch")
    assert (before["ratio_before"] == before["ratio_after"]).all()
    assert (before["npl_loss"] == 0).all()
    assert before.loc["A", "wage_pool"] == pytest.approx(10.0)


def test_consider_share_one_means_no_relief() -> None:
    pf = read_portfolio(LOANS, BRANCHES)
    policy = POLICY.with_section("wage_pool", consider_share=1.0)
    out = branch_figures(pf, policy, PLAN, OPTIONS, {"securitisation": 1.0})
    assert (out["relief"] == 0).all()


def test_branch_figures_reuse_the_verified_join(monkeypatch: pytest.MonkeyPatch) -> None:
    """A solve's figures join its tables once (with verification); the figures are the same."""
    from npl_disposal import build_problem, solve
    from npl_disposal.datasets import make_portfolio
    from npl_disposal.model._join import PlanJoin
    from npl_disposal.valuation import value_options

    data = make_portfolio(400, 5, seed=9)
    problem = build_problem(read_portfolio(data.loans, data.branches), data.policy_dict(),
                            value_options(data.loans))  # fmt: skip
    result = solve(problem, mode="fractional")
    made = []
    original = PlanJoin.__init__

    def counted(self: PlanJoin, *args: object, **kwargs: object) -> None:
        made.append(1)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PlanJoin, "__init__", counted)
    shared = result.branch_figures()
    assert made == []  # the join verification made is reused
    p = result.problem
    fresh = branch_figures(p.portfolio, p.policy, result.plan, p.options, result.blocks)
    assert made == [1]
    pd.testing.assert_frame_equal(shared, fresh)

"""Recovery scenarios: the reader, the tail mean, and plans that weigh a bad year.

Properties: with no aversion and no floor the plan is the expected-value plan; the
tail mean in summary.json is the one found by sorting the scenario values of
plan.csv; a plain HiGHS model of the same problem (scenario rows over every loan, no
aggregates) agrees in both modes; a floor never raises the objective; the verifier
catches a plan whose tail mean is below the floor.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_disposal import (
    AllocationProblem,
    InfeasiblePolicyError,
    Policy,
    PolicyError,
    PortfolioValidationError,
    Stress,
    build_problem,
    read_portfolio,
    read_scenarios,
    solve,
    stress_scenarios,
    verify_plan,
)
from npl_disposal.datasets import SyntheticPortfolio, make_portfolio
from npl_disposal.policy.risk import tail_mean
from npl_disposal.valuation import STANDARD_STRESSES

SEGMENTS = ("substandard", "doubtful", "loss")
CHANNELS = ("retain", "write_off", "bulk_transfer", "securitisation", "restructure")


@functools.lru_cache(maxsize=32)
def _portfolio(n: int, seed: int) -> SyntheticPortfolio:
    return make_portfolio(n, seed=seed)


def _scenarios(count: int, seed: int, spread: float = 0.4) -> pd.DataFrame:
    """Random factors on the kept channels (a sale fixes its price: factor 1 there)."""
    rng = np.random.default_rng(seed)
    prob = rng.dirichlet(np.ones(count))
    rows = [
        (f"s{k}", prob[k], c, g, float(rng.lognormal(-0.05, spread)))
        for k in range(count)
        for c in ("retain", "restructure", "securitisation")
        for g in SEGMENTS
    ]
    return pd.DataFrame(rows, columns=["scenario", "probability", "channel", "segment", "factor"])


def _policy(sp: SyntheticPortfolio, mode: str, risk: dict[str, object] | None) -> dict:
    pol = dict(sp.policy_dict())
    pol["mode"] = {"mode": mode}
    if risk is not None:
        pol["risk"] = risk
    return pol


def _expected_options(sp: SyntheticPortfolio, scen: pd.DataFrame) -> pd.DataFrame:
    """The options table with each value times its expected factor, computed plainly."""
    seg = sp.loans.set_index("loan_id")["classification"].astype(str)
    opts = sp.options.copy()
    opts["segment"] = opts["loan_id"].map(seg)
    prob = scen.groupby("scenario")["probability"].first()
    out = 0.0
    for name, p in prob.items():
        rows = scen[scen["scenario"] == name]
        f = opts.merge(rows, on=["channel", "segment"], how="left")["factor"].fillna(1.0)
        out = out + p * f.to_numpy()
    opts["value"] = opts["value"].to_numpy() * out
    return opts.drop(columns="segment")


def _plan_values(sp: SyntheticPortfolio, scen: pd.DataFrame, plan: pd.DataFrame,
                 fixed: float) -> pd.Series:  # fmt: skip
    """Each scenario's value of ``plan``, from the tables only, loan by loan."""
    seg = sp.loans.set_index("loan_id")["classification"].astype(str)
    rows = plan.merge(sp.options, on=["loan_id", "channel"])
    rows["segment"] = rows["loan_id"].map(seg)
    out = {}
    for name, group in scen.groupby("scenario", sort=False):
        f = rows.merge(group, on=["channel", "segment"], how="left")["factor"].fillna(1.0)
        out[name] = float((f.to_numpy() * rows["value"] * rows["share"]).sum()) - fixed
    return pd.Series(out)


# --------------------------------------------------------------------------- reading


def test_reader_names_every_bad_row_at_once() -> None:
    sp = _portfolio(200, 1)
    pf = read_portfolio(sp.loans, sp.branches)
    bad = pd.DataFrame({
        "scenario": ["base", "down", "down", "odd"],
        "probability": [0.5, 0.5, 0.4, 1.5],
        "channel": ["retain", "retain", "amc_x", "retain"],
        "segment": ["loss", "doubtful", "loss", "nowhere"],
        "factor": [1.0, 0.7, -0.2, 1.0],
    })  # fmt: skip
    with pytest.raises(PortfolioValidationError) as err:
        read_scenarios(bad, pf, CHANNELS)
    problems = err.value.problems
    assert set(problems["row"].dropna()) == {2, 3, 4}
    assert {"probability", "channel", "segment", "factor"} <= set(problems["column"])
    text = str(err.value)
    assert "amc_x" in text and "nowhere" in text and "sum to 2.5" in text


def test_chinese_channel_names_in_scenarios_are_the_standard_channels() -> None:
    from npl_disposal.io.schema import CHANNEL_NAMES_ZH

    sp = _portfolio(200, 1)
    pf = read_portfolio(sp.loans, sp.branches)
    scen = _scenarios(2, 0)
    chinese = scen.assign(channel=scen["channel"].map(CHANNEL_NAMES_ZH))
    assert read_scenarios(chinese, pf, CHANNELS).table["channel"].tolist() == (
        scen["channel"].tolist()
    )


def test_reader_refuses_a_missing_segment_column(tmp_path: Path) -> None:
    sp = _portfolio(200, 1)
    pf = read_portfolio(sp.loans, sp.branches)
    path = tmp_path / "scenarios.csv"
    _scenarios(2, 0).to_csv(path, index=False)
    with pytest.raises(PortfolioValidationError, match="no column 'grade'"):
        read_scenarios(path, pf, CHANNELS, segment_by="grade")
    read = read_scenarios(path, pf, CHANNELS)
    assert read.count == 2 and math.isclose(read.probability.sum(), 1.0)


def test_a_tail_without_scenarios_is_refused() -> None:
    sp = _portfolio(100, 1)
    with pytest.raises(PolicyError, match="no scenarios were given"):
        build_problem(sp.loans, _policy(sp, "fractional", {"aversion": 1.0}), sp.options,
                      sp.branches)  # fmt: skip
    plain = build_problem(sp.loans, _policy(sp, "fractional", {"alpha": 0.9}), sp.options,
                          sp.branches)  # fmt: skip
    assert plain.risk is None


def test_risk_section_keys_are_checked() -> None:
    with pytest.raises(PolicyError, match=r"\[risk\] alpha"):
        Policy.from_dict({"risk": {"alpha": 1.0}})
    with pytest.raises(PolicyError, match=r"\[risk\]"):
        Policy.from_dict({"risk": {"aversion": 1.0}, "schedule": {"periods": 4}})


# --------------------------------------------------------------------------- the tail mean


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=30), st.integers(0, 2**31),
       st.floats(0.0, 0.99))  # fmt: skip
def test_tail_mean_by_sorting_is_the_rockafellar_uryasev_maximum(
    values: list[float], seed: int, alpha: float
) -> None:
    v = np.array(values)
    p = np.random.default_rng(seed).dirichlet(np.ones(v.size))
    # The RU function is concave and piecewise linear in eta, its kinks at the values.
    ru = max(eta - p @ np.maximum(eta - v, 0.0) / (1.0 - alpha) for eta in v)
    assert tail_mean(v, p, alpha) == pytest.approx(ru, rel=1e-9, abs=1e-3)


# --------------------------------------------------------------------------- the plans


@settings(max_examples=6)
@given(st.integers(40, 160), st.integers(0, 50), st.integers(1, 12),
       st.sampled_from(["fractional", "whole_loan"]))  # fmt: skip
def test_no_aversion_gives_the_expected_value_plan(n: int, seed: int, count: int,
                                                   mode: str) -> None:  # fmt: skip
    sp = _portfolio(n, seed)
    scen = _scenarios(count, seed)
    with_risk = solve(build_problem(sp.loans, _policy(sp, mode, {"aversion": 0.0}), sp.options,
                                    sp.branches, scenarios=scen))  # fmt: skip
    expected = solve(build_problem(sp.loans, _policy(sp, mode, None),
                                   _expected_options(sp, scen), sp.branches))  # fmt: skip
    assert with_risk.objective == pytest.approx(expected.objective, rel=1e-6, abs=1.0)
    assert with_risk.risk is not None
    assert with_risk.risk.expected_value == pytest.approx(with_risk.verification.objective)


def test_summary_json_tail_mean_is_the_sorted_one(tmp_path: Path) -> None:
    sp = _portfolio(300, 4)
    scen = _scenarios(40, 4)
    pol = _policy(sp, "fractional", {"aversion": 1.0, "alpha": 0.9})
    result = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    result.write(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    plan = pd.read_csv(tmp_path / "out" / "plan.csv", dtype={"loan_id": str})
    fixed = sum(Policy.from_dict(pol).fixed_costs.get(k, 0.0) * v
                for k, v in summary["blocks"].items())  # fmt: skip
    values = _plan_values(sp, scen, plan, fixed)
    prob = scen.groupby("scenario", sort=False)["probability"].first().reindex(values.index)
    order = np.argsort(values.to_numpy())
    v, p = values.to_numpy()[order], prob.to_numpy()[order]
    cum = np.cumsum(p)
    k = int(np.searchsorted(cum, 0.1 - 1e-12))  # the scenario at the boundary
    tail = (p[:k] @ v[:k] + (0.1 - (cum[k - 1] if k else 0.0)) * v[k]) / 0.1
    assert summary["tail_mean"] == pytest.approx(tail, rel=1e-9)
    assert summary["alpha"] == 0.9
    assert summary["expected_value"] == pytest.approx(float(p @ v), rel=1e-9)
    for name, value in values.items():
        assert summary["scenarios"][name] == pytest.approx(value, rel=1e-9)
    assert summary["objective"] == pytest.approx(summary["expected_value"] + tail, rel=1e-9)


def _plain_highs(sp: SyntheticPortfolio, scen: pd.DataFrame, pol: dict, mode: str,
                 lam: float, alpha: float) -> float:  # fmt: skip
    """The same problem in plain HiGHS: section 4's rows, then eta, u_s and V_s over loans."""
    base = build_problem(sp.loans, _policy(sp, mode, None), _expected_options(sp, scen),
                         sp.branches)  # fmt: skip
    n, m = base.n_loans, base.n_channels
    seg = sp.loans["classification"].astype(str).to_numpy()
    names = list(pd.unique(scen["scenario"]))
    prob = scen.groupby("scenario")["probability"].first().reindex(names).to_numpy()
    raw = build_problem(sp.loans, _policy(sp, mode, None), sp.options, sp.branches).value
    factor = np.ones((len(names), n, m))
    for _, r in scen.iterrows():
        if r["channel"] in base.channels:
            factor[names.index(r["scenario"]), seg == r["segment"],
                   base.channels.index(r["channel"])] = r["factor"]  # fmt: skip
    nx, nb, ns = n * m, len(base.blocks), len(names)
    scale = 1e-6
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    inf = highspy.kHighsInf
    cost = np.concatenate([base.value.ravel(), base.block_cost, [lam], -lam * prob / (1 - alpha)])
    upper = np.concatenate([base.eligible.ravel().astype(float), np.ones(nb), [inf],
                            np.full(ns, inf)])  # fmt: skip
    lower = np.concatenate([np.zeros(nx + nb), [-inf], np.zeros(ns)])
    h.addVars(cost.size, lower, upper)
    h.changeColsCost(cost.size, np.arange(cost.size), -cost * scale)
    if mode == "whole_loan":
        ints = [j for j in range(nx)] + [nx + b for b, blk in enumerate(base.blocks) if blk.integer]
        h.changeColsIntegrality(len(ints), np.array(ints, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * len(ints)))  # fmt: skip
    for i in range(n):
        h.addRow(1.0, 1.0, m, np.arange(i * m, i * m + m, dtype=np.int32), np.ones(m))
    rows = base.rows
    mat = rows.matrix.tocsr()
    for r in range(len(rows)):
        cols = np.concatenate([mat.indices[mat.indptr[r]:mat.indptr[r + 1]],
                               nx + np.flatnonzero(rows.blocks[r])]).astype(np.int32)  # fmt: skip
        vals = np.concatenate([mat.data[mat.indptr[r]:mat.indptr[r + 1]],
                               rows.blocks[r][rows.blocks[r] != 0]])  # fmt: skip
        h.addRow(rows.lower[r] * scale if np.isfinite(rows.lower[r]) else -inf,
                 rows.upper[r] * scale if np.isfinite(rows.upper[r]) else inf,
                 cols.size, cols, vals * scale)  # fmt: skip
    fixed = np.array([-b.fixed_cost if b.kind == "switch" else 0.0 for b in base.blocks])
    for s in range(ns):  # u_s - eta + V_s >= 0, V_s over every loan
        coef = np.concatenate([(factor[s] * raw).ravel(), fixed, [-1.0], np.eye(ns)[s]])
        keep = np.flatnonzero(coef)
        h.addRow(0.0, inf, keep.size, keep.astype(np.int32), coef[keep] * scale)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return -h.getInfo().objective_function_value / scale


@settings(max_examples=4)
@given(st.integers(30, 80), st.integers(0, 30), st.integers(2, 8),
       st.sampled_from([0.5, 1.0, 3.0]), st.sampled_from(["fractional", "whole_loan"]))  # fmt: skip
def test_plain_highs_model_agrees(n: int, seed: int, count: int, lam: float, mode: str) -> None:
    sp = _portfolio(n, seed)
    scen = _scenarios(count, seed + 1)
    pol = _policy(sp, mode, {"aversion": lam, "alpha": 0.8})
    ours = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    plain = _plain_highs(sp, scen, pol, mode, lam, 0.8)
    assert ours.objective == pytest.approx(plain, rel=1e-6, abs=1.0)


@settings(max_examples=4)
@given(st.integers(40, 120), st.integers(0, 30), st.floats(0.0, 1.0))
def test_a_floor_never_raises_the_objective(n: int, seed: int, where: float) -> None:
    sp = _portfolio(n, seed)
    scen = _scenarios(6, seed)
    free = solve(build_problem(sp.loans, _policy(sp, "fractional", {"aversion": 0.5}),
                               sp.options, sp.branches, scenarios=scen))  # fmt: skip
    assert free.risk is not None
    floor = free.risk.tail_mean * (1.0 + 0.02 * where)
    pol = _policy(sp, "fractional", {"aversion": 0.5, "min_tail_value": floor})
    try:
        floored = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    except InfeasiblePolicyError as err:
        assert "can reach at most" in str(err)
        return
    assert floored.objective <= free.objective + 1e-6 * abs(free.objective) + 1.0
    assert floored.risk is not None and floored.risk.tail_mean >= floor - 1.0


def test_an_unreachable_floor_is_explained_with_amounts() -> None:
    sp = _portfolio(300, 2)
    scen = _scenarios(5, 2)
    pol = _policy(sp, "fractional", {"aversion": 0.0, "min_tail_value": 1e12})
    with pytest.raises(InfeasiblePolicyError) as err:
        solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    text = str(err.value)
    assert "the tail mean at α=0.95 can reach at most CNY" in text
    assert "the policy asks 1,000,000.00m" in text
    assert list(err.value.conflicts["rule"]) == ["risk.min_tail_value"]


def test_verifier_catches_a_plan_below_the_floor() -> None:
    sp = _portfolio(300, 5)
    scen = _scenarios(8, 5)
    pol = _policy(sp, "fractional", {"aversion": 2.0})
    result = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    assert result.risk is not None and result.verification.ok
    policy = Policy.from_dict(_policy(sp, "fractional", {
        "aversion": 2.0, "min_tail_value": result.risk.tail_mean + 1e6}))  # fmt: skip
    p = result.problem
    check = verify_plan(p.portfolio, policy, p.options, result.plan, on=result.blocks,
                        scenarios=p.risk.scenarios if p.risk is not None else None)  # fmt: skip
    assert not check.ok
    assert list(check.violations["rule"]) == ["risk.min_tail_value"]
    # Tampering: every retained loan's value halves in one scenario; the tail follows.
    tampered = scen.copy()
    tampered.loc[tampered["channel"] == "retain", "factor"] *= 0.5
    scenarios = read_scenarios(tampered, p.portfolio, p.channels)
    again = verify_plan(p.portfolio, p.policy, p.options, result.plan, on=result.blocks,
                        scenarios=scenarios)  # fmt: skip
    assert again.risk is not None and again.risk.tail_mean < result.risk.tail_mean


def test_aversion_moves_value_towards_the_tail() -> None:
    sp = _portfolio(400, 6)
    scen = _scenarios(20, 6, spread=0.6)
    out = []
    for lam in (0.0, 1.0, 4.0):
        pol = _policy(sp, "fractional", {"aversion": lam})
        r = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
        assert r.risk is not None
        out.append((r.risk.expected_value, r.risk.tail_mean))
    ev, tail = zip(*out, strict=True)
    assert all(a >= b - 1.0 for a, b in itertools.pairwise(ev))
    assert all(a <= b + 1.0 for a, b in itertools.pairwise(tail))


@pytest.mark.parametrize("mode", ["fractional", "whole_loan"])
@pytest.mark.parametrize("lam", [0.0, 2.0])
def test_plain_highs_model_agrees_in_both_modes(mode: str, lam: float) -> None:
    sp = _portfolio(60, 11)
    scen = _scenarios(6, 12)
    pol = _policy(sp, mode, {"aversion": lam, "alpha": 0.75})
    ours = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen))
    assert ours.mode == mode
    assert ours.objective == pytest.approx(_plain_highs(sp, scen, pol, mode, lam, 0.75),
                                           rel=1e-6, abs=1.0)  # fmt: skip


# --------------------------------------------------------------------------- stresses


def test_stress_scenarios_are_valid_and_fall_where_stressed() -> None:
    sp = _portfolio(500, 7)
    pf = read_portfolio(sp.loans, sp.branches)
    table = stress_scenarios(pf)
    read = read_scenarios(table, pf, CHANNELS)  # the table the model reads, validated
    assert read.names == tuple(s.name for s in STANDARD_STRESSES)
    assert read.probability.sum() == pytest.approx(1.0)
    f = table.set_index(["scenario", "channel", "segment"])["factor"]
    assert (f.loc["base"] == 1.0).all()
    assert np.allclose(f.loc["amc_down_33"].loc["bulk_transfer"], 2.0 / 3.0, rtol=1e-6)
    assert (f.loc["property_down_20"] <= 1.0 + 1e-12).all()
    assert (f.loc["recession"].loc["retain"] < 1.0).all()


def test_a_users_stress_and_its_scenarios_plan() -> None:
    sp = _portfolio(300, 8)
    mine = (Stress("calm", 3.0), Stress("crash", 1.0, collateral_price=0.5, cure_rate=0.2))
    table = stress_scenarios(sp.loans, mine, branches=sp.branches)
    assert set(table["probability"]) == {0.75, 0.25}
    pol = _policy(sp, "fractional", {"aversion": 1.0, "alpha": 0.8})
    result = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=table))
    assert result.risk is not None
    assert result.risk.tail_mean == pytest.approx(float(result.risk.values["crash"]))
    with pytest.raises(ValueError, match="collateral_price"):
        Stress("bad", 0.5, collateral_price=-1.0)


@pytest.mark.parametrize("mode", ["fractional", "whole_loan"])
def test_pulp_backend_agrees(mode: str) -> None:
    pytest.importorskip("pulp")
    from npl_disposal.solvers import available_solvers

    if "PULP_CBC_CMD" not in available_solvers():
        pytest.skip("CBC is not installed")
    sp = _portfolio(80, 3)
    problem = build_problem(sp.loans, _policy(sp, mode, {"aversion": 1.0, "alpha": 0.8}),
                            sp.options, sp.branches, scenarios=_scenarios(5, 3))  # fmt: skip
    ours, cbc = solve(problem), solve(problem, solver="PULP_CBC_CMD")
    assert cbc.verification.ok and cbc.risk is not None
    assert cbc.objective == pytest.approx(ours.objective, rel=1e-6)


# --------------------------------------------------------------------------- speed-ups


def test_many_scenarios_enter_the_lp_lazily_and_agree() -> None:
    """With 200 scenarios most scenario rows never enter; the optimum is the full model's."""
    from npl_disposal.solvers._formulation import GrowingLP, lazy_rows
    from npl_disposal.solvers._pricing import argmax_shares, reduced_values

    sp = _portfolio(60, 5)
    scen = _scenarios(200, 6)
    for lam in (0.5, 3.0):
        pol = _policy(sp, "fractional", {"aversion": lam, "alpha": 0.9})
        problem = build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen)
        base = argmax_shares(reduced_values(problem, np.zeros(len(problem.rows))))
        lp = GrowingLP(problem, np.ones(problem.n_loans, dtype=bool), base, start=base)
        sol = lp.solve()
        assert sol.status == "optimal"
        scenario_rows = lazy_rows(problem)
        assert 0 < int((scenario_rows & ~lp.lazy).sum()) < 200
        y = lp.y(sol.x)
        level = problem.rows.blocks[scenario_rows] @ y
        assert (level >= problem.rows.lower[scenario_rows] - 1.0).all()  # within a yuan
        ours = solve(problem)
        assert ours.objective == pytest.approx(_plain_highs(sp, scen, pol, "fractional", lam, 0.9),
                                               rel=1e-6, abs=1.0)  # fmt: skip


@functools.lru_cache(maxsize=2)
def _tail_problem(n: int) -> AllocationProblem:
    """A fractional problem with the tail model: 300 loans and 20 scenarios (aversion 1 at
    alpha 0.9), or 9,000 loans and 100 scenarios (alpha 0.95); not to be changed."""
    small = n == 300
    sp = _portfolio(n, 8 if small else 4)
    pol = _policy(sp, "fractional", {"aversion": 1.0, "alpha": 0.9 if small else 0.95})
    scenarios = _scenarios(20, 9) if small else _scenarios(100, 5)
    return build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scenarios)


def test_a_grouped_problem_is_a_restriction_of_the_portfolio() -> None:
    """Every plan of the groups, given to each member loan, has the same rows and value."""
    from npl_disposal.solvers._aggregate import group_problem, loan_groups

    problem = _tail_problem(300)
    rng = np.random.default_rng(3)
    group = loan_groups(problem, rng.normal(0.0, 1e-3, len(problem.rows)))
    groups = group_problem(problem, group)
    assert 1 < groups.n_loans < problem.n_loans
    assert (groups.eligible[group] == problem.eligible).all()  # members share their channels
    shares = rng.random(groups.eligible.shape) * groups.eligible
    shares /= shares.sum(axis=1, keepdims=True)
    loans = shares[group]
    assert np.allclose(problem.rows.matrix @ loans.ravel(), groups.rows.matrix @ shares.ravel(),
                       rtol=1e-12, atol=1e-6)  # fmt: skip
    assert float((problem.value * loans).sum()) == pytest.approx(
        float((groups.value * shares).sum()), rel=1e-12)
    assert groups.balance.sum() == pytest.approx(problem.balance.sum(), rel=1e-12)


def test_splitting_groups_sums_as_grouping_afresh() -> None:
    """Moving loans out of their groups gives the problem a fresh grouping would."""
    from npl_disposal.solvers._aggregate import group_problem, loan_groups, split_groups

    problem = _tail_problem(300)
    rng = np.random.default_rng(4)
    group = loan_groups(problem, rng.normal(0.0, 1e-3, len(problem.rows)))
    grouped = group_problem(problem, group)
    for moving in (40, 1, problem.n_loans):
        loans = np.sort(rng.choice(problem.n_loans, moving, replace=False))
        local = np.unique(rng.integers(0, 7, moving), return_inverse=True)[1].reshape(-1)
        new, split = split_groups(problem, group, grouped, loans, local)
        afresh = group_problem(problem, new)
        assert np.array_equal(np.unique(new), np.arange(split.n_loans))  # none empty
        assert np.allclose(split.rows.matrix.toarray(), afresh.rows.matrix.toarray(),
                           rtol=1e-12, atol=0)  # fmt: skip
        for name in ("balance", "value", "pnl", "derecognised", "eligible", "loan_ids"):
            assert np.array_equal(getattr(split, name), getattr(afresh, name)), name
        stayed = np.setdiff1d(np.arange(problem.n_loans), loans)
        together = pd.crosstab(group[stayed], new[stayed]).to_numpy() > 0
        assert (together.sum(axis=1) == 1).all()  # loans that stay stay together
        assert not np.isin(new[loans], new[stayed]).any()  # moved loans join no old group
        group, grouped = new, split


def test_segment_keys_never_mix_segments() -> None:
    from npl_disposal.solvers._aggregate import segment_keys

    problem, sp = _tail_problem(300), _portfolio(300, 8)
    keys = pd.DataFrame({"key": segment_keys(problem),
                         "pattern": [row.tobytes() for row in problem.eligible],
                         "segment": sp.loans["classification"].astype(str).to_numpy()})
    assert (keys["key"] >= 0).all()
    assert (keys.groupby(["key", "pattern"])["segment"].nunique() == 1).all()


def test_grouped_prices_reach_the_same_optimum() -> None:
    """Above the sample size the tail model's prices come from groups; the LP optimum is one."""
    from npl_disposal.solvers._pricing import solve_fractional

    problem = _tail_problem(9000)
    grouped = solve_fractional(problem, seed=1)
    plain = solve_fractional(problem, seed=1, grouped=False)
    assert grouped.status == plain.status == "optimal"
    assert grouped.objective == pytest.approx(plain.objective, rel=1e-9)
    assert grouped.bound >= grouped.objective - 1e-6 * abs(grouped.objective)
    assert grouped.bound == pytest.approx(grouped.objective, rel=1e-8)


def test_a_solve_from_a_kept_grouping_reaches_the_optimum() -> None:
    """With the on/off blocks fixed, a solve from the relaxation's last grouping and
    prices reaches the plain pricing loop's optimum."""
    from npl_disposal.solvers._pricing import solve_fractional

    problem = _tail_problem(9000)
    relaxed = solve_fractional(problem, seed=1)
    assert relaxed.status == "optimal" and relaxed.groups is not None
    assert relaxed.groups.problem.n_loans < problem.n_loans
    combo = np.where(problem.switches, 1.0, np.nan)
    reused = solve_fractional(problem, seed=1, fix_blocks=combo, prices=relaxed.duals,
                              groups=relaxed.groups)  # fmt: skip
    anew = solve_fractional(problem, seed=1, fix_blocks=combo, grouped=False)
    assert reused.status == anew.status == "optimal"
    assert reused.objective == pytest.approx(anew.objective, rel=1e-9)
    assert reused.bound == pytest.approx(reused.objective, rel=1e-8)


def test_a_restart_the_primal_simplex_gives_up_is_solved_cold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should HiGHS's primal simplex end a warm restart without a status (by the plain
    pricing loop here), the LP is solved cold by the dual simplex: the same optimum."""
    from npl_disposal.solvers import _formulation, _highs
    from npl_disposal.solvers._pricing import solve_fractional

    problem = _tail_problem(9000)
    expected = solve_fractional(problem, seed=1, grouped=False)
    run = _highs.HighsSession.run
    gave_up: list[int] = []

    def primal_gives_up(
        session: _highs.HighsSession, time_limit: float | None = None
    ) -> _highs.ArraySolution:
        if session.h.getOptionValue("simplex_strategy")[1] == _formulation.PRIMAL:
            gave_up.append(1)
            return _highs.ArraySolution("error", np.zeros(0), np.zeros(0), math.nan, math.nan,
                                        0.0, "simulated")  # fmt: skip
        return run(session, time_limit)

    monkeypatch.setattr(_highs.HighsSession, "run", primal_gives_up)
    cold = solve_fractional(problem, seed=1, grouped=False)
    assert gave_up  # warm restarts were tried, and each fell back
    assert cold.status == "optimal"
    assert cold.objective == pytest.approx(expected.objective, rel=1e-9)


@pytest.mark.parametrize("mode", ["fractional", "whole_loan"])
def test_the_decomposition_agrees_with_plain_highs(mode: str) -> None:
    """The decomposition (lazy scenario rows, the combination search with tail rows) is exact."""
    sp = _portfolio(80, 13)
    scen = _scenarios(25, 14)
    pol = _policy(sp, mode, {"aversion": 1.5, "alpha": 0.9})
    ours = solve(build_problem(sp.loans, pol, sp.options, sp.branches, scenarios=scen),
                 method="decomposition")  # fmt: skip
    assert ours.status.value == "optimal"
    assert ours.objective == pytest.approx(_plain_highs(sp, scen, pol, mode, 1.5, 0.9),
                                           rel=2e-6, abs=1.0)  # fmt: skip

"""Partitioned portfolios on a local Dask cluster give the single-machine optimum.

The cluster (two single-threaded worker processes) is started once by the module's
fixture and closed at the end; ``solve_partitioned`` is pointed at it as at any
existing cluster. Small ``sample`` / ``free_target`` force the pricing loop (prices
out, open loans back) to run over several passes on a few thousand loans.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from npl_disposal import (  # noqa: E402
    InfeasiblePolicyError,
    PortfolioValidationError,
    Status,
    build_problem,
    read_portfolio,
    solve,
    value_options,
    verify_plan,
)
from npl_disposal.datasets import make_portfolio  # noqa: E402
from npl_disposal.distributed import (  # noqa: E402
    DaskUnavailableError,
    PartitionedResult,
    solve_partitioned,
    validate_partitioned,
    value_partitioned,
    write_partitioned,
)

PARTITIONS = 4
#: Forces several pricing passes on a few thousand loans (the defaults would send all).
LOOP = dict(sample=400, free_target=150)
#: The same for a few hundred loans.
FEW_LOOP = dict(sample=100, free_target=40)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


class Data:
    def __init__(self, root: Path, n_loans: int, seed: int) -> None:
        self.synthetic = make_portfolio(n_loans, 8, seed=seed)
        self.root = root
        self.loans_dir = root / "loans"
        self.options_dir = root / "options"
        self.branches = root / "branches.csv"
        self.policy = self.synthetic.policy_dict()
        write_partitioned(
            self.synthetic.loans,
            self.loans_dir,
            PARTITIONS,
            options=self.synthetic.options,
            options_path=self.options_dir,
        )
        self.synthetic.branches.to_csv(self.branches, index=False)
        self.portfolio = read_portfolio(self.synthetic.loans, self.synthetic.branches)

    def problem(
        self, options: pd.DataFrame | None = None, policy: dict[str, Any] | None = None
    ) -> Any:
        opts = self.synthetic.options if options is None else options
        return build_problem(self.portfolio, self.policy if policy is None else policy, opts)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return Data(tmp_path_factory.mktemp("partitioned"), 3000, 3)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return Data(tmp_path_factory.mktemp("small"), 1200, 1)


@pytest.fixture(scope="module")
def few(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return Data(tmp_path_factory.mktemp("few"), 400, 5)


def _verify(data: Data, result: PartitionedResult, problem: Any, whole_loan: bool) -> pd.DataFrame:
    plan = result.read_plan()
    check = verify_plan(
        problem.portfolio, problem.policy, problem.options, plan, on=result.blocks,
        whole_loan=whole_loan,
    )  # fmt: skip
    assert check.ok, check.summary()
    # the objective also weighs the wage-pool fall, as on one machine
    weighed = sum(-b.fixed_cost * result.blocks[b.name] for b in problem.blocks
                  if b.kind != "switch")  # fmt: skip
    assert check.objective + weighed == pytest.approx(result.objective, rel=1e-9)
    return plan


def test_fractional_equals_single_machine_and_plan_is_written_per_partition(
    client: Any, data: Data, tmp_path: Path
) -> None:
    problem = data.problem()
    single = solve(problem, "fractional")
    out = tmp_path / "plan"
    passes: list[str] = []
    result = solve_partitioned(
        data.loans_dir, data.branches, data.policy, client=client, mode="fractional",
        options=data.options_dir, out=out, progress=passes.append, **LOOP,
    )  # fmt: skip
    assert result.status is Status.OPTIMAL
    assert result.objective == pytest.approx(single.objective, rel=1e-6)
    assert result.bound >= result.objective - 1e-6 * abs(result.objective)
    assert result.gap <= 1e-6
    assert result.solver.iterations > 1, passes  # the pricing loop did run
    assert 0 < result.solver.open_loans < problem.n_loans  # not every loan was sent
    # one plan file per input partition, same names; every loan allocated exactly once
    inputs = sorted(p.name for p in data.loans_dir.glob("*.parquet"))
    assert sorted(p.name for p in out.iterdir()) == inputs
    assert not list(tmp_path.glob("plan.tmp-*"))
    plan = _verify(data, result, problem, whole_loan=False)
    assert list(plan.columns) == ["loan_id", "channel", "share"]
    totals = plan.groupby("loan_id")["share"].sum()
    assert set(totals.index) == set(data.synthetic.loans["loan_id"])
    np.testing.assert_allclose(totals.to_numpy(), 1.0, atol=1e-9)
    for name in inputs:
        part = pd.read_parquet(out / name)
        own = pd.read_parquet(data.loans_dir / name)["loan_id"]
        assert set(part["loan_id"]) == set(own)
    # the same rules with the same limits: the tolerance rows' from every partition's NPL
    ours = result.constraints.set_index("name")
    theirs = single.constraints.set_index("name")
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_allclose(ours["budget"], theirs["budget"], rtol=1e-12)
    assert ours["binding"].any() and (ours["shadow_price"] >= 0).all()
    assert result.partitions["loans"].sum() == problem.n_loans
    assert "optimal fractional plan" in result.summary()


def test_whole_loan_verified_within_its_gap_of_single_machine(client: Any, small: Data) -> None:
    problem = small.problem()
    single = solve(problem, "whole_loan")
    relaxed = solve(problem, "fractional")
    result = solve_partitioned(
        small.loans_dir, small.branches, small.policy, client=client, mode="whole_loan",
        options=small.options_dir, **LOOP,
    )  # fmt: skip
    assert result.plan is not None  # no out: gathered
    _verify(small, result, problem, whole_loan=True)
    assert set(result.plan["share"].round(9)) == {1.0}
    assert result.bound >= result.objective
    assert result.bound <= relaxed.objective * (1 + 1e-9)  # never above the LP optimum
    tolerance = result.bound - result.objective + 1e-6 * abs(result.bound)
    assert abs(result.objective - single.objective) <= tolerance
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert result.gap == pytest.approx(
        (result.bound - result.objective) / abs(result.bound), rel=1e-9, abs=1e-12
    )


def test_a_partitioned_result_writes_and_shows_itself_like_a_single_one(
    client: Any, small: Data, tmp_path: Path
) -> None:
    result = solve_partitioned(
        small.loans_dir, small.branches, small.policy, client=client, mode="fractional",
        options=small.options_dir, **LOOP,
    )  # fmt: skip
    written = result.write(tmp_path / "out")
    assert sorted(p.name for p in written) == ["partitions.csv", "plan.csv", "summary.json"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["objective"] == pytest.approx(result.objective, rel=1e-12)
    plan = pd.read_csv(tmp_path / "out" / "plan.csv", dtype={"loan_id": str})
    assert plan["share"].sum() == pytest.approx(result.n_loans, rel=1e-9)
    text = repr(result)
    assert "\n" not in text and len(text) < 200 and result.status.value in text
    assert f"{result.objective / 1e6:,.2f}" in text
    assert "PartitionedResult" in result._repr_html_() and "<table" in result._repr_html_()


def test_valuation_on_the_workers_matches_value_options(
    client: Any, small: Data, tmp_path: Path
) -> None:
    # the synthetic policy is sized for the synthetic options; the library's own
    # valuation loses more profit than it allows, so that budget is left out here
    policy = {k: v for k, v in small.policy.items() if k != "profit"}
    options_out = tmp_path / "valued"
    summary = value_partitioned(small.loans_dir, options_out, policy, client=client)
    assert list(summary["file"]) == sorted(p.name for p in small.loans_dir.glob("*.parquet"))
    mine = pd.concat([pd.read_parquet(p) for p in sorted(options_out.iterdir())])
    theirs = value_options(small.portfolio, policy=policy)
    assert summary["options"].sum() == len(theirs) == len(mine)
    np.testing.assert_allclose(mine["value"].to_numpy(), theirs["value"].to_numpy())
    # valued on the workers, solved with the default settings (every loan open here)
    result = solve_partitioned(
        small.loans_dir, small.branches, policy, client=client, mode="fractional"
    )
    single = solve(build_problem(small.portfolio, policy, theirs), "fractional")
    assert result.objective == pytest.approx(single.objective, rel=1e-6)


def _corrupt(data: Data, root: Path) -> Path:
    """A copy of the dataset with a bad balance in one file and a loan id in two files."""
    target = root / "bad"
    target.mkdir()
    for path in sorted(data.loans_dir.iterdir()):
        frame = pd.read_parquet(path)
        if path.name == "part-00002.parquet":
            frame.loc[4, "balance"] = -5.0
        if path.name == "part-00003.parquet":
            frame.loc[0, "loan_id"] = pd.read_parquet(data.loans_dir / "part-00000.parquet").loc[
                7, "loan_id"
            ]
        frame.to_parquet(target / path.name, index=False)
    return target


def test_validation_names_the_partition_file_and_writes_nothing(
    client: Any, small: Data, tmp_path: Path
) -> None:
    bad = _corrupt(small, tmp_path)
    out = tmp_path / "plan"
    with pytest.raises(PortfolioValidationError) as caught:
        solve_partitioned(
            bad, small.branches, small.policy, client=client, options=small.options_dir, out=out
        )
    problems = caught.value.problems
    balance = problems[problems["column"] == "balance"]
    assert list(balance["file"]) == ["part-00002.parquet"]
    assert list(balance["row"]) == [5]
    assert "part-00002.parquet, row 5" in str(caught.value)
    dup = problems[problems["problem"].str.contains("across partitions")]
    assert set(dup["file"]) == {"part-00000.parquet", "part-00003.parquet"}
    assert "nothing was written" in str(caught.value)
    assert not out.exists()
    assert not list(tmp_path.glob("plan.*"))
    with pytest.raises(PortfolioValidationError):  # the same checks without a solve
        validate_partitioned(bad, small.branches, client=client)


def test_infeasible_policy_is_explained_and_nothing_written(
    client: Any, small: Data, tmp_path: Path
) -> None:
    policy = {**small.policy, "write_off": {"quota": 1.0}}
    out = tmp_path / "plan"
    with pytest.raises(InfeasiblePolicyError) as caught:
        solve_partitioned(
            small.loans_dir, small.branches, policy, client=client, mode="fractional",
            options=small.options_dir, out=out, **LOOP,
        )  # fmt: skip
    assert "write_off.quota" in set(caught.value.conflicts["rule"])
    assert not out.exists() and not list(tmp_path.glob("plan.*"))


def test_time_limit_gives_a_verified_plan_or_none_and_writes_only_a_plan(
    client: Any, small: Data, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    result = solve_partitioned(
        small.loans_dir, small.branches, small.policy, client=client, mode="fractional",
        options=small.options_dir, out=out, time_limit=0.01, **LOOP,
    )  # fmt: skip
    assert result.status in (Status.FEASIBLE, Status.NO_SOLUTION)
    if result.status is Status.NO_SOLUTION:
        assert not out.exists()
    else:
        _verify(small, result, small.problem(), whole_loan=False)
    assert not list(tmp_path.glob("plan.*"))


def test_scheduler_address_connects_to_the_existing_cluster(client: Any, small: Data) -> None:
    summary = validate_partitioned(
        small.loans_dir, small.branches, client=client.scheduler.address, options=small.options_dir
    )
    assert summary["loans"].sum() == len(small.synthetic.loans)
    assert list(summary["file"]) == [f"part-{i:05d}.parquet" for i in range(PARTITIONS)]


def test_no_client_starts_a_local_cluster_and_closes_it(
    monkeypatch: pytest.MonkeyPatch, small: Data
) -> None:
    made: list[tuple[dict[str, Any], Any]] = []
    real = distributed.LocalCluster

    def local_cluster(**kwargs: Any) -> Any:
        # the worker processes are what the library asks for; run them in-process here
        cluster = real(**{**kwargs, "processes": False})
        made.append((kwargs, cluster))
        return cluster

    monkeypatch.setattr(distributed, "LocalCluster", local_cluster)
    summary = validate_partitioned(small.loans_dir, small.branches, n_workers=2)
    assert summary["loans"].sum() == len(small.synthetic.loans)
    ((kwargs, cluster),) = made
    assert kwargs["n_workers"] == 2 and kwargs["threads_per_worker"] == 1 and kwargs["processes"]
    assert cluster.status.name == "closed"


def test_missing_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch, small: Data) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(DaskUnavailableError, match=r"pip install 'npl-disposal\[dask\]'"):
        validate_partitioned(small.loans_dir, small.branches)
    assert issubclass(DaskUnavailableError, ImportError)


def _amc_options(options: pd.DataFrame, offered: pd.Series | None = None) -> pd.DataFrame:
    """The options with a channel ``amc_b`` paying 4 % more than bulk transfer (to ``offered``)."""
    bulk = options[options["channel"] == "bulk_transfer"]
    if offered is not None:
        bulk = bulk[bulk["loan_id"].isin(offered)]
    extra = 0.04 * bulk["value"]
    amc = bulk.assign(channel="amc_b", value=bulk["value"] + extra, pnl=bulk["pnl"] + extra)
    return pd.concat([options, amc], ignore_index=True)


def _first_partition_without(options: pd.DataFrame, loans: pd.DataFrame) -> pd.DataFrame:
    """Options where the first partition's loans are offered neither securitisation nor amc_b."""
    first = loans["loan_id"].iloc[: len(loans) // PARTITIONS]
    amc = _amc_options(options, loans["loan_id"].iloc[len(loans) // PARTITIONS :])
    return amc[~(amc["loan_id"].isin(first) & (amc["channel"] == "securitisation"))]


#: Wage pool in the objective, the loss counted at half where a branch ends within tolerance.
WAGE = {"consider_share": 0.5, "rate": 0.1, "weight": 1.0}
#: amc_b switched on when used: a minimum package, a fixed cost; no capacity (infinite).
AMC_UNCAPPED = {"min_loans": 5, "fixed_cost": 2e5}


def _case(data: Data, name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """A policy and options with terms whose rows need figures of every partition."""
    policy, options, loans = data.policy, data.synthetic.options, data.synthetic.loans
    checked = {**policy["tolerance"], "enforce": False}
    if name == "wage_pool_weight":
        return {**policy, "tolerance": checked, "wage_pool": WAGE}, options
    if name == "wage_pool_max_fall":
        fall = {"consider_share": 0.5, "rate": 0.1, "max_fall": 9e5}  # binds in B008
        return {**policy, "wage_pool": fall}, options
    if name == "channels":
        amc = {"capacity": 0.3 * policy["bulk_transfer"]["capacity"], "min_loans": 5,
               "fixed_cost": 2e5}  # fmt: skip
        return {**policy, "channels": {"amc_b": amc}}, _amc_options(options)
    if name == "quota_first":
        return {**policy, "write_off": {**policy["write_off"], "priority": "quota_first"}}, options
    missing = _first_partition_without(options, loans)
    if name == "switched_channel_not_everywhere":
        return {**policy, "channels": {"amc_b": AMC_UNCAPPED}}, missing
    assert name == "not_everywhere_with_wage_pool"
    return {**policy, "channels": {"amc_b": AMC_UNCAPPED}, "wage_pool": WAGE}, missing


CASES = (
    "wage_pool_weight",
    "wage_pool_max_fall",
    "channels",
    "quota_first",
    "switched_channel_not_everywhere",
    "not_everywhere_with_wage_pool",
)


@pytest.mark.parametrize("mode", ["fractional", "whole_loan"])
@pytest.mark.parametrize("case", CASES)
def test_terms_that_need_every_partition_give_the_single_machine_optimum(
    client: Any, few: Data, tmp_path: Path, case: str, mode: str
) -> None:
    policy, options = _case(few, case)
    write_partitioned(few.synthetic.loans, tmp_path / "loans", PARTITIONS, options=options,
                      options_path=tmp_path / "options")  # fmt: skip
    problem = few.problem(options, policy)
    single = solve(problem, mode)
    result = solve_partitioned(
        tmp_path / "loans", few.branches, policy, client=client, mode=mode,
        options=tmp_path / "options", **FEW_LOOP,
    )  # fmt: skip
    _verify(few, result, problem, whole_loan=mode == "whole_loan")
    assert result.solver.iterations > 1
    # the same rows and blocks, with the limits of the whole portfolio
    ours, theirs = result.constraints, single.constraints
    assert list(ours["name"]) == list(theirs["name"])
    np.testing.assert_allclose(ours["limit"], theirs["limit"], rtol=1e-12)
    assert set(result.blocks) == set(single.blocks)
    scale = abs(single.objective)
    if mode == "fractional":
        assert result.status is Status.OPTIMAL
        assert result.objective == pytest.approx(single.objective, rel=1e-6)
        assert result.bound == pytest.approx(single.objective, rel=1e-6)
    else:
        assert result.objective >= single.objective - 1e-6 * scale  # within the MIP gap
        assert result.bound >= single.objective - 1e-6 * scale
        assert result.objective <= single.bound + 1e-6 * scale


def test_a_schedule_is_refused_before_any_work(small: Data, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    policy = {**small.policy, "schedule": {"periods": 2}}
    with pytest.raises(NotImplementedError, match=r"\[schedule\]"):
        solve_partitioned(small.loans_dir, small.branches, policy, out=out)
    assert not out.exists()

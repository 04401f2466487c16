"""Plans, values, figures, messages and exit statuses equal those recorded from an earlier build.

``tests/data/unchanged.json`` holds, for the bundled sample and a set of drawn portfolios
and policies (custom channels, the wage-pool terms, tolerance checked or imposed, sections
dropped), what the library produced when the file was recorded: status, objective, bound,
a digest of the plan, the constraints table, the branch figures, ``Policy.summary()``, the
words of infeasible policies and of broken plans, and what the command line wrote and
returned. A change that alters any of them fails here; a deliberate change of behaviour
re-records the file (``python tests/test_unchanged.py --record``) and says why.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from npl_disposal import (
    InfeasiblePolicyError,
    build_problem,
    load_policy,
    read_portfolio,
    solve,
    verify_plan,
)
from npl_disposal.datasets import make_portfolio

RECORDED = Path(__file__).parent / "data" / "unchanged.json"
DATA = Path(__file__).resolve().parents[1] / "src" / "npl_disposal" / "data"

Record = dict[str, Any]


def _number(x: Any) -> Any:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    return x if x is None or isinstance(x, str) else str(x)


def _frame(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {str(c): [_number(v) for v in frame[c].tolist()] for c in frame.columns}


def _digest(plan: pd.DataFrame) -> str:
    ids, channels = plan["loan_id"].astype(str), plan["channel"].astype(str)
    shares = plan["share"].astype(float)
    rows = sorted(f"{i}|{c}|{s:.9f}" for i, c, s in zip(ids, channels, shares, strict=True))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


# --------------------------------------------------------------------------- cases


def _sample_tables() -> tuple[Any, Any, pd.DataFrame, dict[str, Any]]:
    portfolio = read_portfolio(DATA / "portfolio.csv", DATA / "branches.csv")
    options = pd.read_csv(DATA / "options.csv", dtype={"loan_id": str})
    return portfolio, None, options, load_policy(DATA / "policy.toml").to_dict()


def _amc_options(options: pd.DataFrame) -> pd.DataFrame:
    bulk = options[options["channel"] == "bulk_transfer"]
    extra = 0.04 * bulk["value"]
    amc = bulk.assign(channel="amc_b", value=bulk["value"] + extra, pnl=bulk["pnl"] + extra)
    return pd.concat([options, amc], ignore_index=True)


def _variant(policy: dict[str, Any], name: str) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in policy.items()}
    if name == "wage":
        out["wage_pool"] = {"consider_share": 0.5, "rate": 0.1, "weight": 1.0}
    elif name == "wage_checked":
        out["tolerance"] = dict(out["tolerance"], enforce=False)
        out["wage_pool"] = {"consider_share": 0.0, "rate": 0.12, "weight": 2.0}
    elif name == "max_fall":
        out["wage_pool"] = {"consider_share": 0.5, "rate": 0.1, "max_fall": 4e6}
    elif name == "channels":
        out["channels"] = {"amc_b": {"capacity": 0.3 * out["bulk_transfer"]["capacity"],
                                     "min_loans": 5, "fixed_cost": 2e5}}  # fmt: skip
    elif name == "loose":
        for section in ("write_off", "profit", "securitisation"):
            out.pop(section, None)
    elif name == "counts":
        out["channels"] = {"amc_b": {"max_loans": 40, "min_balance": 1e6}}
        out["restructure"] = {"max_loans": 15}
    return out


VARIANTS = ("plain", "wage", "wage_checked", "max_fall", "channels", "loose", "counts")


def _synthetic(seed: int, variant: str) -> tuple[Any, Any, pd.DataFrame, dict[str, Any]]:
    data = make_portfolio(n_loans=900, n_branches=9, seed=seed)
    options = data.options
    if variant in ("channels", "counts"):
        options = _amc_options(options)
    return data.loans, data.branches, options, _variant(data.policy_dict(), variant)


def _cases() -> dict[str, Callable[[], tuple[Any, Any, pd.DataFrame, dict[str, Any]]]]:
    cases: dict[str, Callable[[], tuple[Any, Any, pd.DataFrame, dict[str, Any]]]] = {
        "sample": _sample_tables
    }
    for seed in (3, 4):
        for variant in VARIANTS:
            cases[f"seed{seed}-{variant}"] = lambda s=seed, v=variant: _synthetic(s, v)
    return cases


def _result_record(result: Any) -> Record:
    cons = result.constraints
    return {
        "status": result.status.value,
        "objective": result.objective,
        "bound": result.bound,
        "plan": _digest(result.plan),
        "value": result.verification.objective,
        "blocks": {k: float(v) for k, v in result.blocks.items()},
        "constraints": _frame(cons),
        "figures": _frame(result.branch_figures()),
        "mix": _frame(result.channel_mix().reset_index()),
    }


def _solve_record(build: Callable[[], Any], mode: str) -> Record:
    try:
        result = solve(build(), mode=mode)
    except InfeasiblePolicyError as exc:
        return {"infeasible": _frame(exc.conflicts), "message": str(exc)}
    return _result_record(result)


def _broken_plans(loans: Any, branches: Any, options: pd.DataFrame, policy: Any) -> Record:
    """verify_plan's words on plans that break rules on purpose."""
    portfolio = read_portfolio(loans, branches)
    problem = build_problem(portfolio, policy, options)
    opts = problem.options
    everything = {}
    for channel in ("retain", "write_off", "bulk_transfer"):
        rows = opts[opts["channel"] == channel]
        plan = pd.DataFrame({"loan_id": rows["loan_id"].astype(str),
                             "channel": channel, "share": 1.0})  # fmt: skip
        check = verify_plan(problem.portfolio, problem.policy, opts, plan)
        violations = check.violations
        everything[channel] = {
            "rules": violations["rule"].tolist(),
            "explanations": violations["explanation"].head(40).tolist(),
            "objective": check.objective,
            "usage": {k: float(v) for k, v in check.usage.items()},
        }
    return everything


def _cli_record(tmp: Path) -> Record:
    from npl_disposal.cli import main

    out: Record = {}
    base = [str(DATA / "portfolio.csv"), "--branches", str(DATA / "branches.csv"),
            "--policy", str(DATA / "policy.toml")]  # fmt: skip
    for name, extra in {
        "plan": ["--options", str(DATA / "options.csv")],
        "plan-fractional": ["--options", str(DATA / "options.csv"), "--mode", "fractional"],
        "plan-valued": [],
    }.items():
        target = tmp / name
        status = main(["plan", *base, *extra, "--out", str(target)])
        summary = json.loads((target / "summary.json").read_text(encoding="utf-8"))
        summary.pop("solver")
        out[name] = {
            "status": status,
            "plan": _digest(pd.read_csv(target / "plan.csv", dtype={"loan_id": str})),
            "branches": _frame(pd.read_csv(target / "branches.csv")),
            "summary": summary,
        }
    tight = tmp / "tight.toml"
    text = (DATA / "policy.toml").read_text(encoding="utf-8")
    tight.write_text(text.replace("quota = 243805392.0", "quota = 1000.0"), encoding="utf-8")
    options = ["--options", str(DATA / "options.csv")]
    out["infeasible"] = main(
        ["plan", *base[:3], "--policy", str(tight), *options, "--out", str(tmp / "x")]
    )
    out["bad-input"] = main(["check", str(tmp / "missing.csv")])
    return out


def record_all(tmp: Path) -> Record:
    """Everything this file compares, computed by the library as it stands."""
    cases: Record = {}
    for name, make in _cases().items():
        loans, branches, options, policy = make()

        def build(p: Any = policy, lo: Any = loans, br: Any = branches, op: Any = options) -> Any:
            return build_problem(read_portfolio(lo, br), p, op)

        cases[name] = {
            "policy_summary": load_policy(policy).summary(),
            "whole_loan": _solve_record(build, "whole_loan"),
            "fractional": _solve_record(build, "fractional"),
        }
        if name.endswith("plain") or name == "sample":
            cases[name]["broken"] = _broken_plans(loans, branches, options, policy)
    tight = _variant(make_portfolio(n_loans=900, n_branches=9, seed=3).policy_dict(), "plain")
    tight["write_off"]["quota"] = 1.0
    tight["bulk_transfer"]["capacity"] = 1.0
    data = make_portfolio(n_loans=900, n_branches=9, seed=3)
    cases["infeasible"] = {
        mode: _solve_record(
            lambda: build_problem(read_portfolio(data.loans, data.branches), tight, data.options),
            mode,
        )
        for mode in ("whole_loan", "fractional")
    }
    return {"cases": cases, "cli": _cli_record(tmp)}


# --------------------------------------------------------------------------- comparison


def _same(now: Any, then: Any, where: str) -> None:
    if isinstance(then, dict):
        assert isinstance(now, dict), where
        assert set(now) == set(then), f"{where}: keys {sorted(set(now) ^ set(then))} differ"
        for key in then:
            _same(now[key], then[key], f"{where}.{key}")
    elif isinstance(then, list):
        assert isinstance(now, list) and len(now) == len(then), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(now, then, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(then, float) and not isinstance(then, bool):
        assert isinstance(now, (int, float)) and not isinstance(now, bool), where
        assert now == pytest.approx(then, rel=1e-9, abs=1e-6), f"{where}: {now!r} != {then!r}"
    else:
        assert now == then, f"{where}: {now!r} != {then!r}"


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> Record:
    return json.loads(json.dumps(record_all(tmp_path_factory.mktemp("unchanged"))))


@pytest.fixture(scope="module")
def then() -> Record:
    return json.loads(RECORDED.read_text(encoding="utf-8"))


def test_the_same_cases_are_recorded(now: Record, then: Record) -> None:
    assert set(now["cases"]) == set(then["cases"])


NAMES = sorted(["infeasible", "sample", *(f"seed{s}-{v}" for s in (3, 4) for v in VARIANTS)])


@pytest.mark.parametrize("name", NAMES)
def test_case_unchanged(now: Record, then: Record, name: str) -> None:
    _same(now["cases"][name], then["cases"][name], name)


def test_command_line_unchanged(now: Record, then: Record) -> None:
    _same(now["cli"], then["cli"], "cli")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_unchanged.py --record")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        recorded = record_all(Path(tmp))
    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")  # fmt: skip
    print(f"recorded {len(recorded['cases'])} cases and the command line to {RECORDED}")

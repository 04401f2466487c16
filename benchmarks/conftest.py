"""Benchmark registry: every size is declared once, here.

Run the full benchmarks with ``pytest benchmarks``; with ``--benchmark-disable``
(the CI smoke pass) every benchmark runs once at the smoke sizes only.
``NPL_BENCH_SIZES`` chooses sizes for every benchmark: loan counts
(``NPL_BENCH_SIZES=10000,100k``) or names of size sets (``NPL_BENCH_SIZES=floor``).

A benchmark says which sizes it runs at by naming sets of :data:`SIZE_SETS`
(``@pytest.mark.sizes("floor")``; several names: their union); unmarked
benchmarks run at ``"full"``. The
scripts ``end_to_end.py`` and ``scale.py`` read their sizes from here too.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pytest

from npl_disposal.datasets import SyntheticPortfolio, make_portfolio

#: Named sets of loan counts: the only place sizes are written down.
SIZE_SETS: dict[str, tuple[int, ...]] = {
    # CI smoke pass (``--benchmark-disable``): every benchmark once, in seconds.
    "smoke": (2_000,),
    # Unmarked benchmarks (10k, 100k and 1M loans).
    "full": (10_000, 100_000, 1_000_000),
    # Building and solving with our HiGHS method.
    "solve": (10_000, 100_000),
    # The anchors side by side with ours in one run: plain HiGHS and naive PuLP + CBC.
    "floor": (10_000, 100_000),
    # Reading, validating, valuing, estimating: cheap per loan, so large sizes.
    "data": (100_000, 1_000_000),
    # One-shot work at the largest size (generating portfolios and histories).
    "large": (1_000_000,),
    # scale.py: one fresh process per size, so peak memory is per size.
    "scale": (10_000, 100_000, 1_000_000, 3_000_000),
    # end_to_end.py's default portfolio.
    "end_to_end": (1_000_000,),
    # Plans with recovery scenarios (test_bench_risk.py): RISK_SCENARIOS x RISK_SEGMENTS.
    "risk": (100_000, 1_000_000),
    # A four-quarter schedule: valuing over time, building and solving it.
    "schedule": (10_000, 100_000),
    # fast_start.py: the whole ``plan`` from CSV files, against plain HiGHS.
    "fast_start": (100_000,),
}

SMOKE_SIZES = SIZE_SETS["smoke"]
FULL_SIZES = SIZE_SETS["full"]
SOLVE_SIZES = SIZE_SETS["solve"]
FLOOR_SIZES = SIZE_SETS["floor"]
DATA_SIZES = SIZE_SETS["data"]
LARGE_SIZES = SIZE_SETS["large"]
SCALE_SIZES = SIZE_SETS["scale"]
END_TO_END_LOANS = SIZE_SETS["end_to_end"][0]
SCHEDULE_SIZES = SIZE_SETS["schedule"]
FAST_START_LOANS = SIZE_SETS["fast_start"][0]

#: Above this many loans a benchmark runs once (``benchmark.pedantic``, one round).
ONE_ROUND = 5_000
#: Above this many loans the naive whole-loan PuLP + CBC model is skipped (many minutes).
NAIVE_MILP_MAX_LOANS = 10_000
#: Seconds the plain whole-loan HiGHS model gets; its gap is recorded, not asserted.
PLAIN_MILP_TIME_LIMIT = 120.0
#: Scenarios and segments of the recovery-scenario benchmarks (5 channels each).
RISK_SCENARIOS = 1_000
RISK_SEGMENTS = 10
#: Branches of the synthetic portfolios: 100 at every size.
MAX_BRANCHES = 100
#: Seed of every synthetic benchmark portfolio.
SEED = 1


def branches_for(n_loans: int) -> int:
    """Branches of the benchmark portfolio of ``n_loans`` loans (100 from 100k loans)."""
    return min(MAX_BRANCHES, max(8, n_loans // 1000))


def parse_sizes(text: str) -> tuple[int, ...]:
    """Loan counts from ``"10000,100_000,1M,2k"`` or size-set names (``"floor"``)."""
    sizes: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        digits = item.replace("_", "")
        scale = {"k": 1_000, "m": 1_000_000}.get(digits[-1:].lower(), 1)
        digits = digits[:-1] if scale > 1 else digits
        if not item:
            continue
        if item in SIZE_SETS:
            sizes.extend(SIZE_SETS[item])
        elif digits.isdigit() and int(digits) > 0:
            sizes.append(int(digits) * scale)
        else:
            raise ValueError(
                f"{item!r} is neither a loan count nor a size set ({', '.join(SIZE_SETS)})"
            )
    return tuple(dict.fromkeys(sizes))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "n_loans" not in metafunc.fixturenames:
        return
    chosen = os.environ.get("NPL_BENCH_SIZES")
    if chosen:
        try:
            sizes = parse_sizes(chosen)
        except ValueError as exc:
            raise pytest.UsageError(f"NPL_BENCH_SIZES: {exc}") from exc
    elif metafunc.config.getoption("benchmark_disable", False):
        sizes = SMOKE_SIZES
    else:
        marker = metafunc.definition.get_closest_marker("sizes")
        names = marker.args if marker else ("full",)
        if not names or any(name not in SIZE_SETS for name in names):
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: @pytest.mark.sizes takes names of "
                f"benchmarks/conftest.py SIZE_SETS ({', '.join(SIZE_SETS)}), not {names!r}"
            )
        sizes = tuple(sorted({n for name in names for n in SIZE_SETS[name]}))
    metafunc.parametrize("n_loans", sizes, ids=[f"{n:_}" for n in sizes])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sizes(*names): size sets of conftest.SIZE_SETS this benchmark runs at"
    )


@lru_cache(maxsize=2)
def synthetic(n_loans: int) -> SyntheticPortfolio:
    """The synthetic portfolio of a benchmark size (cached across benchmarks)."""
    return make_portfolio(n_loans, branches_for(n_loans), seed=SEED)


#: The schedule of the benchmarks: four quarters, AMC auction windows in Q1 and Q3,
#: securitisation issues in Q2 and Q4 (four on/off windows, sixteen combinations).
SCHEDULE = {"periods": 4, "bulk_transfer": [1, 3], "securitisation": [2, 4]}


def schedule_policy(data: SyntheticPortfolio) -> dict[str, dict[str, object]]:
    """The synthetic policy of ``data`` over :data:`SCHEDULE`'s quarters and windows."""
    policy = data.policy_dict()
    policy["schedule"] = {"periods": SCHEDULE["periods"]}
    policy["bulk_transfer"]["windows"] = SCHEDULE["bulk_transfer"]
    policy["securitisation"]["windows"] = SCHEDULE["securitisation"]
    return policy

"""Tests of npl_disposal.policy: parsing, validation, round trips, what-if helpers."""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npl_disposal.exceptions import PolicyError
from npl_disposal.policy import (
    BulkTransfer,
    LongAge,
    ModeSection,
    Policy,
    Profit,
    Restructure,
    Securitisation,
    Tolerance,
    WagePool,
    WriteOff,
    load_policy,
)

FULL: dict[str, Any] = {
    "mode": {"mode": "fractional"},
    "long_age": {"months": 36},
    "write_off": {"quota": 12_300_000},
    "bulk_transfer": {"capacity": 5.0e7, "min_loans": 10},
    "securitisation": {"max_pool": 1.0e8, "min_pool": 2.0e7, "fixed_cost": 1.5e6},
    "restructure": {"max_loans": 40},
    "profit": {"max_loss": 3.0e7},
    "tolerance": {"bank_npl_ratio": 0.016, "margin": 0.03, "enforce": False},
    "wage_pool": {"consider_share": 0.5, "rate": 0.08},
    "valuation": {"discount_rate": 0.06, "curve": {"months": [0, 12, 24], "note": 'a"b\\c'}},
    "solver": {"backend": "highs", "time_limit": 60},
}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    return info.value.problems


def single_problem(data: Any) -> tuple[str, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------- parsing


def test_full_policy_parses_with_units_normalised() -> None:
    p = Policy.from_dict(FULL)
    assert p.mode == "fractional"
    assert p.fractional
    assert p.long_age == LongAge(months=36.0)
    assert p.write_off == WriteOff(quota=12_300_000.0)
    assert isinstance(p.write_off.quota, float)
    assert p.bulk_transfer == BulkTransfer(capacity=5e7, min_loans=10)
    assert isinstance(p.bulk_transfer.min_loans, int)
    assert p.securitisation == Securitisation(max_pool=1e8, min_pool=2e7, fixed_cost=1.5e6)
    assert p.restructure == Restructure(max_loans=40)
    assert p.profit == Profit(max_loss=3e7)
    assert p.tolerance == Tolerance(bank_npl_ratio=0.016, margin=0.03, enforce=False)
    assert p.tolerance.threshold == pytest.approx(0.046)
    assert p.wage_pool == WagePool(consider_share=0.5, rate=0.08)
    assert p.valuation["discount_rate"] == 0.06
    assert p.solver["backend"] == "highs"
    assert set(p.extra) == {"valuation", "solver"}


def test_missing_sections_are_none() -> None:
    p = Policy.from_dict({"write_off": {"quota": 1e6}})
    assert p.mode == "whole_loan"
    assert not p.fractional
    for name in (
        "long_age",
        "bulk_transfer",
        "securitisation",
        "restructure",
        "profit",
        "tolerance",
        "wage_pool",
    ):
        assert getattr(p, name) is None, name
    assert dict(p.extra) == {}
    assert dict(p.solver) == {}
    assert dict(p.valuation) == {}
    assert Policy.from_dict({}) == Policy()


def test_defaults() -> None:
    p = Policy.from_dict(
        {
            "tolerance": {"bank_npl_ratio": 0.02},
            "bulk_transfer": {"capacity": 1e6},
            "securitisation": {"max_pool": 1e6},
        }
    )
    assert p.tolerance is not None
    assert p.tolerance.margin == 0.03
    assert p.tolerance.enforce is True
    assert p.tolerance.threshold == pytest.approx(0.05)
    assert p.bulk_transfer == BulkTransfer(capacity=1e6, min_loans=0)
    assert p.securitisation == Securitisation(max_pool=1e6, min_pool=0.0, fixed_cost=0.0)
    assert p.wage_pool is None
    assert p.wage_pool_or_default == WagePool(consider_share=1.0, rate=0.0)
    assert WagePool() == WagePool(consider_share=1, rate=0)
    assert ModeSection().mode == "whole_loan"


def test_mode_shorthand_and_none_sections() -> None:
    assert Policy.from_dict({"mode": "fractional"}).mode == "fractional"
    assert Policy.from_dict({"write_off": None}).write_off is None


def test_integral_float_counts_and_int_money_accepted() -> None:
    p = Policy.from_dict({"restructure": {"max_loans": 40.0}, "profit": {"max_loss": 0}})
    assert p.restructure == Restructure(max_loans=40)
    assert type(p.restructure.max_loans) is int
    assert type(p.profit.max_loss) is float  # type: ignore[union-attr]


def test_numpy_scalars_accepted() -> None:
    np = pytest.importorskip("numpy")
    p = Policy.from_dict(
        {
            "write_off": {"quota": np.float64(2e6)},
            "restructure": {"max_loans": np.int64(5)},
            "tolerance": {"bank_npl_ratio": np.float32(0.25), "enforce": np.bool_(False)},
        }
    )
    assert p.write_off == WriteOff(quota=2e6)
    assert p.restructure == Restructure(max_loans=5)
    assert p.tolerance is not None and p.tolerance.enforce is False


def test_zero_budgets_and_boundaries_are_valid() -> None:
    p = Policy.from_dict(
        {
            "long_age": {"months": 0},
            "write_off": {"quota": 0},
            "securitisation": {"max_pool": 5.0, "min_pool": 5.0},
            "tolerance": {"bank_npl_ratio": 0.0, "margin": 0.0},
            "wage_pool": {"consider_share": 0.0, "rate": 1.0},
        }
    )
    assert p.securitisation is not None and p.securitisation.min_pool == 5.0


# --------------------------------------------------------------------------- problems


@pytest.mark.parametrize(
    ("data", "where", "fragment"),
    [
        ({"writeoff": {"quota": 1.0}}, "[writeoff]", "unknown section"),
        ({"write_off": {"quota": 1.0, "quotas": 2}}, "[write_off] quotas", "allowed keys: quota"),
        ({"write_off": {}}, "[write_off] quota", "missing"),
        ({"tolerance": {"margin": 0.03}}, "[tolerance] bank_npl_ratio", "missing"),
        ({"write_off": {"quota": True}}, "[write_off] quota", "boolean"),
        ({"write_off": {"quota": "5e6"}}, "[write_off] quota", "without quotes"),
        ({"write_off": {"quota": [1]}}, "[write_off] quota", "number"),
        ({"write_off": {"quota": -1.0}}, "[write_off] quota", ">= 0"),
        ({"write_off": {"quota": math.nan}}, "[write_off] quota", "finite"),
        ({"write_off": {"quota": math.inf}}, "[write_off] quota", "finite"),
        ({"bulk_transfer": {"capacity": -5}}, "[bulk_transfer] capacity", ">= 0"),
        ({"bulk_transfer": {"capacity": 1, "min_loans": -1}}, "[bulk_transfer] min_loans", ">= 0"),
        (
            {"bulk_transfer": {"capacity": 1, "min_loans": 2.5}},
            "[bulk_transfer] min_loans",
            "whole",
        ),
        ({"bulk_transfer": {"capacity": 1, "min_loans": "3"}}, "[bulk_transfer] min_loans", "text"),
        ({"securitisation": {"max_pool": -1}}, "[securitisation] max_pool", ">= 0"),
        (
            {"securitisation": {"max_pool": 1, "min_pool": -1}},
            "[securitisation] min_pool",
            ">= 0",
        ),
        (
            {"securitisation": {"max_pool": 1, "fixed_cost": -1}},
            "[securitisation] fixed_cost",
            ">= 0",
        ),
        (
            {"securitisation": {"max_pool": 1e6, "min_pool": 2e6}},
            "[securitisation] min_pool",
            "must not exceed max_pool",
        ),
        ({"restructure": {"max_loans": -3}}, "[restructure] max_loans", ">= 0"),
        ({"restructure": {"max_loans": 1.5}}, "[restructure] max_loans", "whole"),
        ({"restructure": {"max_loans": math.inf}}, "[restructure] max_loans", "finite"),
        ({"profit": {"max_loss": -1}}, "[profit] max_loss", ">= 0"),
        ({"long_age": {"months": -12}}, "[long_age] months", ">= 0"),
        ({"long_age": {"months": math.nan}}, "[long_age] months", "finite"),
        ({"tolerance": {"bank_npl_ratio": 1.6}}, "[tolerance] bank_npl_ratio", "[0, 1]"),
        ({"tolerance": {"bank_npl_ratio": -0.1}}, "[tolerance] bank_npl_ratio", "[0, 1]"),
        (
            {"tolerance": {"bank_npl_ratio": 0.01, "margin": 3}},
            "[tolerance] margin",
            "did you mean 0.03",
        ),
        ({"tolerance": {"bank_npl_ratio": 0.01, "margin": -0.01}}, "[tolerance] margin", "[0, 1]"),
        (
            {"tolerance": {"bank_npl_ratio": 0.01, "enforce": "yes"}},
            "[tolerance] enforce",
            "true or false",
        ),
        (
            {"tolerance": {"bank_npl_ratio": 0.01, "enforce": 1}},
            "[tolerance] enforce",
            "true or false",
        ),
        (
            {"tolerance": {"bank_npl_ratio": 0.6, "margin": 0.4}},
            "[tolerance] bank_npl_ratio + margin",
            "below 1",
        ),
        ({"wage_pool": {"consider_share": 1.2}}, "[wage_pool] consider_share", "[0, 1]"),
        ({"wage_pool": {"consider_share": -0.2}}, "[wage_pool] consider_share", "[0, 1]"),
        ({"wage_pool": {"rate": 2}}, "[wage_pool] rate", "[0, 1]"),
        ({"mode": {"mode": "lp"}}, "[mode] mode", "'whole_loan' or 'fractional'"),
        ({"mode": {"mode": "fractional", "x": 1}}, "[mode] x", "allowed keys: mode"),
        ({"mode": 3}, "[mode]", "table"),
        ({"write_off": 5e6}, "[write_off]", "table"),
        ({"solver": "highs"}, "[solver]", "table"),
    ],
)
def test_each_problem_is_reported(data: dict[str, Any], where: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    err = info.value
    assert isinstance(err, ValueError)
    assert len(err.problems) == 1, err.problems
    location, message = err.problems[0]
    assert location == where
    assert fragment in message
    assert where in str(err)


def test_unknown_key_lists_allowed_keys_and_suggests() -> None:
    where, message = single_problem({"securitisation": {"max_pool": 1e6, "fixd_cost": 1}})
    assert where == "[securitisation] fixd_cost"
    assert "did you mean 'fixed_cost'" in message
    assert "max_pool, min_pool, fixed_cost" in message


def test_unknown_section_lists_allowed_sections() -> None:
    where, message = single_problem({"write_of": {"quota": 1}})
    assert where == "[write_of]"
    assert "did you mean 'write_off'" in message
    for name in ("mode", "write_off", "tolerance", "wage_pool", "valuation", "solver"):
        assert name in message


def test_all_problems_listed_at_once() -> None:
    data = {
        "mode": {"mode": "milp"},
        "bogus": {},
        "write_off": {"quota": -1},
        "bulk_transfer": {"capacity": "lots", "min_loans": 0.5, "extra": 1},
        "securitisation": {"max_pool": 1.0, "min_pool": 2.0},
        "restructure": {},
        "tolerance": {"bank_npl_ratio": True, "margin": 2},
        "wage_pool": {"rate": math.nan},
    }
    problems = problems_of(data)
    locations = [where for where, _ in problems]
    assert sorted(locations) == sorted(
        [
            "[mode] mode",
            "[bogus]",
            "[write_off] quota",
            "[bulk_transfer] extra",
            "[bulk_transfer] capacity",
            "[bulk_transfer] min_loans",
            "[securitisation] min_pool",
            "[restructure] max_loans",
            "[tolerance] bank_npl_ratio",
            "[tolerance] margin",
            "[wage_pool] rate",
        ]
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data, source="my_policy.toml")
    text = str(info.value)
    assert text.startswith("my_policy.toml: 11 problem(s)")
    for where in locations:
        assert where in text


def test_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="mapping of sections"):
        Policy.from_dict([("write_off", {})])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- direct construction


def test_direct_construction_validates_sections() -> None:
    with pytest.raises(PolicyError, match=r"\[write_off\] quota"):
        WriteOff(quota=-1)
    with pytest.raises(PolicyError, match=r"\[restructure\] max_loans"):
        Restructure(max_loans=True)
    with pytest.raises(PolicyError, match=r"\[securitisation\] min_pool"):
        Securitisation(max_pool=1, min_pool=2)
    with pytest.raises(PolicyError, match=r"\[tolerance\] bank_npl_ratio \+ margin"):
        Tolerance(bank_npl_ratio=0.99, margin=0.03)
    assert LongAge(months=24).months == 24.0
    assert isinstance(LongAge(months=24).months, float)


def test_direct_construction_validates_policy() -> None:
    with pytest.raises(PolicyError) as info:
        Policy(
            mode="lp",
            write_off={"quota": 1},  # type: ignore[arg-type]
            extra={"bogus": {}, "profit": {}, "solver": 3},  # type: ignore[dict-item]
        )
    locations = [where for where, _ in info.value.problems]
    assert locations == ["[mode] mode", "[write_off]", "[bogus]", "[profit]", "[solver]"]


def test_policy_is_frozen_and_hashable() -> None:
    p = Policy.from_dict(FULL)
    with pytest.raises(AttributeError):
        p.mode = "whole_loan"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.write_off.quota = 1.0  # type: ignore[misc, union-attr]
    with pytest.raises(TypeError):
        p.extra["solver"]["backend"] = "cbc"  # type: ignore[index]
    assert hash(p) == hash(Policy.from_dict(FULL))
    assert isinstance(p.valuation["curve"]["months"], tuple)  # type: ignore[index]


def test_extra_is_copied_not_shared() -> None:
    solver: dict[str, Any] = {"time_limit": 60}
    p = Policy.from_dict({"solver": solver})
    solver["time_limit"] = 1
    assert p.solver["time_limit"] == 60


def test_pickle_and_deepcopy() -> None:
    p = Policy.from_dict(FULL)
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.deepcopy(p) == p
    assert copy.copy(p) == p


# --------------------------------------------------------------------------- round trips


def test_round_trip_dict_policy_toml_policy(tmp_path: Path) -> None:
    p = Policy.from_dict(FULL)
    assert Policy.from_dict(p.to_dict()) == p
    path = tmp_path / "policy.toml"
    text = p.to_toml(path)
    assert path.read_text(encoding="utf-8") == text
    assert Policy.from_toml(path) == p
    assert Policy.from_toml(str(path)) == p
    assert Policy.from_toml_text(text) == p
    assert "[write_off]" in text
    assert "quota = 12_300_000.0" in text


def test_to_dict_is_plain_and_complete() -> None:
    d = Policy.from_dict({"tolerance": {"bank_npl_ratio": 0.02}, "solver": {"a": [1, 2]}}).to_dict()
    assert d == {
        "mode": {"mode": "whole_loan"},
        "tolerance": {"bank_npl_ratio": 0.02, "margin": 0.03, "enforce": True},
        "solver": {"a": [1, 2]},
    }


def test_to_toml_rejects_values_toml_cannot_hold() -> None:
    p = Policy.from_dict({"solver": {"option": None}})
    with pytest.raises(PolicyError, match=r"\[solver\] option"):
        p.to_toml()


def test_toml_file_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        """
[mode]
mode = "whole_loan"

[write_off]
quota = 12_300_000   # integers are fine for money

[tolerance]
bank_npl_ratio = 0.016

[solver]
backend = "highs"
""",
        encoding="utf-8",
    )
    p = load_policy(path)
    assert p.write_off == WriteOff(quota=12_300_000.0)
    assert p.tolerance == Tolerance(bank_npl_ratio=0.016)
    assert p.solver == {"backend": "highs"}


def test_toml_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad_policy.toml"
    path.write_text("[write_off]\nquota = -5\n[profits]\nmax_loss = 1\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    assert str(info.value).startswith(str(path))
    assert [w for w, _ in info.value.problems] == ["[write_off] quota", "[profits]"]


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[mode]\nmode = "fractional"\n\n[write_off\nquota = 1\n', encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(path) in str(err)
    assert len(err.problems) == 1
    where, message = err.problems[0]
    assert where == f"{path}, line 4"
    assert "TOML syntax error" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes("[write_off]\n# 核销额度\nquota = 1\n".encode("gbk"))
    with pytest.raises(PolicyError, match="UTF-8"):
        Policy.from_toml(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Policy.from_toml(tmp_path / "nope.toml")


def test_load_policy_accepts_each_form(tmp_path: Path) -> None:
    p = Policy.from_dict(FULL)
    path = tmp_path / "p.toml"
    p.to_toml(path)
    assert load_policy(p) is p
    assert load_policy(FULL) == p
    assert load_policy(path) == p
    assert load_policy(str(path)) == p
    assert load_policy(None) == Policy()
    with pytest.raises(TypeError):
        load_policy(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what-if helpers


def test_with_section_and_replace() -> None:
    p = Policy.from_dict(FULL)
    q = p.with_section("write_off", quota=5e6)
    assert q.write_off == WriteOff(quota=5e6)
    assert p.write_off == WriteOff(quota=12_300_000.0)
    assert q.with_section("write_off", quota=12_300_000) == p

    # merging keeps the other keys of the section
    r = p.with_section("securitisation", fixed_cost=0)
    assert r.securitisation == Securitisation(max_pool=1e8, min_pool=2e7, fixed_cost=0.0)

    # a new section
    s = Policy().with_section("profit", max_loss=1e6)
    assert s.profit == Profit(max_loss=1e6)
    assert Policy().with_section("mode", mode="fractional").fractional
    assert Policy().with_section("solver", time_limit=5).solver == {"time_limit": 5}

    with pytest.raises(PolicyError, match=r"\[write_off\] quota"):
        p.with_section("write_off", quota=-1)
    with pytest.raises(PolicyError, match="unknown section"):
        p.with_section("bogus", x=1)

    assert p.replace(mode="whole_loan").mode == "whole_loan"
    assert p.replace(profit=None).profit is None
    with pytest.raises(PolicyError):
        p.replace(mode="nonsense")


def test_without_section() -> None:
    p = Policy.from_dict(FULL)
    assert p.without_section("tolerance").tolerance is None
    assert "solver" not in p.without_section("solver").extra
    assert p.without_section("mode").mode == "whole_loan"
    with pytest.raises(PolicyError):
        p.without_section("bogus")


# --------------------------------------------------------------------------- summary


def test_summary_mentions_rules_in_force() -> None:
    text = Policy.from_dict(FULL).summary()
    assert "fractional" in text
    assert "write-off quota: CNY 12.30m" in text
    assert "36 months" in text
    assert "CNY 50.00m" in text and "10 loans" in text
    assert "CNY 20.00m to CNY 100.00m" in text and "CNY 1.50m" in text
    assert "at most 40 loans" in text
    assert "CNY 30.00m" in text
    assert "1.60% + 3.00% = 4.60%" in text and "not enforced" in text
    assert "50.00%" in text and "8.00%" in text
    assert "[valuation]" in text and "[solver]" in text
    assert "not constrained" not in text


def test_summary_of_empty_policy_lists_absent_constraints() -> None:
    text = Policy().summary()
    assert "whole-loan" in text
    assert "not constrained" in text
    assert "write-off quota" in text and "NPL tolerance" in text
    assert "(defaults)" in text


# --------------------------------------------------------------------------- hypothesis

money = st.floats(min_value=0, max_value=1e13, allow_nan=False, allow_infinity=False)
share = st.floats(min_value=0, max_value=1, allow_nan=False)
count = st.integers(min_value=0, max_value=10**6)
toml_text = st.text(st.characters(codec="utf-8"), max_size=12)
toml_scalar = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | toml_text
)
toml_key = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
toml_value = st.recursive(
    toml_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_key, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def securitisation(draw: st.DrawFn) -> dict[str, float]:
    a, b = sorted((draw(money), draw(money)))
    return {"min_pool": a, "max_pool": b, "fixed_cost": draw(money)}


@st.composite
def tolerance(draw: st.DrawFn) -> dict[str, Any]:
    ratio = draw(st.floats(min_value=0, max_value=0.5))
    margin = draw(st.floats(min_value=0, max_value=0.49))
    return {"bank_npl_ratio": ratio, "margin": margin, "enforce": draw(st.booleans())}


SECTION_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "mode": st.fixed_dictionaries({"mode": st.sampled_from(["whole_loan", "fractional"])}),
    "long_age": st.fixed_dictionaries(
        {"months": st.floats(min_value=0, max_value=600, allow_nan=False)}
    ),
    "write_off": st.fixed_dictionaries({"quota": money | count}),
    "bulk_transfer": st.fixed_dictionaries({"capacity": money}, optional={"min_loans": count}),
    "securitisation": securitisation(),
    "restructure": st.fixed_dictionaries({"max_loans": count}),
    "profit": st.fixed_dictionaries({"max_loss": money}),
    "tolerance": tolerance(),
    "wage_pool": st.fixed_dictionaries({}, optional={"consider_share": share, "rate": share}),
    "valuation": st.dictionaries(toml_key, toml_value, max_size=3),
    "solver": st.dictionaries(toml_key, toml_value, max_size=3),
}

policy_dicts = st.fixed_dictionaries({}, optional=SECTION_STRATEGIES)


@settings(max_examples=200, deadline=None)
@given(policy_dicts)
def test_random_valid_policies_round_trip(data: dict[str, Any]) -> None:
    p = Policy.from_dict(data)
    assert Policy.from_dict(p.to_dict()) == p
    assert Policy.from_toml_text(p.to_toml()) == p
    assert pickle.loads(pickle.dumps(p)) == p
    for name in SECTION_STRATEGIES:
        if name in ("mode", "valuation", "solver"):
            continue
        assert (getattr(p, name) is None) == (name not in data)
    assert isinstance(p.summary(), str)


@settings(max_examples=50, deadline=None)
@given(policy_dicts)
def test_random_valid_policies_round_trip_through_files(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    p = Policy.from_dict(data)
    path = tmp_path_factory.mktemp("policy") / "policy.toml"
    p.to_toml(path)
    assert Policy.from_toml(path) == p


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["quota", "capacity", "max_loss"]),
    st.one_of(
        st.floats(max_value=-1e-9),
        st.just(math.nan),
        st.just(math.inf),
        st.booleans(),
        st.text(max_size=5),
    ),
)
def test_bad_money_always_rejected(key: str, bad: Any) -> None:
    section = {"quota": "write_off", "capacity": "bulk_transfer", "max_loss": "profit"}[key]
    where, _ = single_problem({section: {key: bad}})
    assert where == f"[{section}] {key}"


def test_user_channel_tables_round_trip_through_toml() -> None:
    policy = Policy.from_dict(
        {
            "channels": {
                "amc_b": {"capacity": 2.5e8, "min_loans": 10, "fixed_cost": 1e5},
                "amc_a": {"max_loans": 40},
            }
        }
    )
    again = Policy.from_toml_text(policy.to_toml())
    assert again == policy
    assert again.channels["amc_b"].switched and not again.channels["amc_a"].switched
    assert again.channels["amc_a"].capacity == float("inf")
    assert "channel amc_b: at most CNY 250.00m" in policy.summary()
    assert policy.without_section("channels").channels == {}


@pytest.mark.parametrize(
    ("channels", "where", "says"),
    [
        ({"bulk_transfer": {"capacity": 1.0}}, "[channels.bulk_transfer]", "standard channel"),
        ({"amc_b": {"capacity": -1.0}}, "[channels.amc_b] capacity", ">= 0"),
        ({"amc_b": {"capcity": 1.0}}, "[channels.amc_b] capcity", "did you mean 'capacity'"),
        ({"amc_b": {"min_balance": 5.0, "capacity": 1.0}}, "[channels.amc_b] min_balance",
         "must not exceed capacity"),
        ({"amc_b": {"max_loans": 1.5}}, "[channels.amc_b] max_loans", "whole number"),
        ({"amc_b": 3}, "[channels.amc_b]", "table of keys"),
        ({"../../x": {"capacity": 1.0}}, "[channels.../../x]", "not a usable channel name"),
        ({"a/b": {"capacity": 1.0}}, "[channels.a/b]", "not a usable channel name"),
        ({"核销": {"capacity": 1.0}}, "[channels.核销]", "standard channel write_off"),
    ],
)  # fmt: skip
def test_user_channel_tables_are_validated(channels: object, where: str, says: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict({"channels": channels})
    assert where in str(info.value) and says in str(info.value)

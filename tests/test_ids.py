"""``ids.locate`` must agree with a pandas index lookup, whatever the ids' dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npl_disposal.io._ids import (
    as_text,
    as_text_codes,
    duplicated,
    equal_values,
    in_order,
    locate,
    positions_in,
    starts_with_any,
)

_TEXT = st.text(alphabet="AB01 贷-", min_size=1, max_size=4)


@given(
    ids=st.lists(_TEXT, unique=True, max_size=30),
    keys=st.lists(st.one_of(_TEXT, st.none()), max_size=40),
    ids_text=st.booleans(),
    keys_text=st.booleans(),
)
def test_locate_agrees_with_a_pandas_index(
    ids: list[str], keys: list[str | None], ids_text: bool, keys_text: bool
) -> None:
    id_col = pd.Series(ids, dtype="string" if ids_text else object)
    key_col = pd.Series(keys, dtype="string" if keys_text else object)
    expected = np.array(
        [ids.index(k) if k is not None and k in ids else -1 for k in keys], dtype=np.int64
    )
    got = locate(id_col, key_col)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


@given(
    ids=st.lists(_TEXT, unique=True, min_size=1, max_size=20),
    repeats=st.lists(st.integers(0, 3), min_size=20, max_size=20),
    change=st.sampled_from(["none", "swap", "unknown", "missing"]),
    at=st.integers(0, 100),
    keys_text=st.booleans(),
    copies=st.booleans(),
)
def test_locate_keys_in_portfolio_order(
    ids: list[str], repeats: list[int], change: str, at: int, keys_text: bool, copies: bool
) -> None:
    """Keys listed id by id in order take the neighbour comparison; any break falls back.

    ``copies``: every key its own object (as read from a file), not the id's object.
    """
    keys: list[str | None] = [
        _copy(i) if copies else i for i, r in zip(ids, repeats, strict=False) for _ in range(r)
    ]
    if keys and change == "swap":
        j = at % len(keys)
        keys[0], keys[j] = keys[j], keys[0]
    elif keys and change == "unknown":
        keys[at % len(keys)] = "unknown id"
    elif keys and change == "missing":
        keys[at % len(keys)] = None
    expected = np.array(
        [ids.index(k) if k is not None and k in ids else -1 for k in keys], dtype=np.int64
    )
    got = locate(
        pd.Series(ids, dtype=object), pd.Series(keys, dtype="string" if keys_text else object)
    )
    np.testing.assert_array_equal(got, expected)
    ordered = in_order(np.asarray(ids, dtype=object), np.asarray(keys, dtype=object))
    if ordered is not None:  # only ever exact
        np.testing.assert_array_equal(ordered, expected)
    if change == "none" and len(keys) >= len(ids) and all(r > 0 for r in repeats[: len(ids)]):
        assert ordered is not None


def test_locate_takes_arrays_and_numbers() -> None:
    np.testing.assert_array_equal(
        locate(np.array(["a", "b"], dtype=object), np.array(["b", "x", "a"], dtype=object)),
        [1, -1, 0],
    )
    np.testing.assert_array_equal(locate(pd.Series([10, 20, 30]), pd.Series([30, 5])), [2, -1])


@given(st.lists(st.integers(0, 2), max_size=20))
def test_text_columns_equal_what_pandas_infers(codes: list[int]) -> None:
    names = ("retain", "write_off", "核销")
    values = np.asarray(names, dtype=object)[np.asarray(codes, dtype=np.int64)]
    inferred = pd.Series(values.tolist(), dtype=pd.Series(["x"]).dtype)
    pd.testing.assert_series_equal(pd.Series(as_text(values)), inferred)
    pd.testing.assert_series_equal(
        pd.Series(as_text_codes(np.asarray(codes, dtype=np.int64), names)), inferred
    )


@given(st.lists(st.one_of(st.sampled_from(["retain", " retain", "write_off ", ""]), st.none())))
def test_categorical_ids_are_cleaned_like_text(values: list[str | None]) -> None:
    from npl_disposal.io.problems import ProblemLog
    from npl_disposal.io.schema import OPTION_COLUMNS
    from npl_disposal.io.tables import clean_columns

    frames = [
        pd.DataFrame({"channel": pd.Series(values, dtype=dtype)}) for dtype in ("category", object)
    ]
    logs = [ProblemLog("options.csv"), ProblemLog("options.csv")]
    for frame, log in zip(frames, logs, strict=True):
        clean_columns(frame, OPTION_COLUMNS, log, ids_as_text=True)
    assert frames[0]["channel"].tolist() == frames[1]["channel"].tolist()
    ok = [np.broadcast_to(log.ok("channel"), len(values)).tolist() for log in logs]
    assert ok[0] == ok[1]


def test_options_with_categorical_channels_build_the_same_problem() -> None:
    from npl_disposal import build_problem, read_portfolio
    from npl_disposal.datasets import make_portfolio

    data = make_portfolio(300, 4, seed=3)
    portfolio = read_portfolio(data.loans, data.branches)
    as_text = data.options.assign(channel=data.options["channel"].astype(object))
    as_category = data.options.assign(channel=data.options["channel"].astype("category"))
    a = build_problem(portfolio, data.policy_dict(), as_text)
    b = build_problem(portfolio, data.policy_dict(), as_category)
    assert a.channels == b.channels
    np.testing.assert_array_equal(a.eligible, b.eligible)
    np.testing.assert_array_equal(a.value, b.value)


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["retain", "write_off", "restructure"])),
        max_size=25,
    ),
    categorical=st.booleans(),
)
def test_duplicate_options_agree_with_pandas(
    rows: list[tuple[int, str]], categorical: bool
) -> None:
    from npl_disposal.io.options import _duplicate_options

    frame = pd.DataFrame({"loan_id": [f"L{i}" for i, _ in rows], "channel": [c for _, c in rows]})
    if categorical:
        frame["channel"] = frame["channel"].astype("category")
    loan_pos = np.array([i for i, _ in rows], dtype=np.int64)
    expected = frame.duplicated(["loan_id", "channel"], keep=False).to_numpy()
    np.testing.assert_array_equal(_duplicate_options(frame, loan_pos), expected)
    ordered = frame.assign(_pos=loan_pos).sort_values("_pos", kind="stable")
    np.testing.assert_array_equal(
        _duplicate_options(ordered, ordered["_pos"].to_numpy()),
        ordered.duplicated(["loan_id", "channel"], keep=False).to_numpy(),
    )


@given(
    values=st.lists(st.one_of(_TEXT, st.none(), st.integers(0, 3)), max_size=30),
    dtype=st.sampled_from([object, "string"]),
)
def test_duplicated_agrees_with_pandas(values: list[str | int | None], dtype: object) -> None:
    if dtype == "string":
        values = [v if v is None else str(v) for v in values]
    series = pd.Series(values, dtype=dtype)  # type: ignore[call-overload]
    expected = series.duplicated(keep=False).to_numpy() & series.notna().to_numpy()
    np.testing.assert_array_equal(duplicated(series), expected)


def test_options_of_value_options_read_as_the_same_table_as_text() -> None:
    """The portfolio's own ids in order skip cleaning and lookup; the result is the same."""
    from npl_disposal import read_portfolio
    from npl_disposal.datasets import make_portfolio
    from npl_disposal.exceptions import PortfolioValidationError
    from npl_disposal.io.options import read_options
    from npl_disposal.valuation import value_options

    data = make_portfolio(200, 4, seed=5)
    portfolio = read_portfolio(data.loans, data.branches)
    options = value_options(portfolio)
    fast = read_options(options, portfolio)
    slow = read_options(options.assign(loan_id=options["loan_id"].astype("string")), portfolio)
    pd.testing.assert_frame_equal(fast, slow)
    broken = options.copy()
    broken.loc[3, "loan_id"] = "not a loan"
    broken.loc[7, "loan_id"] = None
    with pytest.raises(PortfolioValidationError) as error:
        read_options(broken, portfolio)
    assert {4, 8} <= set(error.value.problems["row"])


@given(
    values=st.lists(st.one_of(st.sampled_from(["retain", "write_off", "amc_b"]), st.none())),
    dtype=st.sampled_from([object, "string", "category"]),
)
def test_positions_in_agrees_with_an_index_lookup(values: list[str | None], dtype: object) -> None:
    names = ("write_off", "retain", "bulk_transfer")
    expected = [names.index(v) if v in names else -1 for v in values]
    got = positions_in(pd.Series(values, dtype=dtype), names)  # type: ignore[call-overload]
    assert got.dtype == np.int64
    assert got.tolist() == expected


def _copy(text: str) -> str:
    """An equal string that is a different object (where Python makes a new one)."""
    return "".join(["\u200b", text])[1:]


@given(
    st.lists(st.tuples(_TEXT, st.sampled_from(["same", "copy", "other"])), max_size=30),
    st.booleans(),
)
def test_equal_values_as_python_equality(pairs: list[tuple[str, str]], gather: bool) -> None:
    """By address where the objects are one, by value elsewhere: as ``==`` throughout."""
    a = np.array([text for text, _ in pairs], dtype=object)
    b = np.array(
        [text if how == "same" else _copy(text) if how == "copy" else text + "x"
         for text, how in pairs],
        dtype=object,
    )  # fmt: skip
    if gather and len(a):
        at = np.arange(len(a))[::-1].copy()
        expected = [x == y for x, y in zip(a[at], b, strict=True)]
        assert equal_values(a, b, at).tolist() == expected
    else:
        assert equal_values(a, b).tolist() == [x == y for x, y in zip(a, b, strict=True)]


@given(st.lists(st.one_of(st.none(), st.text(alphabet="=+-@\tab中 ", max_size=4)), max_size=30),
       st.integers(0, 3))  # fmt: skip
def test_starts_with_any_is_str_startswith(values: list[str | None], skip: int) -> None:
    """The first-byte reading of Arrow text agrees with pandas, sliced arrays and gaps too."""
    expected = [v is not None and v[:1] in ("=", "+", "-", "@", "\t") and v != "" for v in values]
    for dtype in ("string[pyarrow]", "string[python]", object):
        text = pd.Series(values, dtype=dtype)
        got = starts_with_any(text.iloc[skip:], "=+-@\t")
        assert got.tolist() == expected[skip:], dtype

"""``tables.write_csv`` writes what ``DataFrame.to_csv`` writes, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal.io.csv_output import write_csv

_TEXT = st.text(alphabet='AB01 贷,"-\n', min_size=1, max_size=5)
_FLOAT = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-05, 2.5e20, 1e16, np.nan, np.inf]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(_TEXT, _FLOAT, st.integers(-5, 5)), min_size=1, max_size=12),
    text_dtype=st.sampled_from(["str", object, "category"]),
)
def test_write_csv_reads_back_as_pandas_writes(
    tmp_path: Path, rows: list[tuple[str, float, int]], text_dtype: object
) -> None:
    frame = pd.DataFrame(
        {
            "loan_id": pd.Series([r[0] for r in rows], dtype=text_dtype),  # type: ignore[call-overload]
            "share": [r[1] for r in rows],
            "count": np.array([r[2] for r in rows], dtype=np.int64),
        }
    )
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    write_csv(frame, ours)
    frame.to_csv(theirs, index=False)
    read = {"dtype": {"loan_id": str}, "keep_default_na": False, "na_values": [""]}
    pd.testing.assert_frame_equal(pd.read_csv(ours, **read), pd.read_csv(theirs, **read))


def test_whole_shares_stay_floats(tmp_path: Path) -> None:
    plan = pd.DataFrame({"loan_id": ["L1", "L2"], "channel": ["retain", "write_off"],
                         "share": [1.0, 1.0]})  # fmt: skip
    write_csv(plan, tmp_path / "plan.csv")
    assert (tmp_path / "plan.csv").read_text().splitlines() == [
        "loan_id,channel,share",
        "L1,retain,1.0",
        "L2,write_off,1.0",
    ]
    assert pd.read_csv(tmp_path / "plan.csv")["share"].dtype == np.float64


def test_reading_a_frame_leaves_the_callers_frame_as_it_was() -> None:
    """Tables given as DataFrames are cleaned in a new frame, never in the caller's."""
    from npl_disposal import read_portfolio
    from npl_disposal.datasets import make_portfolio
    from npl_disposal.io.options import read_options
    from npl_disposal.valuation import value_options

    data = make_portfolio(40, 3, seed=2)
    loans = data.loans.copy()
    loans["branch"] = " " + loans["branch"].astype(str) + " "
    loans["balance"] = loans["balance"].astype(str)
    before = loans.copy()
    portfolio = read_portfolio(loans, data.branches)
    pd.testing.assert_frame_equal(loans, before)
    assert portfolio.loans["branch"].str.startswith(" ").sum() == 0
    options = value_options(portfolio)
    options["channel"] = options["channel"].astype(str) + " "
    kept = options.copy()
    read = read_options(options, portfolio)
    pd.testing.assert_frame_equal(options, kept)
    assert "_loan" in read.columns and "_loan" not in options.columns


def test_categories_already_clean_keep_their_codes() -> None:
    from npl_disposal.io.tables import _stripped_categories

    raw = pd.Series(pd.Categorical(["b", "a", None, "b"], categories=["b", "a"]))
    out = _stripped_categories(raw, empty_is_missing=True)
    assert out.tolist()[:2] == ["b", "a"] and pd.isna(out[2]) and out[3] == "b"
    messy = pd.Series(pd.Categorical(["b ", "a", " b", ""], categories=["b ", "a", " b", ""]))
    cleaned = _stripped_categories(messy, empty_is_missing=True)
    assert list(cleaned.cat.categories) == ["b", "a"]
    assert cleaned.tolist()[:3] == ["b", "a", "b"] and pd.isna(cleaned[3])



def _loans_file(path: Path, balance: str) -> Path:
    path.write_text(
        "loan_id,branch,balance,provision,classification\n"
        f"007,B1,{balance},10,substandard\n008,B2,200,20,doubtful\n",
        encoding="utf-8",
    )
    return path


def test_a_file_read_ahead_is_the_file_read_then() -> None:
    import npl_disposal
    from npl_disposal.io.schema import LOAN_COLUMNS
    from npl_disposal.io.tables import _AHEAD, read_ahead, read_table

    data = Path(npl_disposal.__file__).parent / "data"
    read_ahead([(data / "portfolio.csv", LOAN_COLUMNS), (data / "missing.csv", LOAN_COLUMNS)])
    assert len(_AHEAD) == 1
    ahead = read_table(data / "portfolio.csv", LOAN_COLUMNS)
    assert not _AHEAD
    pd.testing.assert_frame_equal(ahead, read_table(data / "portfolio.csv", LOAN_COLUMNS))


def test_a_file_changed_after_its_read_ahead_is_read_again(tmp_path: Path) -> None:
    from npl_disposal.io.schema import LOAN_COLUMNS
    from npl_disposal.io.tables import _AHEAD, read_ahead, read_table

    path = _loans_file(tmp_path / "loans.csv", "100")
    read_ahead([(path, LOAN_COLUMNS)])
    next(iter(_AHEAD.values())).done.wait()
    _loans_file(path, "1234.5")
    assert read_table(path, LOAN_COLUMNS)["balance"].tolist() == [1234.5, 200.0]
    assert not _AHEAD


def test_a_read_ahead_not_taken_is_forgotten(tmp_path: Path) -> None:
    from npl_disposal.io.schema import LOAN_COLUMNS
    from npl_disposal.io.tables import _AHEAD, forget_read_ahead, read_ahead

    read_ahead([(_loans_file(tmp_path / "loans.csv", "100"), LOAN_COLUMNS)])
    forget_read_ahead()
    assert not _AHEAD

"""``tables.write_csv`` writes what ``DataFrame.to_csv`` writes, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npl_disposal.tables import write_csv

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

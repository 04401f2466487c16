"""Migration matrices: estimation from loan-month histories, periods, projection."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npl_disposal import PortfolioValidationError, read_portfolio
from npl_disposal.datasets import make_history, make_portfolio
from npl_disposal.exceptions import MigrationMatrixError, MigrationWarning, NotFittedError
from npl_disposal.valuation import (
    ABSORBING_STATES,
    EXAMPLE_MATRIX,
    STATES,
    MigrationEstimator,
    MigrationMatrix,
    canonical_state,
    estimate_migration,
    project,
    read_matrix,
    write_matrix,
)

SETTINGS = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}

_SAMPLE = make_portfolio(60, 3, seed=5)
PORTFOLIO = read_portfolio(_SAMPLE.loans, _SAMPLE.branches)

# 4 loans over months 1-3 (written out by hand below).
HAND = pd.DataFrame(
    {
        "loan_id": ["A", "A", "A", "B", "B", "B", "C", "C", "C", "D", "D", "D"],
        "period": [1, 2, 3] * 4,
        "state": [
            "substandard",
            "substandard",
            "doubtful",
            "substandard",
            "doubtful",
            "loss",
            "doubtful",
            "doubtful",
            "recovered",
            "loss",
            "written_off",
            "written_off",
        ],
    }
)


def fit_quietly(history: pd.DataFrame, **kwargs: object) -> MigrationEstimator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MigrationWarning)
        return MigrationEstimator(**kwargs).fit(history)  # type: ignore[arg-type]


# --- cohort estimator on a hand-computed case --------------------------------------------


def test_cohort_by_hand() -> None:
    # pairs: A sub->sub, sub->dbt; B sub->dbt, dbt->loss; C dbt->dbt, dbt->rec;
    #        D loss->wo, wo->wo
    est = MigrationEstimator().fit(HAND.sample(frac=1.0, random_state=3))  # any row order
    states = ("substandard", "doubtful", "loss", "recovered", "written_off")
    assert est.matrix_.states == states
    counts = np.array(
        [
            [1, 2, 0, 0, 0],  # substandard: N = 3
            [0, 1, 1, 1, 0],  # doubtful: N = 3
            [0, 0, 0, 0, 1],  # loss: N = 1
            [0, 0, 0, 0, 0],  # recovered: never a from-state (absorbing: identity)
            [0, 0, 0, 0, 1],  # written_off: N = 1 (absorbing)
        ]
    )
    np.testing.assert_array_equal(est.counts_.to_numpy(), counts)
    assert list(est.exposure_) == [3, 3, 1, 0, 1]
    expected = np.array(
        [
            [1 / 3, 2 / 3, 0, 0, 0],
            [0, 1 / 3, 1 / 3, 1 / 3, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 0, 1],
        ]
    )
    np.testing.assert_allclose(est.matrix_.matrix, expected, atol=1e-15)
    assert est.matrix_.absorbing == ("recovered", "written_off")
    assert (est.n_loans_, est.n_records_, est.n_transitions_, est.n_gaps_) == (4, 12, 8, 0)
    assert est.generator_ is None
    assert est.unobserved_ == ()


def test_gaps_are_skipped_not_bridged() -> None:
    gap = pd.DataFrame(
        {"loan_id": ["E", "E", "E"], "period": [1, 3, 4], "state": ["normal", "loss", "loss"]}
    )
    with pytest.warns(MigrationWarning, match="normal"):
        est = MigrationEstimator().fit(pd.concat([HAND, gap], ignore_index=True))
    counts = est.counts_
    assert counts.loc["normal"].sum() == 0  # normal at 1 -> loss at 3 is not a transition
    assert counts.loc["loss", "loss"] == 1  # loss at 3 -> loss at 4 is
    assert est.n_gaps_ == 1
    assert est.n_transitions_ == 9
    # normal is never seen one month before another record: identity row, listed
    assert est.unobserved_ == ("normal",)
    assert est.matrix_.frame().loc["normal", "normal"] == 1.0


def test_unobserved_state_warns_or_raises() -> None:
    with pytest.warns(MigrationWarning, match="special_mention"):
        est = MigrationEstimator(states=STATES).fit(HAND)
    assert est.unobserved_ == ("normal", "special_mention")
    assert est.matrix_.states == STATES
    with pytest.raises(MigrationMatrixError, match="cannot be estimated"):
        MigrationEstimator(states=STATES, on_unobserved="raise").fit(HAND)


def test_explicit_states_and_absorbing() -> None:
    recovered_later = pd.DataFrame(
        {"loan_id": ["F"] * 3, "period": [1, 2, 3], "state": ["loss", "written_off", "recovered"]}
    )
    history = pd.concat([HAND, recovered_later], ignore_index=True)
    with pytest.raises(PortfolioValidationError, match="leaves absorbing state written_off"):
        MigrationEstimator().fit(history)
    states = ("substandard", "doubtful", "loss", "written_off", "recovered")
    est = MigrationEstimator(states=states, absorbing=("recovered",)).fit(history)
    assert est.matrix_.states == states
    assert est.matrix_.absorbing == ("recovered",)
    # written_off -> written_off (D) and written_off -> recovered (F): 1/2 each
    assert est.matrix_.frame().loc["written_off", "recovered"] == pytest.approx(0.5)


# --- input validation --------------------------------------------------------------------


def test_validation_names_row_loan_and_column() -> None:
    bad = pd.DataFrame(
        {
            "loan_id": ["A", "A", "B", "B", "C", "C", None, "D", "D"],
            "period": [1, 2, 1, 2.5, 1, 1, 1, 1, np.nan],
            "state": [
                "substandard",
                "zombie",
                "loss",
                "loss",
                "doubtful",
                "doubtful",
                "loss",
                "written_off",
                "loss",
            ],
        }
    )
    bad.loc[9] = ["D", 2, "loss"]  # row 10: after written_off at period 1
    with pytest.raises(PortfolioValidationError) as info:
        MigrationEstimator().fit(bad)
    err = info.value
    assert isinstance(err, ValueError)
    got = {(int(r.row), r.loan_id, r.column) for r in err.problems.itertuples()}
    assert got == {
        (2, "A", "state"),  # unknown state
        (4, "B", "period"),  # 2.5: not an integer month
        (5, "C", "period"),  # duplicate (C, 1)
        (6, "C", "period"),
        (7, None, "loan_id"),  # missing loan_id
        (9, "D", "period"),  # missing period
        (10, "D", "state"),  # leaves written_off
    }
    problems = err.problems.set_index("row")["problem"]
    assert problems[2] == "unknown state"
    assert problems[4] == "not an integer month number"
    assert "duplicate" in problems[5]
    assert problems[9] == "missing"
    assert "leaves absorbing state written_off (period 1)" in problems[10]
    text = str(err)
    assert "history, row 2, loan_id A, column state: unknown state (got 'zombie')" in text
    assert "row 4, loan_id B, column period: not an integer month number (got 2.5)" in text


def test_duplicate_month_in_clean_looking_history() -> None:
    history = make_history(50, 4, seed=1)
    doubled = pd.concat([history, history.iloc[[7]]], ignore_index=True)
    with pytest.raises(PortfolioValidationError) as info:
        MigrationEstimator().fit(doubled.iloc[::-1])
    problems = info.value.problems
    assert problems["row"].tolist() == [1, 194]  # rows of the reversed table
    assert set(problems["loan_id"]) == {"L0000007"}
    assert set(problems["column"]) == {"period"}


def test_nullable_and_datetime_periods() -> None:
    nullable = HAND.assign(period=pd.array([1, 2, 3] * 3 + [1, None, 3], dtype="Int64"))
    with pytest.raises(PortfolioValidationError, match="row 11, loan_id D, column period: missing"):
        MigrationEstimator().fit(nullable)
    months = pd.to_datetime(["2023-11-30", "2023-12-31", "2024-01-31"] * 4)
    dated = MigrationEstimator().fit(HAND.assign(period=months))
    np.testing.assert_array_equal(dated.counts_, MigrationEstimator().fit(HAND).counts_)


def test_missing_columns_and_empty_history() -> None:
    with pytest.raises(PortfolioValidationError) as info:
        MigrationEstimator().fit(HAND.drop(columns=["period"]))
    assert list(info.value.problems["column"]) == ["period"]
    assert "required column is missing" in str(info.value)
    with pytest.raises(PortfolioValidationError, match="no rows"):
        MigrationEstimator().fit(HAND.iloc[:0])


def test_unknown_state_lists_allowed_states() -> None:
    with pytest.raises(PortfolioValidationError) as info:
        MigrationEstimator(states=("substandard", "doubtful", "loss", "recovered")).fit(HAND)
    problems = info.value.problems
    assert set(problems["value"]) == {"written_off"}
    assert set(problems["allowed"]) == {"substandard, doubtful, loss, recovered"}


def test_no_consecutive_months_explains_yyyymm() -> None:
    monthly = pd.DataFrame(
        {
            "loan_id": ["A", "A", "B", "B"],
            "period": [202311, 202401, 202312, 202402],
            "state": ["loss"] * 4,
        }
    )
    with pytest.raises(PortfolioValidationError, match="year \\* 12 \\+ month"):
        MigrationEstimator().fit(monthly)
    across_year = pd.DataFrame(
        {"loan_id": ["A"] * 3, "period": [202311, 202312, 202401], "state": ["loss"] * 3}
    )
    with pytest.warns(MigrationWarning, match="yyyymm"):
        est = MigrationEstimator().fit(across_year)
    assert est.n_gaps_ == 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="method"):
        MigrationEstimator(method="markov").fit(HAND)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="absorbing"):
        MigrationEstimator(states=("loss", "doubtful"), absorbing=("repaid",)).fit(HAND)
    with pytest.raises(NotFittedError, match="fit"):
        MigrationEstimator().project({"loss": 1.0}, 3)


# --- aliases and files -------------------------------------------------------------------


def test_chinese_aliases_and_headers() -> None:
    chinese = {
        "substandard": "次级",
        "doubtful": "可疑类",
        "loss": "损失",
        "recovered": "已收回",
        "written_off": "核销",
    }
    history = pd.DataFrame(
        {
            "贷款编号": HAND["loan_id"],
            "期数": HAND["period"],
            "五级分类": HAND["state"].map(chinese),
        }
    )
    est = MigrationEstimator().fit(history)
    np.testing.assert_array_equal(est.matrix_.matrix, MigrationEstimator().fit(HAND).matrix_.matrix)
    for alias, name in [
        ("正常", "normal"),
        ("关注", "special_mention"),
        ("结清", "repaid"),
        ("已还清", "repaid"),
        ("收回", "recovered"),
        ("已核销", "written_off"),
        (" Written Off ", "written_off"),
        ("SPECIAL MENTION", "special_mention"),
        ("Sub-Standard", "substandard"),
    ]:
        assert canonical_state(alias) == name


def test_english_case_and_blanks() -> None:
    shouting = HAND.assign(
        state=HAND["state"].str.upper().str.replace("_", " ") + "  ",
        loan_id=" " + HAND["loan_id"],
    )
    est = MigrationEstimator().fit(shouting)
    np.testing.assert_array_equal(est.counts_, MigrationEstimator().fit(HAND).counts_)


@pytest.mark.parametrize(
    "kind", ["fixed_text", "fixed_digits", "object", "big_ints", "huge_ints", "ints"]
)
def test_loan_id_encodings_agree(kind: str) -> None:
    history = make_history(300, 8, seed=4)
    number = history["loan_id"].str[1:].astype(int)
    ids = {
        "fixed_text": history["loan_id"],  # Arrow text, 8 characters
        "fixed_digits": ("3201" + number.astype(str).str.zfill(10)).astype("str"),
        "object": history["loan_id"].astype(object),
        "big_ints": number * 10**12 + 7,
        "huge_ints": number * 2**53 - 2**62,  # too wide to pack with period and state
        "ints": number,
    }[kind]
    est = MigrationEstimator().fit(history.assign(loan_id=ids).sample(frac=1.0, random_state=1))
    reference = MigrationEstimator().fit(history)
    np.testing.assert_array_equal(est.counts_, reference.counts_)
    assert est.n_loans_ == 300


def test_csv_and_parquet_files(tmp_path: Path) -> None:
    history = make_history(200, 6, seed=2)
    reference = MigrationEstimator().fit(history).matrix_.matrix
    history.to_csv(tmp_path / "history.csv", index=False)
    history.to_parquet(tmp_path / "history.parquet")
    for name in ("history.csv", "history.parquet"):
        np.testing.assert_array_equal(
            MigrationEstimator().fit(tmp_path / name).matrix_.matrix, reference
        )
    bad = history.astype({"state": object})
    bad.loc[5, "state"] = "unknown"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(PortfolioValidationError, match=r"bad\.csv, row 6, loan_id L0000005"):
        MigrationEstimator().fit(tmp_path / "bad.csv")


def test_write_and_read_matrix(tmp_path: Path) -> None:
    est = MigrationEstimator().fit(HAND)
    path = write_matrix(est.matrix_, tmp_path / "matrix.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == ["from_state", *est.matrix_.states]
    assert list(table["from_state"]) == list(est.matrix_.states)
    np.testing.assert_allclose(table.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-12)
    again = read_matrix(path)
    np.testing.assert_array_equal(again.matrix, est.matrix_.matrix)
    assert [p.name for p in tmp_path.iterdir()] == ["matrix.csv"]  # no temporary left
    shuffled = table.set_index("from_state").iloc[::-1, ::-1]
    reread = MigrationMatrix.from_frame(shuffled)
    assert reread.states == est.matrix_.states[::-1]  # the rows' order is kept
    pd.testing.assert_frame_equal(reread.frame().iloc[::-1, ::-1], est.matrix_.frame())
    assert estimate_migration(HAND).matrix.tolist() == est.matrix_.matrix.tolist()


# --- the matrix object --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "states", "message"),
    [
        ([[1.0, 0.0]], ("a",), "square"),
        ([[1.0, 0.0], [0.0, 1.0]], ("a",), "2 x 2 but 1 state"),
        ([[1.0, 0.0], [0.0, 1.0]], ("loss", "损失"), "unique; repeated: loss"),
        ([[np.nan, 1.0], [0.0, 1.0]], ("a", "b"), "non-finite"),
        ([[1.2, -0.2], [0.0, 1.0]], ("a", "b"), "negative probability -0.2 from a to b"),
        ([[0.5, 0.4], [0.0, 1.0]], ("a", "b"), "a sums to 0.9"),
    ],
)
def test_matrix_validation(
    matrix: list[list[float]], states: tuple[str, ...], message: str
) -> None:
    with pytest.raises(MigrationMatrixError, match=message) as info:
        MigrationMatrix(np.array(matrix), states)
    assert isinstance(info.value, ValueError)


def test_matrix_is_read_only_and_canonical() -> None:
    m = MigrationMatrix([[0.5, 0.5], [0.0, 1.0]], ("次级", "已核销"), months=3)
    assert m.states == ("substandard", "written_off")
    assert m.absorbing == ("written_off",)
    with pytest.raises(ValueError, match="read-only"):
        m.matrix[0, 0] = 1.0
    frame = m.frame()
    assert (frame.index.name, frame.columns.name) == ("from_state", "to_state")


def test_power_and_periods() -> None:
    p = EXAMPLE_MATRIX
    np.testing.assert_allclose(p.power(5).matrix, np.linalg.matrix_power(p.matrix, 5), atol=1e-15)
    assert p.power(5).months == 5
    np.testing.assert_array_equal(p.power(0).matrix, np.eye(8))
    np.testing.assert_allclose(p.annual().matrix, p.power(12).matrix)
    assert p.annual().months == 12
    for k in (-1, 1.5, True):
        with pytest.raises(MigrationMatrixError, match="integer"):
            p.power(k)  # type: ignore[arg-type]
    back = p.annual().monthly()
    np.testing.assert_allclose(back.matrix, p.matrix, atol=1e-12)
    assert back.months == 1
    quarter = p.to_period(3)
    np.testing.assert_allclose(quarter.to_period(1).matrix, p.matrix, atol=1e-12)
    np.testing.assert_allclose(quarter.to_period(6).matrix, p.power(6).matrix, atol=1e-13)


@st.composite
def well_conditioned(draw: st.DrawFn) -> MigrationMatrix:
    n = draw(st.integers(2, 7))
    off = draw(arrays(np.float64, (n, n), elements=st.floats(0.0, 1.0)))
    off[off < 1e-3] = 0.0  # no subnormal rows
    np.fill_diagonal(off, 0.0)
    stay = draw(arrays(np.float64, n, elements=st.floats(0.9, 1.0)))
    sums = off.sum(axis=1)
    stay[sums == 0] = 1.0
    scale = np.divide(1.0 - stay, sums, out=np.zeros(n), where=sums > 0)
    matrix = off * scale[:, None] + np.diag(stay)
    matrix /= matrix.sum(axis=1, keepdims=True)
    return MigrationMatrix(matrix, tuple(f"s{i}" for i in range(n)))


@settings(max_examples=60, **SETTINGS)
@given(well_conditioned())
def test_monthly_annual_monthly_round_trip(p: MigrationMatrix) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MigrationWarning)  # no regularisation needed
        back = p.annual().monthly()
    np.testing.assert_allclose(back.matrix, p.matrix, atol=1e-8)
    assert back.absorbing == p.absorbing


def test_root_that_is_not_stochastic_is_regularised() -> None:
    swap = MigrationMatrix([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], ("a", "b", "c"))
    with pytest.warns(MigrationWarning, match="not a stochastic matrix"):
        half = swap.to_period(0.5)
    assert (half.matrix >= 0).all()
    np.testing.assert_allclose(half.matrix.sum(axis=1), 1.0, atol=1e-12)
    assert half.absorbing == ("c",)


def test_risk_officer_helpers() -> None:
    chain = MigrationMatrix(
        [[0.8, 0.1, 0.1], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]],
        ("normal", "substandard", "repaid"),
    )
    pd2 = chain.default_probability(2)
    # never substandard in 2 months: 0.8 * (0.8 + 0.1) + 0.1 = 0.82 (a cure still defaulted)
    assert pd2["normal"] == pytest.approx(0.18)
    assert pd2["substandard"] == 1.0 and pd2["repaid"] == 0.0
    absorbing = MigrationMatrix(
        [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], ("loss", "recovered", "written_off")
    )
    assert absorbing.expected_months_to_absorption()["loss"] == pytest.approx(2.0)
    ever = absorbing.absorption_probabilities()
    assert ever.loc["loss"].tolist() == pytest.approx([0.5, 0.5])
    within = absorbing.absorption_probabilities(2)
    assert within.loc["loss"].tolist() == pytest.approx([0.375, 0.375])
    assert "expected_months" in absorbing.outcomes(12).columns
    text = EXAMPLE_MATRIX.summary()
    assert "absorbing: repaid, recovered, written_off" in text and "substandard" in text
    # half of the loans in 'normal' end in the closed class {a, b} and are never repaid
    trapped = MigrationMatrix(
        [[0.5, 0.25, 0.0, 0.25], [0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0, 0, 0, 1.0]],
        ("normal", "a", "b", "repaid"),
    )
    assert trapped.absorption_probabilities()["repaid"].tolist() == pytest.approx(
        [0.5, 0.0, 0.0, 1.0]
    )
    assert trapped.expected_months_to_absorption().tolist() == [np.inf, np.inf, np.inf, 0.0]


# --- estimation properties ------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for loan in range(draw(st.integers(1, 6))):
        period = draw(st.integers(-2, 3))
        current: str | None = None
        for _ in range(draw(st.integers(1, 6))):
            state = draw(st.sampled_from(STATES))
            current = current if current in ABSORBING_STATES else state
            rows.append((f"L{loan}", period, current))
            period += draw(st.sampled_from([1, 1, 1, 2]))
    return pd.DataFrame(rows, columns=["loan_id", "period", "state"])


@settings(max_examples=80, **SETTINGS)
@given(histories(), st.sampled_from(["cohort", "aalen_johansen"]))
def test_estimated_rows_sum_to_one(history: pd.DataFrame, method: str) -> None:
    steps = history.groupby("loan_id")["period"].diff()
    if not (steps == 1).any():
        with pytest.raises(PortfolioValidationError, match="consecutive"):
            fit_quietly(history, method=method)
        return
    est = fit_quietly(history, method=method)
    m = est.matrix_.matrix
    assert (m >= 0).all()
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    assert set(ABSORBING_STATES) & set(est.matrix_.states) <= set(est.matrix_.absorbing)
    assert int(est.counts_.to_numpy().sum()) == est.n_transitions_ == int((steps == 1).sum())


def test_cohort_converges_to_true_matrix() -> None:
    history = make_history(20_000, 36, seed=11)
    est = MigrationEstimator().fit(history)
    truth = EXAMPLE_MATRIX.matrix
    n = est.exposure_.to_numpy()[:, None]
    band = 5 * np.sqrt(truth * (1 - truth) / np.maximum(n, 1)) + 1e-4
    assert (np.abs(est.matrix_.matrix - truth) <= band).all()
    assert n[:5].min() > 20_000  # every transient state well observed


def test_aalen_johansen_agrees_with_cohort_for_small_probabilities() -> None:
    quiet = MigrationMatrix(
        np.array(
            [
                [0.985, 0.010, 0.003, 0.000, 0.002],
                [0.010, 0.975, 0.010, 0.005, 0.000],
                [0.000, 0.005, 0.980, 0.010, 0.005],
                [0.000, 0.000, 0.000, 1.000, 0.000],
                [0.000, 0.000, 0.000, 0.000, 1.000],
            ]
        ),
        ("normal", "substandard", "loss", "recovered", "written_off"),
    )
    history = make_history(20_000, 24, seed=3, matrix=quiet)
    cohort = MigrationEstimator("cohort").fit(history)
    aj = MigrationEstimator("aalen_johansen").fit(history)
    assert np.abs(aj.matrix_.matrix - cohort.matrix_.matrix).max() < 5e-4
    assert np.abs(aj.matrix_.matrix - quiet.matrix).max() < 3e-3
    generator = aj.generator_
    assert generator is not None
    np.testing.assert_allclose(generator.sum(axis=1), 0.0, atol=1e-12)
    assert aj.matrix_.absorbing == ("recovered", "written_off")
    # two steps within a month (normal -> loss -> recovered): 0 by cohort, > 0 by AJ
    assert cohort.counts_.loc["normal", "recovered"] == 0
    assert aj.matrix_.frame().loc["normal", "recovered"] > 0


def test_make_history_follows_the_chain() -> None:
    a = make_history(500, 12, seed=9)
    assert a.equals(make_history(500, 12, seed=9))
    assert len(a) == 6000 and list(a.columns) == ["loan_id", "period", "state"]
    wide = a.pivot(index="loan_id", columns="period", values="state")
    absorbed = wide.isin(ABSORBING_STATES).to_numpy()
    assert (absorbed[:, 1:] >= absorbed[:, :-1]).all()  # once absorbed, always absorbed


# --- projection ----------------------------------------------------------------------------


@st.composite
def stochastic_matrices(draw: st.DrawFn) -> MigrationMatrix:
    raw = draw(arrays(np.float64, (8, 8), elements=st.floats(0.0, 1.0)))
    raw[raw < 1e-6] = 0.0
    raw[raw.sum(axis=1) == 0, :] = np.eye(8)[raw.sum(axis=1) == 0]
    raw /= raw.sum(axis=1, keepdims=True)
    return MigrationMatrix(raw, STATES)


@settings(max_examples=60, **SETTINGS)
@given(stochastic_matrices(), st.integers(0, 60))
def test_projection_conserves_probability(matrix: MigrationMatrix, months: int) -> None:
    out = project(PORTFOLIO, matrix, months)
    probs = out[[f"p_{s}" for s in STATES]].to_numpy()
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert ((out["npl_probability"] >= 0) & (out["npl_probability"] <= 1 + 1e-12)).all()
    assert (out["expected_npl_balance"] <= out["balance"] * (1 + 1e-12)).all()
    start = {"normal": 2.0, "loss": 3.0, "written_off": 5.0}
    after = matrix.propagate(start, months)
    assert after.sum() == pytest.approx(10.0)


def test_project_portfolio_table() -> None:
    loans = PORTFOLIO.loans
    now = project(PORTFOLIO, EXAMPLE_MATRIX, 0)
    one_hot = now[[f"p_{s}" for s in STATES]].to_numpy()
    expected = np.array(STATES)[None, :] == loans["classification"].astype(str).to_numpy()[:, None]
    np.testing.assert_array_equal(one_hot, expected.astype(float))
    later = MigrationEstimator().fit(make_history(3_000, 12, seed=1)).project(PORTFOLIO, 12)
    assert list(later.columns[:4]) == ["loan_id", "classification", "balance", "npl_age_months"]
    np.testing.assert_allclose(later["npl_age_months"], loans["npl_age_months"] + 12)
    npl = later[["p_substandard", "p_doubtful", "p_loss"]].sum(axis=1)
    np.testing.assert_allclose(later["npl_probability"], npl)
    np.testing.assert_allclose(later["expected_npl_balance"], loans["balance"] * npl)
    assert later["loan_id"].tolist() == loans["loan_id"].tolist()
    with pytest.raises(MigrationMatrixError, match="no such state"):
        project(PORTFOLIO, MigrationMatrix([[1.0]], ("loss",)), 3)


def test_estimator_projects_state_probabilities() -> None:
    est = MigrationEstimator().fit(HAND)
    after = est.project({"次级": 1.0}, 2)
    assert isinstance(after, pd.Series)
    assert after.sum() == pytest.approx(1.0)
    # sub -> sub -> {sub 1/9, dbt 2/9}; sub -> dbt -> {dbt 2/9, loss 2/9, rec 2/9}
    assert after["doubtful"] == pytest.approx(4 / 9)
    table = est.project(pd.DataFrame({"loss": [1.0, 0.0], "doubtful": [0.0, 100.0]}), 1)
    assert isinstance(table, pd.DataFrame)
    np.testing.assert_allclose(table.sum(axis=1), [1.0, 100.0])
    assert table.loc[0, "written_off"] == 1.0
    with pytest.raises(MigrationMatrixError, match="unknown state"):
        est.project({"zombie": 1.0}, 1)


def test_absorbing_states_stay_absorbing() -> None:
    est = MigrationEstimator().fit(make_history(2_000, 12, seed=8))
    m = est.matrix_
    assert m.absorbing == ABSORBING_STATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MigrationWarning)  # the half-month root is clipped
        half = m.to_period(0.5)
    for moved in (m.power(7), m.annual(), m.annual().monthly(), half):
        frame = moved.frame()
        for state in ABSORBING_STATES:
            assert frame.loc[state, state] == 1.0
            assert frame.loc[state].sum() == 1.0

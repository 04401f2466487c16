"""Files that open right: CSV outputs Excel reads on a Chinese desktop, and read back here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import load_policy
from npl_disposal.cli import EXIT_OK, main
from npl_disposal.datasets import sample_path
from npl_disposal.io.csv_output import write_csv

BOM = b"\xef\xbb\xbf"
NAMES = {"B001": "北京分行", "B002": "上海分行"}


@pytest.fixture(scope="module")
def chinese_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bundled sample with Chinese branch names."""
    folder = tmp_path_factory.mktemp("zh")
    files = {}
    for name in ("portfolio", "branches"):
        frame = pd.read_csv(sample_path(f"{name}.csv"), dtype=str)
        frame["branch"] = frame["branch"].replace(NAMES)
        files[name] = str(folder / f"{name}.csv")
        frame.to_csv(files[name], index=False)
    files["policy"] = str(sample_path("policy.toml"))
    files["options"] = str(sample_path("options.csv"))
    return files


def _plan(files: dict[str, str], out: Path, *extra: str) -> int:
    return main(["plan", files["portfolio"], "--branches", files["branches"],
                 "--policy", files["policy"], "--options", files["options"],
                 "--out", str(out), *extra])  # fmt: skip


def test_plan_writes_csv_with_a_byte_order_mark_by_default(
    chinese_sample: dict[str, str], tmp_path: Path
) -> None:
    assert _plan(chinese_sample, tmp_path / "out") == EXIT_OK
    for name in ("plan.csv", "branches.csv"):
        assert (tmp_path / "out" / name).read_bytes().startswith(BOM), name
    branches = (tmp_path / "out" / "branches.csv").read_bytes()[len(BOM):].decode("utf-8")
    assert "北京分行" in branches
    summary = (tmp_path / "out" / "summary.json").read_bytes()
    assert not summary.startswith(BOM)  # JSON has no byte-order mark
    json.loads(summary)
    # pandas skips the mark: the contract's column names come through as written
    assert list(pd.read_csv(tmp_path / "out" / "plan.csv").columns) == [
        "loan_id", "channel", "share"]  # fmt: skip
    assert pd.read_csv(tmp_path / "out" / "branches.csv").columns[0] == "branch"
    with open(tmp_path / "out" / "plan.csv", newline="", encoding="utf-8-sig") as f:
        assert next(csv.reader(f)) == ["loan_id", "channel", "share"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_every_encoding_reads_back_as_the_same_plan(
    chinese_sample: dict[str, str], tmp_path: Path, encoding: str
) -> None:
    plain, other = tmp_path / "plain", tmp_path / "other"
    assert _plan(chinese_sample, plain, "--encoding", "utf-8") == EXIT_OK
    assert _plan(chinese_sample, other, "--encoding", encoding) == EXIT_OK
    for name in ("plan.csv", "branches.csv"):
        theirs = pd.read_csv(other / name, encoding=encoding)
        pd.testing.assert_frame_equal(theirs, pd.read_csv(plain / name, encoding="utf-8"))
    raw = (other / "branches.csv").read_bytes()
    assert raw.startswith(BOM) == (encoding == "utf-8-sig")
    assert "上海分行".encode("gb18030" if encoding == "gb18030" else "utf-8") in raw
    # the plan, in any of these encodings, is input to the tolerance check
    args = ["tolerance", chinese_sample["portfolio"], "--branches", chinese_sample["branches"],
            "--policy", chinese_sample["policy"], "--options", chinese_sample["options"],
            "--plan", str(other / "plan.csv"), "--out", str(tmp_path / "tol.csv"),
            "--encoding", encoding]  # fmt: skip
    assert main(args) == EXIT_OK
    table = pd.read_csv(tmp_path / "tol.csv", encoding=encoding)
    assert "北京分行" in set(table["branch"])


def test_value_writes_options_that_plan_reads(
    chinese_sample: dict[str, str], tmp_path: Path
) -> None:
    for encoding in ("utf-8-sig", "gb18030"):
        options = tmp_path / f"options-{encoding}.csv"
        args = ["value", chinese_sample["portfolio"], "--out", str(options), "--encoding", encoding]
        assert main(args) == EXIT_OK
        files = {**chinese_sample, "options": str(options)}
        assert _plan(files, tmp_path / f"out-{encoding}") == EXIT_OK


def test_migration_matrix_in_gb18030_reads_back(tmp_path: Path) -> None:
    from npl_disposal.datasets import make_history
    from npl_disposal.valuation import read_matrix

    history = tmp_path / "history.csv"
    make_history(200, 12, seed=3).to_csv(history, index=False)
    out = tmp_path / "matrix.csv"
    assert main(["migration", str(history), "--out", str(out), "--encoding", "gb18030"]) == 0
    assert read_matrix(out).frame().shape[0] > 0


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ValueError, match="utf-8-sig, utf-8, gb18030"):
        write_csv(frame, tmp_path / "x.csv", encoding="latin-1")
    with pytest.raises(SystemExit):
        main(["value", str(sample_path("portfolio.csv")), "--out", "x.csv", "--encoding", "big5"])


def test_write_csv_keeps_the_plain_default(tmp_path: Path) -> None:
    write_csv(pd.DataFrame({"loan_id": ["L1"], "share": [1.0]}), tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").read_bytes().startswith(BOM)


def test_policy_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    text = "# 处置政策\n" + sample_path("policy.toml").read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    path.write_bytes(text.encode("utf-8-sig"))
    assert load_policy(path) == load_policy(sample_path("policy.toml"))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_portfolio_in_any_output_encoding_reads_the_same(tmp_path: Path, encoding: str) -> None:
    from npl_disposal import read_portfolio

    frame = pd.read_csv(sample_path("portfolio.csv"), dtype=str)
    frame["branch"] = frame["branch"].replace(NAMES)
    plain, other = tmp_path / "plain.csv", tmp_path / "other.csv"
    frame.to_csv(plain, index=False)
    frame.to_csv(other, index=False, encoding=encoding)
    pd.testing.assert_frame_equal(read_portfolio(other).loans, read_portfolio(plain).loans)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_recode_turns_a_utf8_file_into_the_encoding(tmp_path: Path, encoding: str) -> None:
    from npl_disposal.io.csv_output import recode

    text = "branch,ratio_after\n北京分行,0.0123\n"
    path = tmp_path / "b.csv"
    path.write_text(text, encoding="utf-8")
    recode(path, encoding)
    assert path.read_bytes() == text.encode(encoding)
    assert [p.name for p in tmp_path.iterdir()] == ["b.csv"]

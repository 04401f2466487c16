"""``npl-disposal sample --out DIR``: the bundled sample as files every command runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from npl_disposal import OutputError
from npl_disposal.cli import EXIT_BAD_INPUT, EXIT_OK, main
from npl_disposal.datasets import SAMPLE_FILES, sample_path, write_sample


def test_writes_the_files_as_bundled(tmp_path: Path) -> None:
    out = tmp_path / "new" / "sample"
    written = write_sample(out)
    assert [p.name for p in written] == list(SAMPLE_FILES)
    for name in SAMPLE_FILES:
        assert (out / name).read_bytes() == sample_path(name).read_bytes()
    assert sorted(p.name for p in tmp_path.joinpath("new").iterdir()) == ["sample"]


def test_an_empty_folder_is_filled(tmp_path: Path) -> None:
    write_sample(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SAMPLE_FILES)


def test_a_folder_with_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(OutputError, match=r"not empty \(mine\.txt\).*--force"):
        write_sample(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_force_replaces_the_sample_files_and_keeps_others(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep", encoding="utf-8")
    (tmp_path / "policy.toml").write_text("old", encoding="utf-8")
    write_sample(tmp_path, overwrite=True)
    assert (tmp_path / "mine.txt").read_text(encoding="utf-8") == "keep"
    assert (tmp_path / "policy.toml").read_bytes() == sample_path("policy.toml").read_bytes()


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.csv"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file"):
        write_sample(target)


def test_every_command_runs_on_the_written_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sample"
    assert main(["sample", "--out", str(out)]) == EXIT_OK
    assert "npl-disposal plan" in capsys.readouterr().out
    files = {n.split(".")[0]: str(out / n) for n in SAMPLE_FILES}
    assert main(["check", files["portfolio"], "--branches", files["branches"]]) == EXIT_OK
    plan = ["plan", files["portfolio"], "--branches", files["branches"], "--policy",
            files["policy"], "--options", files["options"],
            "--out", str(tmp_path / "plan")]  # fmt: skip
    assert main(plan) == EXIT_OK
    assert (tmp_path / "plan" / "plan.csv").exists()
    assert main(["sample", "--out", str(out)]) == EXIT_BAD_INPUT
    assert "--force" in capsys.readouterr().err
    assert main(["sample", "--out", str(out), "--force"]) == EXIT_OK


def test_frontier_and_migration_run_on_the_written_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sample"
    assert main(["sample", "--out", str(out)]) == EXIT_OK
    said = capsys.readouterr().out
    assert "npl-disposal frontier" in said and "npl-disposal migration" in said
    files = {n.split(".")[0]: str(out / n) for n in SAMPLE_FILES}
    frontier = ["frontier", files["portfolio"], "--branches", files["branches"], "--policy",
                files["policy"], "--scenarios", files["scenarios"], "--options",
                files["options"], "--mode", "fractional", "--aversion", "0,2",
                "--out", str(tmp_path / "frontier")]  # fmt: skip
    assert main(frontier) == EXIT_OK
    assert (tmp_path / "frontier" / "frontier.csv").exists()
    matrix = tmp_path / "matrix.csv"
    assert main(["migration", files["history"], "--out", str(matrix)]) == EXIT_OK
    assert matrix.exists()

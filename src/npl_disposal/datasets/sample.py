"""The bundled sample: 2,000 synthetic loans in 8 branches, with options and a policy.

The files are those ``npl-disposal demo`` runs on: ``portfolio.csv``, ``branches.csv``,
``options.csv`` and ``policy.toml`` (made by ``make_portfolio(2000, 8, seed=2022)``), and
``schedule_policy.toml``: the same policy over four quarters, with AMC auction windows in
Q1 and Q3 and a securitisation issue in Q4; ``scenarios.csv``, the standard recovery
stresses of the portfolio (``npl-disposal frontier``); ``history.csv``, a loan-month
history of 300 loans over 24 months (``npl-disposal migration``). :func:`write_sample`
copies them into a folder (``npl-disposal sample --out DIR``), so that every command can
be tried on files.

The bundled ``options.csv`` is the sample generator's own table; ``npl-disposal demo``
and a plan without ``--options`` value the loans with the library's valuation instead,
so their figures differ from a plan given ``--options options.csv``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from npl_disposal.exceptions import OutputError

__all__ = ["SAMPLE_FILES", "sample_path", "write_sample"]

#: The files of the bundled sample.
SAMPLE_FILES: tuple[str, ...] = (
    "portfolio.csv", "branches.csv", "options.csv", "policy.toml", "schedule_policy.toml",
    "scenarios.csv", "history.csv",
)  # fmt: skip


def sample_path(name: str) -> Path:
    """Path of a file of the bundled sample (``portfolio.csv``, ``branches.csv``, ...)."""
    if name not in SAMPLE_FILES:
        files = ", ".join(SAMPLE_FILES)
        raise ValueError(f"the bundled sample has no {name!r}; its files: {files}")
    return Path(str(resources.files("npl_disposal") / "data" / name))


def write_sample(folder: str | os.PathLike[str], overwrite: bool = False) -> list[Path]:
    """Copy the bundled sample's files into ``folder``; returns the paths written.

    ``folder`` may not exist yet (it is created) or be empty; then the files appear
    together or not at all. A folder holding anything else is refused with an
    :class:`~npl_disposal.OutputError` unless ``overwrite``: then the sample's
    files replace their namesakes there (each one whole) and other files are kept.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file; give a folder (it is created if missing)")
    present = sorted(os.listdir(out)) if out.is_dir() else []
    if present and not overwrite:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise OutputError(
            f"--out {out}: the folder is not empty ({shown}); give a new or empty folder, "
            f"or --force to overwrite the sample's files ({', '.join(SAMPLE_FILES)}) in it"
        )
    if present:
        from npl_disposal.io.output import write_file

        for name in SAMPLE_FILES:
            write_file(out / name, functools.partial(shutil.copyfile, sample_path(name)))
        return [out / name for name in SAMPLE_FILES]
    return _write_new(out)


def _write_new(out: Path) -> list[Path]:
    """The sample's files in a hidden sibling folder, renamed to ``out`` when all are there."""
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.npl-"))
    try:
        for name in SAMPLE_FILES:
            shutil.copyfile(sample_path(name), scratch / name)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(scratch, 0o777 & ~mask)
        if out.is_dir():
            out.rmdir()  # empty: checked above
        os.rename(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return [out / name for name in SAMPLE_FILES]

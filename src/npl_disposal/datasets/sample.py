"""The bundled sample: 2,000 synthetic loans in 8 branches, with options and a policy.

The files are those ``npl-disposal demo`` runs on: ``portfolio.csv``, ``branches.csv``,
``options.csv`` and ``policy.toml`` (made by ``make_portfolio(2000, 8, seed=2022)``), and
``schedule_policy.toml``: the same policy over four quarters, with AMC auction windows in
Q1 and Q3 and a securitisation issue in Q4.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SAMPLE_FILES", "sample_path"]

#: The files of the bundled sample.
SAMPLE_FILES: tuple[str, ...] = (
    "portfolio.csv", "branches.csv", "options.csv", "policy.toml", "schedule_policy.toml"
)


def sample_path(name: str) -> Path:
    """Path of a file of the bundled sample (``portfolio.csv``, ``branches.csv``, ...)."""
    if name not in SAMPLE_FILES:
        files = ", ".join(SAMPLE_FILES)
        raise ValueError(f"the bundled sample has no {name!r}; its files: {files}")
    return Path(str(resources.files("npl_disposal") / "data" / name))

"""Write the bundled synthetic sample into ``src/npl_disposal/data/``.

Usage (from the repository root)::

    PYTHONPATH=src python scripts/make_sample.py [OUT_DIR]

Writes ``portfolio.csv`` (2,000 loans, 8 branches, seed 2022), ``branches.csv``,
``options.csv``, ``policy.toml`` and ``schedule_policy.toml``; ``scenarios.csv`` (the
standard stresses of the written portfolio, for ``npl-disposal frontier``) and
``history.csv`` (a loan-month history of 300 loans over 24 months drawn from the example
migration matrix, for ``npl-disposal migration``). Money columns are written with two
decimals (cents) so they round-trip exactly; shares, ages, days and factors in full.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from npl_disposal.datasets import SAMPLE_FILES, SyntheticPortfolio, make_history, make_portfolio
from npl_disposal.io.portfolio import read_portfolio
from npl_disposal.io.schema import BRANCH_COLUMNS, LOAN_COLUMNS, OPTION_COLUMNS, Column
from npl_disposal.valuation.stress import stress_scenarios

N_LOANS, N_BRANCHES, SEED = 2000, 8, 2022
#: The sample history's size: loans and months.
HISTORY_LOANS, HISTORY_MONTHS = 300, 24
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "npl_disposal" / "data"

POLICY_HEADER = f"""\
# Synthetic sample policy for the bundled sample portfolio
# (npl_disposal.datasets.make_portfolio({N_LOANS}, {N_BRANCHES}, seed={SEED})).
# Not a real bank's policy: budgets are sized from the synthetic options table so that
# several constraints bind while a whole-loan plan exists. Money is CNY yuan.
# Regenerate with: PYTHONPATH=src python scripts/make_sample.py
"""


def write_csv(frame: pd.DataFrame, columns: tuple[Column, ...], path: Path) -> None:
    """Write ``frame`` with money columns at two decimals and everything else in full."""
    out = frame.copy()
    for col in columns:
        if col.kind == "money" and col.name in out:
            out[col.name] = out[col.name].map("{:.2f}".format)
    out.to_csv(path, index=False, lineterminator="\n")


SCHEDULE_HEADER = """\
# The same sample policy over four quarters: AMC auction windows in Q1 and Q3, one
# securitisation issue in Q4; the budgets are the year's totals. Plan it with
#   npl-disposal plan portfolio.csv --branches branches.csv --policy schedule_policy.toml --out DIR
"""


def toml_value(value: Any) -> str:
    """Format one TOML value (bool, int, float, str or a list of them)."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def schedule_policy(policy: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sample policy over four quarters, with its channels' windows."""
    out = {key: dict(keys) for key, keys in policy.items()}
    out = {"mode": out.pop("mode"), "schedule": {"periods": 4, "period_months": 3}, **out}
    out["bulk_transfer"]["windows"] = [1, 3]
    out["securitisation"]["windows"] = [4]
    return out


def policy_toml(policy: dict[str, dict[str, Any]], header: str = "") -> str:
    """Render a policy dict as TOML text, one table per section."""
    lines = [POLICY_HEADER + header]
    for section, keys in policy.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


def write_sample(portfolio: SyntheticPortfolio, out: Path) -> None:
    """Write the sample files of ``portfolio`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(portfolio.loans, LOAN_COLUMNS, out / "portfolio.csv")
    write_csv(portfolio.branches, BRANCH_COLUMNS, out / "branches.csv")
    write_csv(portfolio.options, OPTION_COLUMNS, out / "options.csv")
    (out / "policy.toml").write_text(policy_toml(portfolio.policy_dict()), encoding="utf-8")
    schedule = policy_toml(schedule_policy(portfolio.policy_dict()), SCHEDULE_HEADER)
    (out / "schedule_policy.toml").write_text(schedule, encoding="utf-8")
    written = read_portfolio(out / "portfolio.csv", out / "branches.csv")
    stress_scenarios(written).to_csv(out / "scenarios.csv", index=False, lineterminator="\n")
    history = make_history(HISTORY_LOANS, HISTORY_MONTHS, seed=SEED)
    history.to_csv(out / "history.csv", index=False, lineterminator="\n")


def main(argv: list[str]) -> int:
    """Generate the sample and report what was written."""
    out = Path(argv[0]) if argv else DEFAULT_OUT
    portfolio = make_portfolio(N_LOANS, N_BRANCHES, SEED)
    write_sample(portfolio, out)
    print(portfolio.summary())
    for name in SAMPLE_FILES:
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

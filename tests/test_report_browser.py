"""The report in a real browser: headless Chromium parses it, lays it out and draws it.

Skipped where no Chromium (or Chrome) is installed; CI installs one and keeps the
screenshots: set ``NPL_SCREENSHOTS`` to a folder to find them there
(``report_zh.png``, ``report_en.png``, ``schedule_zh.png``) for review.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from npl_disposal import build_problem, read_portfolio, solve
from npl_disposal.datasets import sample_path
from npl_disposal.model.schedule import build_schedule
from npl_disposal.reporting import TABLE_IDS, write_report
from npl_disposal.solvers.timing import timing_value
from strategies.samples import sample_plan_named
from strategies.schedule import two_window_tables

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER = os.environ.get("NPL_CHROMIUM") or next(
    (path for name in BROWSERS if (path := shutil.which(name))), None
)

pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no headless Chromium or Chrome installed"),
    pytest.mark.slow,
]
pytest.importorskip("matplotlib")


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-dev-shm-usage", "--no-first-run", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("NPL_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Dom(HTMLParser):
    """Table ids, charts and the text of the DOM the browser built."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.svgs = 0
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs |= {name for name, _ in attrs}
        if tag == "table":
            self.tables.append(dict(attrs).get("id") or "")
        elif tag == "svg":
            self.svgs += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _look(report: Path, shot: Path) -> _Dom:
    """The DOM Chromium builds from ``report``, and its screenshot at ``shot``."""
    url = report.resolve().as_uri()
    dumped = _browser("--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    taken = _browser(f"--screenshot={shot}", "--window-size=1280,3000", url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[:2] == (3000, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page
    return dom


@pytest.fixture(scope="module")
def result() -> object:
    pf = read_portfolio(sample_path("portfolio.csv"), sample_path("branches.csv"))
    problem = build_problem(pf, sample_path("policy.toml"), sample_path("options.csv"))
    return solve(problem, mode="fractional")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_in_a_browser(result: object, lang: str, tmp_path: Path) -> None:
    report = write_report(result, tmp_path, priced=result, lang=lang)  # type: ignore[arg-type]
    dom = _look(report, _shots(tmp_path) / f"report_{lang}.png")
    assert set(TABLE_IDS) <= set(dom.tables)
    assert dom.svgs >= 4
    text = "".join(dom.text)
    if lang == "zh":
        for word in ("处置方式结构", "保留清收", "批量转让", "资产证券化", "万元"):
            assert word in text
    else:
        assert "Channel mix" in text and "万元" not in text


def test_schedule_report_in_a_browser(tmp_path: Path) -> None:
    loans, options = two_window_tables(("支行甲", "支行乙", "支行丙"), 1.0)
    branches = pd.DataFrame({"branch": ["支行甲", "支行乙", "支行丙"],
                             "inclusive_loans": [1e4] * 3, "profit": [1e6] * 3})  # fmt: skip
    policy = {"schedule": {"periods": 2}, "bulk_transfer": {"capacity": 1e6},
              "write_off": {"quota": 1e6, "priority": "none"},
              "tolerance": {"bank_npl_ratio": 0.02, "at": "every_period"}}  # fmt: skip
    problem = build_schedule(loans, policy, options, branches)
    schedule = solve(problem, mode="whole_loan")
    report = write_report(schedule, tmp_path, lang="zh", timing=timing_value(problem))
    dom = _look(report, _shots(tmp_path) / "schedule_zh.png")
    assert {"summary", "schedule-mix", "tolerance-path", "timing", "budgets"} <= set(dom.tables)
    assert dom.svgs == 2
    text = "".join(dom.text)
    for word in ("第1期", "第2期", "支行甲", "全部首期处置", "逐期短视方案", "处置时机的价值"):
        assert word in text


#: Branch names that would run script if the report wrote them as markup.
HOSTILE = {"B001": "<script>alert(1)</script>", "B002": '"><img src=x onerror=alert(1)>'}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hostile_branch_names_are_text_not_markup(lang: str, tmp_path: Path) -> None:
    result = sample_plan_named(HOSTILE)
    report = write_report(result, tmp_path, priced=result, lang=lang)
    dom = _look(report, _shots(tmp_path) / f"hostile_{lang}.png")
    # The browser built no element from the names: no script, no image, no handler.
    assert "script" not in dom.tags and "img" not in dom.tags
    assert not any(name.startswith("on") for name in dom.attrs)
    assert dom.svgs >= 4  # the charts, drawn with the names on their axes
    text = "".join(dom.text)
    for name in HOSTILE.values():
        assert name in text  # shown as the bank wrote it

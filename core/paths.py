"""Where runs write their reports; free of Locust imports so command-line scripts can use it cheaply."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout the suite runs from."""

REPORTS_ROOT = Path("reports")
"""Default parent of run folders, relative to where Locust runs."""


def default_report_dir(test_type: str, now: datetime | None = None, root: Path = REPORTS_ROOT) -> Path:
    """``reports/<test-type>-<YYYYmmdd-HHMMSS>``, with a suffix if a run of the same second exists."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = root / f"{test_type}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{test_type}-{stamp}-{suffix}"
    return path

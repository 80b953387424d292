"""summary.json's ``failures``: each distinct failure in Locust's statistics (the request figures and totals come
from the metric book, core/book_measure.py)."""

from __future__ import annotations

from typing import Any


def failure_list(stats: Any) -> list[dict[str, Any]]:
    """Each distinct failure with how often it happened, most frequent first."""
    failures = [
        {"request": f"{error.method} {error.name}", "error": str(error.error), "occurrences": error.occurrences}
        for error in stats.errors.values()
    ]
    return sorted(failures, key=lambda f: -f["occurrences"])

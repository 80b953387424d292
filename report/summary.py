"""Builds summary.json's base sections from Locust's request statistics (a pure function of the stats)."""

from __future__ import annotations

from typing import Any

PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
"""Percentiles reported per request row, keyed by their name in summary.json."""


def entry_figures(entry: Any, duration_s: float) -> dict[str, Any]:
    """Count, failures, percentiles and rate of one Locust StatsEntry over the measured window."""
    figures: dict[str, Any] = {"count": entry.num_requests, "failures": entry.num_failures}
    for key, fraction in PERCENTILES.items():
        figures[key] = entry.get_response_time_percentile(fraction) if entry.num_requests else None
    figures["avg_ms"] = round(entry.avg_response_time, 2) if entry.num_requests else None
    figures["max_ms"] = round(entry.max_response_time, 2) if entry.num_requests else None
    figures["rps"] = round(entry.num_requests / duration_s, 3) if duration_s > 0 else None
    return figures


def request_figures(stats: Any, duration_s: float) -> dict[str, dict[str, Any]]:
    """Figures per stats row, keyed ``"<request type> <name>"`` like ``"POST chat:simple"``."""
    return {
        f"{entry.method} {entry.name}": entry_figures(entry, duration_s)
        for entry in sorted(stats.entries.values(), key=lambda e: (e.method or "", e.name))
    }


def totals(stats: Any, duration_s: float) -> dict[str, Any]:
    """The aggregated row, with the failure ratio."""
    figures = entry_figures(stats.total, duration_s)
    figures["fail_ratio"] = round(stats.total.fail_ratio, 6)
    return figures


def failure_list(stats: Any) -> list[dict[str, Any]]:
    """Each distinct failure with how often it happened, most frequent first."""
    failures = [
        {"request": f"{error.method} {error.name}", "error": str(error.error), "occurrences": error.occurrences}
        for error in stats.errors.values()
    ]
    return sorted(failures, key=lambda f: -f["occurrences"])

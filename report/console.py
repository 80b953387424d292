"""Console output of the command-line scripts: the live progress line and the end-of-run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report.verdict import headline as verdict_figures

PROGRESS_PREFIX = "chatswarm-progress "
"""What a machine-readable progress line of a Locust run starts with (plugins/output/progress.py prints them)."""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def progress_line(state: dict[str, Any]) -> str:
    """One status line such as ``[ 12s/60s] users 20 | requests 340 | failures 0 | 8.1 req/s``."""
    total = state.get("run_time_s")
    elapsed = f"{state['elapsed_s']:>4.0f}s" + (f"/{total:.0f}s" if total else "")
    parts = [
        f"[{elapsed}] users {state['users']}",
        f"requests {state['requests']}",
        f"failures {state['failures']}",
        f"{state['rps']:.1f} req/s",
    ]
    if state.get("step"):
        parts.append(str(state["step"]))
    return " | ".join(parts)


def summary_screen(summary: dict[str, Any], report_dir: Path) -> str:
    """The one-screen summary printed after a run: one row per request name, totals, failures, where to look."""
    rows = summary.get("requests", {})
    width = max([len(name) for name in rows] + [24])
    header = f"{'request':<{width}} {'count':>8} {'failures':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}"
    lines = [
        f"{summary.get('test_type', 'test')} test against {summary.get('host')} — {summary.get('duration_s', 0):.0f} s",
        "",
        header,
        "-" * len(header),
    ]
    verdict = (summary.get("verdict") or {}).get("answer")
    lines[1:1] = [f"ANSWER: {verdict}"] if verdict else []
    lines[1:1] = [f"NOTE: {note}" for note in summary.get("notes", [])]
    for name, figures in [*rows.items(), ("Total", summary.get("totals", {}))]:
        if name == "Total":
            lines.append("-" * len(header))
        lines.append(
            f"{name:<{width}} {figures.get('count', 0):>8} {figures.get('failures', 0):>9} "
            f"{_ms(figures.get('p50_ms')):>8} {_ms(figures.get('p95_ms')):>8} {_ms(figures.get('p99_ms')):>8} "
            f"{figures.get('rps') or 0:>7.1f}"
        )
    headline = verdict_figures(summary)
    if headline:
        lines += ["", *headline]
    totals = summary.get("totals", {})
    if totals.get("count") and "failure ratio" not in (verdict or ""):  # else the answer says it
        lines.append(f"\nfailure ratio {totals.get('fail_ratio', 0):.2%}")
    failures = summary.get("failures", [])
    if failures:
        lines.append("failures:")
        lines += [f"  {f['occurrences']:>6} x {f['request']}: {f['error']}" for f in failures[:5]]
        if len(failures) > 5:
            lines.append(f"  … and {len(failures) - 5} more kinds (see the report)")
    if verdict:
        lines.append(f"\nANSWER: {verdict}")
    lines.append(f"\nreport: {report_dir}/index.html  (Locust's report.html, the CSV files and summary.json beside it)")
    return "\n".join(lines)

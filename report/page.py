"""The run folder's own page, index.html: the numbers that matter, with plots, in one file to hand on.

Built from the files of a run folder only (summary.json, stats_stats_history.csv, requests.csv,
resources.csv), so ``scripts/report.py RUN_DIR`` can rebuild it any time; no Locust import here. Plots
are matplotlib PNGs embedded in the page. A missing optional file leaves its plot out; a missing or
broken summary.json is an InputError naming the folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from core.errors import InputError
from report.audio_page import audio_tables

PAGE = "index.html"
HISTORY = "stats_stats_history.csv"
REQUESTS = "requests.csv"
RESOURCES = "resources.csv"


def load_summary(run_dir: Path) -> dict[str, Any]:
    """summary.json of a run folder, or an InputError saying what is wrong with the folder."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    path = run_dir / "summary.json"
    if not path.is_file():
        raise InputError(f"{run_dir}: no summary.json here; is it a run folder (reports/<type>-<time>)?")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error}); the run may have been cut off") from None
    if not isinstance(summary, dict) or "requests" not in summary:
        raise InputError(f"{path}: not a Chatswarm summary (no 'requests' section)")
    return summary


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read as CSV ({str(error).splitlines()[0]})") from None


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def history_plots(history: pd.DataFrame, started: float | None = None) -> list[tuple[str, str]]:
    """Users, requests/s, p50/p95 and failures over time (seconds since the test's start, so idle time before
    the web UI's Start is left out); latency and error rate against users."""
    total = history[history["Name"] == "Aggregated"].copy()
    if started is not None:
        total = total[total["Timestamp"] >= int(started)]
    if total.empty:
        return []
    total["t"] = total["Timestamp"] - (int(started) if started is not None else total["Timestamp"].iloc[0])
    for column in ("50%", "95%"):  # 0 while no answer is in Locust's window yet: no value, not 0 ms
        total[column] = pd.to_numeric(total[column], errors="coerce").where(lambda v: v > 0)
    figure, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    users_line = axes[0].plot(total["t"], total["User Count"], color="tab:blue", label="users")
    twin = axes[0].twinx()
    rps_line = twin.plot(total["t"], total["Requests/s"], color="tab:green", label="requests/s")
    axes[0].set_ylabel("users")
    twin.set_ylabel("requests/s")
    axes[0].legend(handles=[*users_line, *rps_line], loc="upper left")
    axes[0].set_title("Users and throughput")
    axes[1].plot(total["t"], total["50%"], label="p50")
    axes[1].plot(total["t"], total["95%"], label="p95")
    axes[1].set_ylabel("ms")
    axes[1].set_title("Response time (last ~10 s)")
    axes[1].legend()
    axes[2].plot(total["t"], total["Failures/s"], color="tab:red")
    axes[2].set_ylabel("failures/s")
    for axis in (axes[0], twin, axes[1], axes[2]):
        axis.set_ylim(bottom=0)  # counts and times are never negative, also when all are zero
    axes[2].set_xlabel("seconds since start")
    plots = [("Over time", _png(figure))]
    by_users = total[total["User Count"] > 0].groupby("User Count")
    if by_users.ngroups >= 2:
        figure, axis = plt.subplots(figsize=(10, 4))
        p95 = by_users["95%"].median()
        axis.plot(p95.index, p95.values, marker="o", label="p95 (ms)")
        axis.set_xlabel("users")
        axis.set_ylabel("p95 ms")
        rates = by_users[["Requests/s", "Failures/s"]].sum()
        error_rate = (rates["Failures/s"] / rates["Requests/s"].where(rates["Requests/s"] > 0)).fillna(0)
        twin = axis.twinx()
        twin.plot(error_rate.index, error_rate.values * 100, color="tab:red", marker="x", label="error rate %")
        twin.set_ylabel("error rate %")
        axis.set_ylim(bottom=0)
        twin.set_ylim(bottom=0)
        axis.set_title("Latency and error rate against users")
        plots.append(("Against users", _png(figure)))
    return plots


def steps_plot(steps: list[dict[str, Any]]) -> tuple[str, str]:
    """A breakpoint test's steps: p95 and failure ratio per user count, passing steps marked."""
    figure, axis = plt.subplots(figsize=(10, 4))
    users = [s["users"] for s in steps]
    axis.plot(users, [s.get("p95_ms") for s in steps], marker="o", label="p95 ms")
    for step in steps:
        axis.annotate("ok" if step["passed"] else "breach", (step["users"], step.get("p95_ms") or 0))
    twin = axis.twinx()
    twin.plot(users, [(s.get("fail_ratio") or 0) * 100 for s in steps], color="tab:red", marker="x")
    axis.set_xlabel("users")
    axis.set_ylabel("p95 ms")
    twin.set_ylabel("failures %")
    axis.set_title("Breakpoint steps")
    return "Breakpoint steps", _png(figure)


def pid_plot(trace: list[dict[str, Any]]) -> tuple[str, str]:
    """The PID controller's trace: target, measured latency and users over time."""
    figure, axis = plt.subplots(figsize=(10, 4))
    times = [p["time_s"] for p in trace]
    axis.plot(times, [p["measured_ms"] for p in trace], marker="o", label="measured")
    axis.plot(times, [p["target_ms"] for p in trace], linestyle="--", label="target")
    axis.set_ylabel("ms")
    axis.legend(loc="upper left")
    twin = axis.twinx()
    twin.step(times, [p["users"] for p in trace], where="post", color="tab:gray", label="users")
    twin.set_ylabel("users")
    axis.set_xlabel("seconds")
    axis.set_title("PID controller")
    return "PID trace", _png(figure)


def stream_plots(requests: pd.DataFrame) -> list[tuple[str, str]]:
    """TTFT and mean inter-token latency distributions of streamed answers."""
    plots = []
    for column, title in (("ttft_ms", "Time to first token"), ("mean_itl_ms", "Mean inter-token latency per answer")):
        if column not in requests:
            continue
        values = pd.to_numeric(requests[column], errors="coerce").dropna()
        if values.empty:
            continue
        figure, axis = plt.subplots(figsize=(10, 3.5))
        axis.hist(values, bins=60)
        axis.set_xlabel("ms")
        axis.set_ylabel("answers")
        axis.set_title(title)
        plots.append((title, _png(figure)))
    return plots


def resource_plots(resources: pd.DataFrame) -> list[tuple[str, str]]:
    """CPU and memory of the watched processes over time."""
    if resources.empty:
        return []
    resources = resources.copy()
    resources["t"] = resources["time"] - resources["time"].min()
    per_label = resources.groupby(["label", "t"])[["cpu_percent", "memory_mb"]].sum().reset_index()
    figure, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for label, rows in per_label.groupby("label"):
        axes[0].plot(rows["t"], rows["cpu_percent"], label=label)
        axes[1].plot(rows["t"], rows["memory_mb"], label=label)
    axes[0].set_ylabel("CPU %")
    axes[0].axhline(100, color="gray", linewidth=0.5)
    axes[0].legend()
    axes[1].set_ylabel("memory MB")
    axes[1].set_xlabel("seconds")
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylim(bottom=0)
    axes[0].set_title("Resources over time")
    return [("Resources over time", _png(figure))]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if value is None:
        return "-"
    return html.escape(str(value))


def table(rows: Iterable[dict[str, Any]], columns: list[str] | None = None) -> str:
    """An HTML table of dicts (columns from the first row unless given)."""
    rows = list(rows)
    if not rows:
        return ""
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


DISTRIBUTION_KEYS = frozenset(("count", "mean", "p50", "p95", "p99", "peak"))
"""Keys that make a nested dict a distribution (one table row with its figures as columns)."""


def flatten(section: dict[str, Any], prefix: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A section's distributions (``{"metric": name, p50: …}`` rows) and single figures (``figure``/``value``
    rows); nested groups such as ``calls`` or ``fanout_ms`` → ``echo`` are named ``calls started``,
    ``fanout_ms echo``."""
    distributions: list[dict[str, Any]] = []
    figures: list[dict[str, Any]] = []
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if DISTRIBUTION_KEYS & set(value) and not any(isinstance(v, dict) for v in value.values()):
                distributions.append({"metric": name, **value})
            else:
                inner_distributions, inner_figures = flatten(value, f"{name} ")
                distributions += inner_distributions
                figures += inner_figures
        elif not isinstance(value, list):
            figures.append({"figure": name, "value": value})
    return distributions, figures


def section_tables(section: dict[str, Any]) -> str:
    """A summary section as tables: one for its distributions, one for its single figures."""
    distributions, figures = flatten(section)
    columns = list(dict.fromkeys(key for row in distributions for key in row))
    return table(distributions, columns) + table(figures)


def workers_tables(workers: dict[str, Any]) -> str:
    return section_tables(workers) + table(workers.get("by_worker", []))


def shape_tables(shape: dict[str, Any]) -> str:
    steps = shape.get("steps")
    columns = ["users", "rps", "p50_ms", "p95_ms", "fail_ratio", "passed", "breached"]
    return section_tables(shape) + (table(steps, columns) if steps else "")


def resources_tables(resources: dict[str, Any]) -> str:
    rows = [
        {
            "process": label,
            "peak CPU %": f["cpu_percent"]["peak"],
            "mean CPU %": f["cpu_percent"]["mean"],
            "peak memory MB": f["memory_mb"]["peak"],
            "peak threads": f["threads"]["peak"],
            "peak open files": f["open_files"]["peak"],
        }
        for label, f in resources.get("processes", {}).items()
    ]
    warnings = [f"<p class='warn'>Bottleneck: {html.escape(b)}</p>" for b in resources.get("bottlenecks", [])]
    return table(rows) + "".join(warnings)


SECTIONS: dict[str, tuple[str | Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], str]]] = {
    "llm": ("LLM metrics", section_tables),
    "websocket": ("WebSocket", section_tables),
    "arrival": ("Arrival rate", section_tables),
    "plenary": ("Group chat", section_tables),
    "audio": ("Audio calls", lambda audio: audio_tables(audio, section_tables)),
    "cloudwatch": ("AWS CloudWatch", section_tables),
    "retry_after": ("Waits for Retry-After (HTTP 429)", section_tables),
    "workers": ("Workers", workers_tables),
    "shape": (lambda shape: f"Load shape: {shape.get('name')}", shape_tables),
    "trend": ("Latency and throughput over the run", section_tables),
    "resources": ("Resources", resources_tables),
}
"""summary.json's sections on the page, in order: key → (title or a function of the section, renderer).
A plugin that adds a section to summary.json adds its row here."""


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.pass { color: #176b2c; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }
.answer { font-size: 1.15em; background: #eef5ff; border: 1px solid #9bbbe0; padding: 0.6em; }
img { max-width: 100%; }
"""


def render(summary: dict[str, Any], plots: list[tuple[str, str]]) -> str:
    """The page's HTML."""
    parts = [
        f"<h1>{html.escape(str(summary.get('test_type', 'test')))} test</h1>",
        f"<p>{html.escape(str(summary.get('host')))} · started {html.escape(str(summary.get('started')))} · "
        f"{summary.get('duration_s', 0):.0f} s</p>",
    ]
    parts += [f"<p class='warn'>{html.escape(note[0].upper() + note[1:])}</p>" for note in summary.get("notes", [])]
    generator = summary.get("generator") or {}
    if generator and not generator.get("trustworthy", True):
        parts.append(f"<p class='warn'>{html.escape(generator.get('advice', 'The load generator was saturated.'))}</p>")
    verdict = summary.get("verdict")
    if verdict and verdict.get("answer"):
        parts.append(f"<p class='answer'><b>Answer:</b> {html.escape(verdict['answer'])}</p>")
    if verdict and "success_rate" in verdict:
        parts.append(f"<p>Success rate {verdict['success_rate']:.1%}: <b>{html.escape(verdict['assessment'])}</b></p>")
    if summary.get("slo"):
        rows = [
            {
                "slo": r["slo"],
                "value": r["value"],
                "verdict": "PASS" if r["passed"] else "NO DATA" if r["passed"] is None else "FAIL",
            }
            for r in summary["slo"]
        ]
        parts += ["<h2>Service level objectives</h2>", table(rows)]
        parts[-1] = (
            parts[-1]
            .replace("<td>PASS</td>", "<td class='pass'>PASS</td>")
            .replace("<td>FAIL</td>", "<td class='fail'>FAIL</td>")
        )
    requests = [{"request": name, **figures} for name, figures in summary.get("requests", {}).items()]
    parts += ["<h2>Requests</h2>", table([*requests, {"request": "Total", **summary.get("totals", {})}])]
    for key, (title, render_section) in SECTIONS.items():
        section = summary.get(key)
        if isinstance(section, dict):
            heading = title(section) if callable(title) else title
            parts += [f"<h2>{html.escape(heading)}</h2>", render_section(section)]
    if summary.get("failures"):
        parts += ["<h2>Failures</h2>", table(summary["failures"])]
    for title, png in plots:
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    parts.append(
        "<h2>Files</h2><p><a href='report.html'>Locust's report</a> · <a href='summary.json'>summary.json</a> · "
        "<a href='requests.csv'>requests.csv</a> · <a href='stats_stats.csv'>stats_stats.csv</a> · "
        "<a href='stats_stats_history.csv'>stats_stats_history.csv</a></p>"
    )
    title = html.escape(f"Chatswarm {summary.get('test_type', '')} report")
    head = f"<head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>"
    return f"<!DOCTYPE html><html>{head}<body>{''.join(parts)}</body></html>"


def _epoch(started: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(started)).timestamp()
    except ValueError:
        return None


def build_report(run_dir: Path) -> Path:
    """Write ``index.html`` into a run folder from its files; returns its path."""
    summary = load_summary(run_dir)
    plots: list[tuple[str, str]] = []
    history = _read_csv(run_dir / HISTORY)
    if history is not None:
        plots += history_plots(history, _epoch(summary.get("started")))
    shape = summary.get("shape") or {}
    if shape.get("steps"):
        plots.append(steps_plot(shape["steps"]))
    if shape.get("trace"):
        plots.append(pid_plot(shape["trace"]))
    requests = _read_csv(run_dir / REQUESTS, usecols=lambda c: c in ("ttft_ms", "mean_itl_ms"))
    if requests is not None:
        plots += stream_plots(requests)
    resources = _read_csv(run_dir / RESOURCES)
    if resources is not None:
        plots += resource_plots(resources)
    page = run_dir / PAGE
    page.write_text(render(summary, plots), encoding="utf-8")
    return page

"""Compare two runs, e.g. this release against the last: ``python scripts/compare.py RUN_A RUN_B``.

Prints a side-by-side table of every request row (p50/p95/p99, requests/s, failures) and the LLM metrics,
writes it to RUN_B/comparison.md, and flags regressions: latency up or throughput down by more than
--tolerance (default 10%), or more failures. Exit code 3 when something regressed, 0 otherwise, 2 for a
bad run folder.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import InputError  # noqa: E402
from report.page import load_summary  # noqa: E402

REGRESSION_EXIT_CODE = 3
LATENCY_FIGURES = ("p50_ms", "p95_ms", "p99_ms")
LLM_FIGURES = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")


@dataclass(frozen=True)
class Change:
    """One figure in both runs."""

    row: str
    figure: str
    before: float | None
    after: float | None
    higher_is_worse: bool

    @property
    def relative(self) -> float | None:
        if self.before in (None, 0) or self.after is None:
            return None
        return (self.after - self.before) / self.before

    def regressed(self, tolerance: float) -> bool:
        """Worse by more than the tolerance (any increase in failures counts)."""
        if self.figure == "failures":
            return (self.after or 0) > (self.before or 0)
        change = self.relative
        if change is None:
            return False
        return change > tolerance if self.higher_is_worse else change < -tolerance


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every comparable figure of two summaries."""
    found = []
    for row in sorted(set(before["requests"]) | set(after["requests"])):
        old, new = before["requests"].get(row, {}), after["requests"].get(row, {})
        for figure in LATENCY_FIGURES:
            found.append(Change(row, figure, old.get(figure), new.get(figure), True))
        found.append(Change(row, "rps", old.get("rps"), new.get("rps"), False))
        found.append(Change(row, "failures", old.get("failures"), new.get("failures"), True))
    old_llm, new_llm = before.get("llm") or {}, after.get("llm") or {}
    for metric in LLM_FIGURES:
        for percentile in ("p50", "p95", "p99"):
            old, new = (old_llm.get(metric) or {}).get(percentile), (new_llm.get(metric) or {}).get(percentile)
            if old is not None or new is not None:
                found.append(Change("LLM", f"{metric} {percentile}", old, new, True))
    if old_llm or new_llm:
        tokens = (old_llm.get("output_tokens_per_s"), new_llm.get("output_tokens_per_s"))
        found.append(Change("LLM", "output tokens/s", *tokens, False))
    return found


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render(run_a: Path, run_b: Path, found: list[Change], tolerance: float) -> str:
    """The comparison as a Markdown table."""
    lines = [
        f"# {run_b.name} compared with {run_a.name}",
        "",
        f"Regression: latency up or throughput down by more than {tolerance:.0%}, or more failures.",
        "",
        f"| row | figure | {run_a.name} | {run_b.name} | change | |",
        "|---|---|---|---|---|---|",
    ]
    for change in found:
        relative = "" if change.relative is None else f"{change.relative:+.1%}"
        flag = "**REGRESSION**" if change.regressed(tolerance) else ""
        before, after = _number(change.before), _number(change.after)
        lines.append(f"| {change.row} | {change.figure} | {before} | {after} | {relative} | {flag} |")
    regressions = [c for c in found if c.regressed(tolerance)]
    lines += ["", f"{len(regressions)} regression(s)." if regressions else "No regressions."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Compare; 3 when something regressed, 0 otherwise, 2 for a bad run folder or option."""
    parser = argparse.ArgumentParser(prog="compare.py", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path, help="the earlier run folder (the baseline)")
    parser.add_argument("run_b", type=Path, help="the later run folder")
    parser.add_argument("--tolerance", type=float, default=10.0, help="allowed change in percent (default 10)")
    parser.add_argument("--out", type=Path, help="where to write the table (default RUN_B/comparison.md)")
    options = parser.parse_args(argv)
    try:
        before, after = load_summary(options.run_a), load_summary(options.run_b)
    except InputError as error:
        print(f"compare: error: {error}", file=sys.stderr)
        return 2
    tolerance = options.tolerance / 100
    found = changes(before, after)
    text = render(options.run_a, options.run_b, found, tolerance)
    print(text, end="")
    (options.out or options.run_b / "comparison.md").write_text(text, encoding="utf-8")
    return REGRESSION_EXIT_CODE if any(c.regressed(tolerance) for c in found) else 0


if __name__ == "__main__":
    sys.exit(main())

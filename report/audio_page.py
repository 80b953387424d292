"""The page's audio section: what calls were like for the callers first (set up, abandoned, dead air, TTFA turn by
turn), then every figure of summary.json's ``audio`` as the other sections show theirs."""

from __future__ import annotations

import html
from typing import Any


def caller_experience(section: dict[str, Any]) -> str:
    """One line on calls as callers lived them: setup success, abandonment, dead air."""
    setup, dead_air = section.get("setup") or {}, section.get("dead_air") or {}
    parts = []
    if setup.get("success_rate") is not None:
        parts.append(
            f"call setup {setup['success_rate']:.1%} ({setup['set_up']} of {setup['tried']} connected and answered)"
        )
    parts.append(f"{(section.get('calls') or {}).get('abandoned', 0)} abandoned (out of patience)")
    if dead_air.get("threshold_ms"):
        longest = (dead_air.get("longest_silence_ms") or {}).get("p95")
        parts.append(
            f"{dead_air['silences_over_threshold']} silences of {dead_air['threshold_ms']:.0f} ms or more in "
            f"{dead_air['calls_with_dead_air']} calls; longest silence per call p95 "
            + ("-" if longest is None else f"{longest:.0f} ms")
        )
    return f"<p>Callers: {html.escape('; '.join(parts))}</p>"


def ttfa_by_turn(section: dict[str, Any]) -> str:
    """TTFA of turn 1, 2, … as rows, so a bot that slows down as a conversation goes on shows."""
    turns = section.get("ttfa_by_turn_ms") or {}
    if not turns:
        return ""
    head = "<tr><th>turn</th><th>answers</th><th>TTFA p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(turn)}</td><td>{f['count']}</td>"
        + "".join(f"<td>{'-' if f[p] is None else f'{f[p]:,.1f}'}</td>" for p in ("p50", "p95", "p99"))
        + "</tr>"
        for turn, f in turns.items()
    )
    return f"<table>{head}{rows}</table>"


def audio_tables(section: dict[str, Any], rest: Any) -> str:
    """The audio section: the callers' line, TTFA by turn, then ``rest`` (the generic tables) of the other figures."""
    others = {key: value for key, value in section.items() if key != "ttfa_by_turn_ms"}
    return caller_experience(section) + ttfa_by_turn(section) + rest(others)

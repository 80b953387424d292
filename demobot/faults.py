"""Faults demobot can inject on purpose, so tests show how a load tester copes with a misbehaving target.

``--fault KIND[:RATE]`` (repeatable) makes that share of requests misbehave (RATE defaults to 1).
Stream faults apply to streamed /v1/chat/completions answers:

- ``cut``: the connection is reset halfway through the answer.
- ``error-event``: halfway through, an SSE error event, then the stream ends.
- ``empty``: the answer carries no content at all.
- ``no-done``: the stream ends without ``data: [DONE]``.
- ``malformed``: one event halfway through is not valid JSON.
- ``stall``: halfway through, the stream stops sending and never ends.
"""

from __future__ import annotations

import argparse
import random

STREAM_FAULTS = ("cut", "error-event", "empty", "no-done", "malformed", "stall")
"""Fault kinds for streamed answers."""

FAULT_KINDS = STREAM_FAULTS


def parse_fault(text: str) -> tuple[str, float]:
    """Parse ``KIND`` or ``KIND:RATE`` for --fault."""
    kind, _, rate_text = text.partition(":")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
    try:
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"the rate of {kind} must be a number from 0 to 1")
    return kind, rate


def pick_fault(faults: tuple[tuple[str, float], ...], kinds: tuple[str, ...], rng: random.Random) -> str | None:
    """The fault this request suffers, if any: each configured kind of ``kinds`` is tried with its rate."""
    for kind, rate in faults:
        if kind in kinds and rng.random() < rate:
            return kind
    return None

"""JSON for the per-message paths (streamed chunks, WebSocket replies): orjson if installed, else the standard library.

A streamed answer is decoded one small JSON object per token (a streamed WebSocket reply one per frame), tens of
thousands a second per process; orjson parses a typical chat chunk in about a quarter of the time ``json.loads``
takes. Anything orjson refuses is parsed again by ``json.loads``, so what passes, and what fails as malformed, is
the standard library's: orjson is stricter (NaN, lone surrogates, numbers past 64 bits, UTF-16), never more
lenient. One difference remains: an integer past 64 bits comes back as a float, which no token count or text a
parser reads can be.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from orjson import loads as fast_loads
except ImportError:  # pragma: no cover - orjson is in requirements.txt; the standard library still works
    fast_loads = json.loads

STRICT_BYTES = fast_loads is not json.loads
"""Whether ``fast_loads`` reads bytes as strictly as ``loads`` reads them (orjson: UTF-8 only); json.loads also takes
UTF-16 and a BOM from bytes, so the compiled scan (core/_speedups.c), which hands it bytes, needs orjson."""


def loads(text: str | bytes) -> Any:
    """The value of one JSON document; raises ValueError (as ``json.loads`` does) when it is not valid JSON."""
    try:
        return fast_loads(text)
    except ValueError:
        return json.loads(text)

"""JSON for the per-chunk path of streamed answers: orjson when installed, the standard library otherwise.

A streamed answer is decoded one small JSON object per token, tens of thousands a second per process; orjson
parses a typical chat chunk in about a quarter of the time ``json.loads`` takes. Anything orjson refuses is
parsed again by ``json.loads``, so what passes, and what fails as malformed, is the standard library's: orjson
is stricter (NaN, lone surrogates, numbers past 64 bits), never more lenient. One difference remains: an
integer past 64 bits comes back as a float, which no token count or text a parser reads can be.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is in requirements.txt; the standard library still works
    _fast_loads = json.loads


def loads(text: str | bytes) -> Any:
    """The value of one JSON document; raises ValueError (as ``json.loads`` does) when it is not valid JSON."""
    try:
        return _fast_loads(text)
    except ValueError:
        return json.loads(text)

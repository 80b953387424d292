"""The compiled steps of the streaming hot path (core/_speedups.c), or None where they are not built or turned off.

``pip install -r requirements.txt`` compiles them (setup.py); without a C compiler the build skips them and the
Python code they mirror runs instead, measuring the same, at more CPU per answer (docs/PERFORMANCE.md). Each user of
a step keeps the Python code as the definition and the fallback, and the tests run both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

SPEEDUPS_VARIABLE = "CHATSWARM_SPEEDUPS"
"""Set to ``off`` to run the Python code instead of the compiled steps (to compare; bench/stream_ladder.py does)."""


def _compiled() -> Any:
    if os.environ.get(SPEEDUPS_VARIABLE, "on") == "off":
        return None
    try:
        from core import _speedups
    except ImportError:
        return None
    return _speedups


_module = _compiled()
recv_stamped: Callable[[int, int, float], tuple[bytes, float]] | None = getattr(_module, "recv_stamped", None)
"""One non-blocking read of a stamped socket and its arrival (users/common/arrival_clock.py ``receive``)."""
scan_openai: Callable[[bytes, Callable[[bytes], Any]], tuple[list[str], bool, int | None, bool] | None] | None = (
    getattr(_module, "scan_openai", None)
)
"""Whole OpenAI SSE messages read at once (users/llm/stream_parsers.py ``OpenAIChatParser.scan``)."""
ChunkedStream: Any = getattr(_module, "ChunkedStream", None)
"""A streamed answer's reads taken in C: socket, chunk framing and whole messages (users/llm/compiled_reads.py)."""
count_values: Callable[[dict[int, int], Any, Callable[[float], int]], int] | None = getattr(
    _module, "count_values", None
)
"""Values counted into a histogram's dict under their keys (core/histogram.py ``Histogram.add_all``)."""

"""The streaming servers bench/stream_bench.py measures clients against, started pinned to the server core.

``demobot`` is the real test target (aiohttp on uvloop); ``fast`` is bench/sse_server.py, the same OpenAI SSE
wire format and timing log at a fraction of demobot's CPU per event, so a client's limit shows before the
server's (issue 20). Both take --ttft-ms, --token-ms, --answer-tokens and --timing-log; both print demobot's
ready line, so demobot.launcher's DemobotProcess starts and stops either.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demobot.launcher import DemobotProcess

SERVERS = ("demobot", "fast")
SSE_SERVER = Path(__file__).resolve().parent / "sse_server.py"
LATENESS = re.compile(r"send late p50 ([\d.]+) ms p99 ([\d.]+) ms")


class FastServerProcess(DemobotProcess):
    """bench/sse_server.py as a child process on 127.0.0.1 and a free port."""

    @property
    def command(self) -> list[str]:
        return [self.python, str(SSE_SERVER), "--host", "127.0.0.1", "--port", "0", *self.flags]


@dataclass(frozen=True)
class BenchServer:
    """Which server the clients are measured against, and the fast one's send quantum (--quantum-ms)."""

    kind: str = "demobot"
    quantum_ms: float | None = None
    """None: the fast server's own default."""

    @contextlib.contextmanager
    def pinned(self, core: int, *flags: str, demobot_only: tuple[str, ...] = ()) -> Iterator[DemobotProcess]:
        """The server pinned to ``core`` (started once: DemobotProcess starts itself on entering ``with``);
        ``demobot_only`` flags (slots, queue) are demobot's alone."""
        if self.kind == "fast":
            quantum = () if self.quantum_ms is None else ("--quantum-ms", str(self.quantum_ms))
            process = FastServerProcess(*flags, *quantum)
        else:
            process = DemobotProcess(*flags, *demobot_only)
        with process as server:
            os.sched_setaffinity(server.pid, {core})
            yield server


def send_lateness(server: DemobotProcess) -> tuple[float, float] | None:
    """The fast server's send lateness p50 and p99 in ms, from its exit line (None for demobot, or no line)."""
    found = LATENESS.search(server.stderr_tail())
    return (float(found[1]), float(found[2])) if found else None

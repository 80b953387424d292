"""The optional JSONL log of every generation's (and voice barge-in's) true server-side timings, for checking
client measurements."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class GenerationTiming:
    """One generation request as the server saw it; instants are wall-clock `time.time()` seconds."""

    id: str
    route: str
    """"chat" (/api/chat) or "completions" (/v1/chat/completions)."""
    stream: bool
    received: float
    slot_acquired: float | None = None
    first_token: float | None = None
    """Streaming: when the first content token was written to the socket; otherwise when it was generated."""
    finished: float | None = None
    status: int = 200
    tokens: int = 0


@dataclass
class BargeInTiming:
    """A voice reply demobot stopped because the caller spoke over it (route "audio-barge-in")."""

    id: str
    protocol: str
    heard: float
    """Wall-clock time the first frame with the caller's voice over the reply arrived."""
    stopped: float
    """Wall-clock time demobot stopped the reply (Twilio ``clear``, raw/Realtime ``done`` cancelled were sent)."""
    reaction_ms: float
    """``stopped - heard``, measured on the monotonic clock."""
    route: str = "audio-barge-in"


class TimingLog:
    """Appends one JSON object per generation to a file, flushed line by line so readers see it at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def record(self, timing: GenerationTiming | BargeInTiming) -> None:
        """Write one generation's (or barge-in's) timings as a line (a no-op once closed)."""
        if self._file.closed:
            return
        self._file.write(json.dumps(asdict(timing), separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._file.closed:
            self._file.close()


def read_timing_log(path: str | Path) -> list[dict]:
    """Read a timing log back as a list of dicts (for tests and report tools)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

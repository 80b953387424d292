"""demobot's voice-call settings (``--audio-*`` flags), kept apart so config.py only gains one field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioConfig:
    """How demobot behaves on /ws/audio: capacity, end-of-speech detection, reply timing and length."""

    calls: int = 100
    """Concurrent calls; beyond that a new call is refused with 503 before the WebSocket opens."""
    reply_ms: float = 500.0
    """End of the caller's speech → first reply audio (at least ``endpoint_ms``: silence must be seen first)."""
    endpoint_ms: float = 300.0
    """Silence (or no audio at all) that tells demobot the caller has finished speaking."""
    reply_len_ms: float = 1500.0
    """Length of each spoken reply."""
    lead_ms: float = 60.0
    """How far ahead of real time reply audio is sent (a jitter buffer's worth, as TTS services do)."""
    idle_timeout_s: float = 10.0
    """A call that sends nothing for this long (while demobot is not speaking) is hung up."""

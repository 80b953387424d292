"""demobot's voice-call settings (``--audio-*`` flags), kept apart so config.py only gains one field."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from demobot.audio_signal import FRAME_MS

LONGEST_REPLY_MS = 60_000.0
"""Longest reply demobot says (--audio-reply-len-max-ms): it is synthesised once, before any call."""


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
    """Length of each spoken reply (the shortest, when ``reply_len_max_ms`` is longer)."""
    reply_len_max_ms: float = 0.0
    """Longest reply: each reply's length is drawn (seeded, in 20 ms frames) from ``reply_len_ms`` to this."""
    lead_ms: float = 60.0
    """How far ahead of real time reply audio is sent (a jitter buffer's worth, as TTS services do)."""
    idle_timeout_s: float = 10.0
    """A call that sends nothing for this long (while demobot is not speaking) is hung up."""
    barge_in_ms: float = 0.0
    """How long the caller speaks over a reply before demobot stops it (0: at the first frame with voice)."""

    @property
    def longest_reply_ms(self) -> float:
        return max(self.reply_len_ms, self.reply_len_max_ms)

    def reply_frames(self, rng: random.Random) -> int:
        """How many 20 ms frames the next reply has: always the same, or drawn when replies vary in length."""
        shortest, longest = math.ceil(self.reply_len_ms / FRAME_MS), math.ceil(self.longest_reply_ms / FRAME_MS)
        return shortest if longest <= shortest else rng.randint(shortest, longest)

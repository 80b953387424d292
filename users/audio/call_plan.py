"""What every call of an AudioStreamUser does: its turns, how the caller ends its speech, its timeouts and
the faults it may inject. Plain data, read by users/audio/audio_call.py."""

from __future__ import annotations

from dataclasses import dataclass

SILENCE, STOP, COMMIT = "silence", "stop", "commit"
"""How the caller ends its speech: keep sending silence (a phone line), stop sending, or commit (Realtime)."""

FAULTS = ("drop", "malformed", "silence")
"""Faults a call can inject: drop the connection, send a malformed frame, go silent past the server's timeout."""


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What every call of a user does."""

    url: str
    turns: int = 1
    end_of_speech: str = SILENCE
    interval_s: float = 0.02
    """Time between frame sends (the frame's audio length when paced in real time)."""
    connect_timeout_s: float = 10.0
    response_timeout_s: float = 10.0
    """End of speech → first response audio, at most."""
    response_gap_s: float = 0.7
    """Quiet after the last response audio has played that ends a response the bot did not end itself."""
    fault_silence_s: float = 15.0
    """A silent fault call waits this long for the bot to hang up."""
    headers: tuple[str, ...] = ()
    insecure: bool = False
    """Accept any TLS certificate of a wss:// URL (--insecure)."""

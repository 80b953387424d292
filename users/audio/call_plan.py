"""What every call of an AudioStreamUser does: its turns, how the caller ends its speech, its timeouts and
the faults it may inject. Plain data, read by users/audio/audio_call.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from users.ws.ws_limits import WsLimitSettings

SILENCE, STOP, COMMIT = "silence", "stop", "commit"
"""How the caller ends its speech: keep sending silence (a phone line), stop sending, or commit (Realtime)."""

ABANDONED = "abandoned"
"""How a call ends when the caller runs out of --patience waiting for an answer (not a failure)."""

FAULTS = ("drop", "malformed", "silence")
"""Faults a call can inject: drop the connection, send a malformed frame, go silent past the server's timeout."""


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What every call of a user does (made from AudioSettings; no defaults of its own for the options)."""

    url: str
    turns: int
    end_of_speech: str
    """SILENCE, STOP or COMMIT."""
    interval_s: float
    """Time between frame sends (the frame's audio length when paced in real time)."""
    response_timeout_s: float
    """End of speech → first response audio, at most."""
    response_gap_s: float
    """Quiet after the last response audio has played that ends a response the bot did not end itself."""
    fault_silence_s: float
    """A silent fault call waits this long for the bot to hang up."""
    insecure: bool
    """Accept any TLS certificate of a wss:// URL (--insecure)."""
    headers: tuple[str, ...] = ()
    connect_timeout_s: float = 10.0
    limits: WsLimitSettings = field(default_factory=WsLimitSettings)
    """What the bot may send: the longest message, the pings a second (--ws-max-message-mb, --ws-max-pings)."""
    patience_s: float = math.inf
    """The caller hangs up when no answer audio came this long after its speech ended (--patience)."""

    @property
    def first_audio_wait_s(self) -> float:
        """How long the caller waits for an answer to start: its patience, at most --response-timeout."""
        return min(self.patience_s, self.response_timeout_s)

    @property
    def gave_up_as(self) -> str:
        """What a call that waited first_audio_wait_s in vain ended as: abandoned, or a response timeout."""
        return ABANDONED if self.patience_s < self.response_timeout_s else "response audio timeout"

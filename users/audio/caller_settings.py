"""How AudioStreamUser's callers behave like real ones: what they say turn by turn, how much silence they call dead
air, and how long they wait for an answer before hanging up. Registered with AudioSettings (audio_stream.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError
from core.options import require_positive
from core.settings import Settings, setting
from users.audio.audio_codec import read_wav
from users.audio.audio_protocols import Utterance, make_protocol, prepare_utterance
from users.audio.utterances import read_folder

if TYPE_CHECKING:  # audio_stream.py imports this module
    from users.audio.audio_stream import AudioSettings

DEAD_AIR_MS = (100.0, 600_000.0)
"""Shortest and longest --dead-air-ms: a silence under 0.1 s is a breath (users/audio/dead_air.py keeps gaps from
there), and ten minutes is no threshold at all."""

MAX_PATIENCE_S = 3600.0
"""Longest --patience: an hour of silence is a caller who forgot the phone, not one who waits."""


@dataclass(frozen=True)
class CallerSettings(Settings):
    """--audio-dir, --dead-air-ms and --patience."""

    audio_dir: str = setting("", "Folder of WAV files: the caller says one per turn (create_test_data.py --voice)")
    dead_air_ms: float = setting(2000.0, "Silence waiting for the bot (ms) counted as dead air")
    patience: float = setting(0.0, "Seconds without an answer after which the caller hangs up (0 = never)")

    def check(self) -> None:
        low, high = DEAD_AIR_MS
        if not low <= self.dead_air_ms <= high:
            raise InputError(f"--dead-air-ms: {self.dead_air_ms:g}; give {low:g}-{high:g} ms")
        require_positive(self.patience, "--patience", allow_zero=True)
        if self.patience > MAX_PATIENCE_S:
            raise InputError(f"--patience: {self.patience:g} s; give at most {MAX_PATIENCE_S:g} s (0 = never hang up)")

    def check_with(self, audio_file: str, response_timeout_s: float) -> None:
        """Raise InputError when these settings contradict the call's (--audio-file, --response-timeout)."""
        if self.audio_dir and audio_file:
            raise InputError("--audio-dir and --audio-file: give one (a folder of utterances, or one file)")
        if self.patience and self.patience >= response_timeout_s:
            raise InputError(
                f"--patience: {self.patience:g} s is not below --response-timeout {response_timeout_s:g} s, "
                "so callers would time out before they lose patience; lower it or raise --response-timeout"
            )

    @property
    def patience_s(self) -> float:
        """--patience in seconds, infinite when the caller never hangs up on its own."""
        return self.patience or float("inf")


@lru_cache(maxsize=4)
def folder_utterances(folder: str, protocol: str, sample_rate: int, frame_bytes: int) -> tuple[Utterance, ...]:
    """Every utterance of an --audio-dir in the run's protocol, read, checked and encoded once per process."""
    wire = make_protocol(protocol, sample_rate)
    return tuple(
        prepare_utterance(spoken.samples, spoken.rate, wire, frame_bytes) for spoken in read_folder(Path(folder))
    )


@lru_cache(maxsize=8)
def _file_utterance(path: Path, protocol: str, sample_rate: int, frame_bytes: int) -> Utterance:
    samples, rate = read_wav(path)
    return prepare_utterance(samples, rate, make_protocol(protocol, sample_rate), frame_bytes)


def utterances_for(settings: AudioSettings, caller: CallerSettings) -> tuple[Utterance, ...]:
    """What callers say, one per turn: every file of --audio-dir, else --audio-file (encoded once per process)."""
    wire = (settings.audio_protocol, settings.sample_rate, settings.frame_bytes)
    if not caller.audio_dir:
        return (_file_utterance(settings.utterance_file, *wire),)
    return folder_utterances(caller.audio_dir, *wire)

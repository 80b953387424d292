"""What callers say, turn by turn: one WAV file (--audio-file) or a folder of spoken questions (--audio-dir).

A folder's files are read, checked and encoded once per process, like the single file. Each caller deals them
from a seeded, shuffled deck: every utterance is said before any repeats, and no caller says the same thing
twice in a row, so a conversation of several turns asks different questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError
from users.audio.audio_codec import read_wav

MAX_FILES = 200
"""Most WAV files an --audio-dir may hold: variety for the callers, not a corpus to keep in every process."""

MAX_TOTAL_S = 600.0
"""Most seconds of audio in an --audio-dir: every process keeps all of it encoded (ten minutes of 24 kHz PCM16 in
base64 is about 40 MB)."""


@dataclass(frozen=True)
class SpokenFile:
    """One file a caller may say, as read (int16 samples at ``rate``)."""

    path: Path
    samples: np.ndarray
    rate: int


def read_folder(folder: str | Path) -> list[SpokenFile]:
    """The *.wav files of ``folder`` (sorted by name), each checked as --audio-file is; InputError naming the
    folder when it is missing, holds no WAV file, too many, or too much audio altogether."""
    location = Path(folder)
    if not location.is_dir():
        raise InputError(f"--audio-dir: no such folder {str(location)!r}")
    paths = sorted(path for path in location.iterdir() if path.suffix.lower() == ".wav" and path.is_file())
    if not paths:
        raise InputError(f"--audio-dir: {location} holds no .wav file (render some: create_test_data.py --voice)")
    if len(paths) > MAX_FILES:
        raise InputError(f"--audio-dir: {location} holds {len(paths)} WAV files; give at most {MAX_FILES}")
    spoken, total_s = [], 0.0
    for path in paths:
        samples, rate = read_wav(path, "--audio-dir")
        total_s += len(samples) / rate
        if total_s > MAX_TOTAL_S:
            raise InputError(f"--audio-dir: {location} holds over {MAX_TOTAL_S:.0f} s of audio; give less")
        spoken.append(SpokenFile(path, samples, rate))
    return spoken


class Deck:
    """Deals indexes 0..size-1 in seeded random order; reshuffled after each pass, never the same one twice in a
    row (when there are two or more)."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.order: list[int] = []
        self.last: int | None = None

    def deal(self) -> int:
        if not self.order:
            self.order = list(range(self.size))
            self.rng.shuffle(self.order)
            if self.size > 1 and self.order[-1] == self.last:  # dealt from the end: the first of the new pass
                self.order[0], self.order[-1] = self.order[-1], self.order[0]
        self.last = self.order.pop()
        return self.last

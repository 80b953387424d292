"""Synthesise the shipped caller utterance: ``python datasets/make_speech_sample.py [OUT.wav]``.

About three seconds of speech-like audio, 16 kHz mono 16-bit PCM, from a fixed seed, so the file in
the repository can be rebuilt byte for byte (a test checks it). Nothing is recorded or downloaded:
syllables are a glottal pulse train at a falling pitch, shaped by vowel formants, some led by a
fricative hiss, with short pauses between them (shorter than any endpointer waits) and a quarter of a
second of faint room noise before the speech. The speech runs to the very end of the file, so the
caller's last frame is where its speech ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from users.audio.audio_codec import write_wav  # noqa: E402

RATE = 16000
OUTPUT = Path(__file__).resolve().parent / "speech_sample_16k.wav"
SEED = 20261121

VOWELS = {  # formant frequencies (Hz) and bandwidths of five vowels
    "a": ((730, 90), (1090, 110), (2440, 170)),
    "e": ((530, 60), (1840, 100), (2480, 160)),
    "i": ((300, 50), (2290, 100), (3010, 170)),
    "o": ((570, 70), (840, 90), (2410, 160)),
    "u": ((330, 60), (1020, 90), (2240, 150)),
}
SYLLABLES = "a e i o a u e a o i e"
"""The vowels of the utterance, one syllable each."""


def resonator(signal: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonance at ``frequency`` Hz (one formant)."""
    radius = np.exp(-np.pi * bandwidth / RATE)
    a1, a2 = 2 * radius * np.cos(2 * np.pi * frequency / RATE), -radius * radius
    out = np.zeros_like(signal)
    y1 = y2 = 0.0
    for i, x in enumerate(signal):
        y = x + a1 * y1 + a2 * y2
        out[i], y2, y1 = y, y1, y
    return out * (1 - radius)


def envelope(length: int, attack: int, release: int) -> np.ndarray:
    shape = np.ones(length)
    shape[:attack] = np.linspace(0, 1, attack)
    shape[length - release :] = np.linspace(1, 0, release)
    return shape


def syllable(vowel: str, pitch: float, length: int, rng: np.random.Generator) -> np.ndarray:
    """One voiced syllable: pulses at ``pitch`` Hz (with a little jitter) through the vowel's formants."""
    pulses = np.zeros(length)
    position = 0.0
    while position < length:
        pulses[int(position)] = 1.0
        position += RATE / (pitch * (1 + rng.normal(0, 0.01)))
    voiced = sum(resonator(pulses, f, b) for f, b in VOWELS[vowel])
    return voiced / np.abs(voiced).max() * envelope(length, RATE // 60, RATE // 30)


def fricative(length: int, rng: np.random.Generator) -> np.ndarray:
    """A short hiss, as of an s or f."""
    hiss = resonator(rng.normal(0, 1, length), 4200, 1500)
    return 0.35 * hiss / np.abs(hiss).max() * envelope(length, length // 4, length // 3)


def synthesise(seed: int = SEED) -> np.ndarray:
    """The utterance's samples (int16)."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, 0.002, RATE // 4)]  # faint room noise (about -60 dBFS)
    vowels = SYLLABLES.split()
    for index, vowel in enumerate(vowels):
        if rng.random() < 0.5:
            parts.append(fricative(int(RATE * rng.uniform(0.04, 0.07)), rng))
        pitch = 150 - 40 * index / len(vowels) + (15 if index % 4 == 0 else 0)
        parts.append(syllable(vowel, pitch, int(RATE * rng.uniform(0.16, 0.26)), rng))
        if index < len(vowels) - 1:
            parts.append(rng.normal(0, 0.002, int(RATE * rng.uniform(0.02, 0.08))))
    audio = np.concatenate(parts)
    audio = audio[: len(audio) - len(audio) % (RATE // 50)]  # a whole number of 20 ms frames
    audio[-RATE // 50 :] *= np.linspace(1, 0.6, RATE // 50)  # speech runs into the last frame
    return np.clip(np.round(audio / np.abs(audio).max() * 22000), -32768, 32767).astype(np.int16)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    samples = synthesise()
    write_wav(output, samples, RATE)
    print(f"wrote {output}: {len(samples) / RATE:.2f} s at {RATE} Hz")


if __name__ == "__main__":
    main()

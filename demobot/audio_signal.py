"""Audio demobot hears and says: voice detection on incoming frames, and the synthetic spoken reply.

Standard library only, as the rest of demobot, and written independently of the load tester's codec
(users/audio/audio_codec.py), so each checks the other. A frame "has voice" when its loudest sample reaches
VOICE_PEAK (about -40 dBFS), the same level the load tester uses to find where its speech ends.
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from functools import lru_cache

VOICE_PEAK = 328
"""Loudest sample (of 32767) at which a frame counts as speech."""

FRAME_MS = 20
"""Reply audio is sent in frames of this length."""


def mulaw_to_linear(code: int) -> int:
    """The 16-bit sample of one G.711 μ-law byte."""
    code = ~code & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)) - 0x84
    return -magnitude if code & 0x80 else magnitude


def linear_to_mulaw(sample: int) -> int:
    """The G.711 μ-law byte of one 16-bit sample (the reference encoder, on 14 bits)."""
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    value = min(abs(value), 8159) + 0x21
    segment = 0
    while segment < 8 and value > (0x3F << segment | (1 << segment) - 1):
        segment += 1
    code = 0x7F if segment >= 8 else (segment << 4) | ((value >> (segment + 1)) & 0x0F)
    return code ^ mask


_MULAW_VOICE = bytes(1 if abs(mulaw_to_linear(code)) >= VOICE_PEAK else 0 for code in range(256))
"""For each μ-law byte: 1 when it is loud enough to be speech."""


def mulaw_has_voice(data: bytes) -> bool:
    """Whether a μ-law frame carries speech (done in C: translate, then search)."""
    return b"\x01" in data.translate(_MULAW_VOICE)


def pcm16_has_voice(data: bytes) -> bool:
    """Whether a little-endian PCM16 frame carries speech; raises ValueError for an odd byte count."""
    samples = array("h")
    samples.frombytes(data)
    if sys.byteorder == "big":
        samples.byteswap()
    return bool(samples) and (max(samples) >= VOICE_PEAK or min(samples) <= -VOICE_PEAK)


def reply_samples(rate: int, length_ms: float) -> list[int]:
    """A spoken-sounding reply: a voice at a gently falling pitch with a few syllables, 16-bit samples."""
    count = int(rate * length_ms / 1000)
    samples = []
    phase = 0.0
    for i in range(count):
        t = i / rate
        pitch = 180 - 40 * t / max(length_ms / 1000, 0.001)
        phase += 2 * math.pi * pitch / rate
        voice = sum(math.sin(k * phase) / k for k in (1, 2, 3, 4))
        syllables = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * t)  # about four syllables a second
        samples.append(int(6000 * voice * syllables))
    return samples


@lru_cache(maxsize=16)
def reply_frames(encoding: str, rate: int, length_ms: float) -> tuple[bytes, ...]:
    """The reply, encoded (``pcm16`` or ``mulaw``) and cut into FRAME_MS frames (the last one padded)."""
    samples = reply_samples(rate, length_ms)
    if encoding == "mulaw":
        data = bytes(linear_to_mulaw(sample) for sample in samples)
        frame_bytes, fill = rate * FRAME_MS // 1000, b"\xff"
    else:
        pcm = array("h", samples)
        if sys.byteorder == "big":
            pcm.byteswap()
        data = pcm.tobytes()
        frame_bytes, fill = rate * FRAME_MS // 1000 * 2, b"\x00"
    frames = [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]
    frames[-1] += fill * (frame_bytes - len(frames[-1]))
    return tuple(frames)


@lru_cache(maxsize=16)
def reply_frames_b64(encoding: str, rate: int, length_ms: float) -> tuple[str, ...]:
    """The reply's frames in base64, for the JSON protocols."""
    return tuple(base64.b64encode(frame).decode("ascii") for frame in reply_frames(encoding, rate, length_ms))

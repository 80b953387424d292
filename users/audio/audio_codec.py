"""Audio for simulated callers: WAV files, resampling, G.711 μ-law, and cutting audio into frames.

Pure functions on numpy ``int16`` sample arrays and bytes, with no Locust and no network, so they are
tested directly. Samples are mono, signed 16-bit; "PCM16" on the wire is little-endian.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from core.errors import InputError

VOICE_PEAK = 328
"""A frame whose loudest sample reaches this (about -40 dBFS) carries speech; quieter frames are silence.

demobot's end-of-speech detector uses the same level, so the client and the bot agree on where the
caller's speech ends."""

MULAW_BIAS = 0x84
MULAW_CLIP = 8159
"""Largest 14-bit magnitude μ-law encodes; louder samples are clipped to it."""
_LOWPASS_TAPS = 63
"""Length of the anti-aliasing filter applied before downsampling."""


WAV_RATES = (8000, 48000)
"""Sample rates a caller's WAV may have, in Hz: telephone to full band. Audio below 8 kHz holds no intelligible
speech, and a 1 Hz file resampled to 16 kHz takes 16,000 times its size in memory."""

MAX_UTTERANCE_S = 60.0
"""Longest caller's audio, in seconds: every process keeps the encoded frames of it in memory (a minute of 48 kHz
audio is under 6 MB), and one turn of a call is a sentence or two, not a recording."""


def read_wav(path: str | Path, option: str = "--audio-file") -> tuple[np.ndarray, int]:
    """The samples (int16) and sample rate of a mono 16-bit PCM WAV file of at most MAX_UTTERANCE_S seconds.

    Raises InputError naming the file and what to give instead when it is missing, not a WAV file, not mono
    16-bit PCM (mixing stereo down could cancel the voice out), at a rate outside WAV_RATES, too long or empty;
    the header is checked before any audio is read. Messages start with ``option``, the flag that named the file.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            _check_wav_header(
                f"{option}: {path}", wav.getsampwidth(), wav.getnchannels(), wav.getframerate(), wav.getnframes()
            )
            rate = wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise InputError(f"{option}: no such file {str(path)!r}") from None
    except (wave.Error, EOFError) as error:
        raise InputError(f"{option}: {path} is not a PCM WAV file ({error or 'it ends early'})") from None
    except OSError as error:
        raise InputError(f"{option}: cannot read {path} ({error.strerror or error})") from None
    samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
    if not len(samples):
        raise InputError(f"{option}: {path} holds no audio")
    return samples, rate


def _check_wav_header(named: str, width: int, channels: int, rate: int, frames: int) -> None:
    give = "give a mono 16-bit PCM WAV"
    if width != 2:
        raise InputError(f"{named} has {8 * width}-bit samples; 16-bit PCM is needed")
    if channels != 1:
        raise InputError(f"{named}: {'stereo' if channels == 2 else f'{channels} channels'}; {give}")
    low, high = WAV_RATES
    if not low <= rate <= high:
        raise InputError(f"{named}: {rate} Hz; {give} at {low}-{high} Hz")
    if frames / rate > MAX_UTTERANCE_S:
        raise InputError(f"{named}: {frames / rate:.0f} s of audio; give at most {MAX_UTTERANCE_S:.0f} s (one turn)")


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def lowpass(samples: np.ndarray, cutoff: float) -> np.ndarray:
    """Filter out frequencies above ``cutoff`` (a fraction of the sample rate, below 0.5): windowed sinc."""
    n = np.arange(_LOWPASS_TAPS) - (_LOWPASS_TAPS - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(_LOWPASS_TAPS)
    taps /= taps.sum()
    return np.convolve(samples, taps, mode="same")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """The same sound at another sample rate (int16 in, int16 out).

    Downsampling first removes what the new rate cannot carry, so 16 kHz speech becomes clean 8 kHz
    telephone audio; the new samples are then interpolated linearly.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")
    if from_rate == to_rate:
        return np.array(samples, dtype=np.int16)
    signal = np.asarray(samples, dtype=np.float64)
    if to_rate < from_rate:
        signal = lowpass(signal, 0.45 * to_rate / from_rate)
    count = round(len(signal) * to_rate / from_rate)
    positions = np.arange(count) * (from_rate / to_rate)
    resampled = np.interp(positions, np.arange(len(signal)), signal)
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def pcm16_bytes(samples: np.ndarray) -> bytes:
    """Samples as little-endian 16-bit PCM bytes."""
    return np.asarray(samples, dtype="<i2").tobytes()


def pcm16_samples(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes as samples (a trailing odd byte is ignored)."""
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
"""Upper end of each μ-law segment, on the biased 14-bit magnitude."""


def mulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 μ-law bytes of int16 samples (the 8-bit telephone encoding Twilio streams).

    Bit-exact with the reference encoder (Sun's g711.c, as in audioop and ffmpeg): the sample is cut
    to 14 bits first, so negative values round away from zero.
    """
    values = np.asarray(samples, dtype=np.int32) >> 2
    mask = np.where(values < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(values), MULAW_CLIP) + (MULAW_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def _decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = (((codes & 0x0F) << 3) + MULAW_BIAS << exponent) - MULAW_BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_DECODE = _decode_table()
"""The int16 sample of each of the 256 μ-law bytes."""


def mulaw_decode(data: bytes) -> np.ndarray:
    """int16 samples of G.711 μ-law bytes."""
    return MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def split_frames(data: bytes, frame_bytes: int, fill: int = 0) -> list[bytes]:
    """Cut encoded audio into frames of ``frame_bytes``; the last one is padded with ``fill`` (silence)."""
    if frame_bytes <= 0:
        raise ValueError("frame_bytes must be positive")
    frames = [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] += bytes([fill]) * (frame_bytes - len(frames[-1]))
    return frames


def frame_peaks(samples: np.ndarray, frame_samples: int) -> np.ndarray:
    """The loudest absolute sample of each frame of ``frame_samples`` (the last frame may be shorter)."""
    if frame_samples <= 0:
        raise ValueError("frame_samples must be positive")
    values = np.abs(np.asarray(samples, dtype=np.int32))
    count = math.ceil(len(values) / frame_samples)
    padded = np.zeros(count * frame_samples, dtype=np.int32)
    padded[: len(values)] = values
    return padded.reshape(count, frame_samples).max(axis=1) if count else padded


def last_voiced_frame(peaks: np.ndarray, threshold: int = VOICE_PEAK) -> int:
    """Index of the last frame whose peak reaches ``threshold`` (where the speech ends), or -1 if none does."""
    voiced = np.flatnonzero(np.asarray(peaks) >= threshold)
    return int(voiced[-1]) if len(voiced) else -1

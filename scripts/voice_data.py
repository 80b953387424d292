"""Spoken questions for voice callers: prompts rendered to WAV files with espeak-ng (create_test_data.py --voice).

Each prompt is said by one voice at one speaking rate (cycling through the lists given, so a folder holds a few
voices and paces), resampled to 16 kHz mono 16-bit PCM (AudioStreamUser's format) and cut where the speech
really begins and ends: a caller's end of speech, and so its TTFA, is the last loud sample, not the synthesizer's
trailing silence. A manifest (utterances.jsonl) says what each file says, in which voice and how long.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16000
"""Sample rate of the rendered files: the raw protocol's default, so nothing is resampled per call."""

VOICE_PEAK = 328
"""A sample this loud (about -40 dBFS) is speech: the level AudioStreamUser and demobot use to find where
speech ends (users/audio/audio_codec.py VOICE_PEAK; scripts may not import users/)."""

DEFAULT_VOICES = ("en-us", "en-gb+f3", "en-gb-scotland")
DEFAULT_SPEECH_RATES = (150, 185)
"""Words per minute: a careful caller and a hurried one."""

MAX_UTTERANCES = 500
"""Most files one rendering writes: a caller needs variety, not a corpus."""

RENDER_TIMEOUT_S = 30.0


class VoiceError(Exception):
    """espeak-ng is missing or failed; printed as one line, exit code 2."""


def espeak() -> str:
    """The espeak-ng program, or VoiceError saying how to install it."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise VoiceError("--voice needs espeak-ng: sudo apt-get install espeak-ng (or bash scripts/dev_setup.sh)")
    return program


def speech_only(samples: np.ndarray) -> np.ndarray:
    """The samples from the first to the last one loud enough to be speech (silence at both ends cut)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= VOICE_PEAK)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples[:0]


def resampled(samples: np.ndarray, rate: int, to_rate: int = RATE) -> np.ndarray:
    """Band-limited resampling through the spectrum (whole file at once: utterances are seconds long)."""
    if rate == to_rate:
        return samples
    count = round(len(samples) * to_rate / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))[: count // 2 + 1]
    out = np.fft.irfft(spectrum, count) * (count / len(samples))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def render(text: str, voice: str, speech_rate: int, path: Path) -> float:
    """Say ``text`` into ``path`` (16 kHz mono PCM16, speech only); returns the speech's length in ms."""
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "said.wav"
        command = [espeak(), "-v", voice, "-s", str(speech_rate), "-w", str(raw), "--", text]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=RENDER_TIMEOUT_S)
        except subprocess.CalledProcessError as error:
            problem = error.stderr.decode(errors="replace").strip().splitlines()
            raise VoiceError(f"espeak-ng -v {voice}: {problem[0] if problem else 'failed'}") from None
        except subprocess.TimeoutExpired:
            raise VoiceError(f"espeak-ng took over {RENDER_TIMEOUT_S:g} s for one prompt") from None
        with wave.open(str(raw), "rb") as said:
            rate, data = said.getframerate(), said.readframes(said.getnframes())
    speech = speech_only(resampled(np.frombuffer(data, dtype="<i2"), rate))
    if not len(speech):
        raise VoiceError(f"espeak-ng -v {voice} said nothing for {text!r}")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(speech.astype("<i2").tobytes())
    return len(speech) / RATE * 1000


def render_prompts(prompts: list[str], folder: Path, voices: tuple[str, ...], speech_rates: tuple[int, ...]) -> int:
    """Render each prompt in the next voice and rate into ``folder`` (NNN-voice-rate.wav + utterances.jsonl)."""
    if len(prompts) > MAX_UTTERANCES:
        raise VoiceError(f"--voice: {len(prompts)} prompts; render at most {MAX_UTTERANCES} (lower --pairs)")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for number, text in enumerate(prompts):
        voice = voices[number % len(voices)]
        speech_rate = speech_rates[number // len(voices) % len(speech_rates)]
        name = f"{number + 1:03d}-{voice.replace('+', '-')}-{speech_rate}.wav"
        speech_ms = render(text, voice, speech_rate, folder / name)
        manifest.append({"file": name, "prompt": text, "voice": voice, "rate": speech_rate, "speech_ms": speech_ms})
    with (folder / "utterances.jsonl").open("w", encoding="utf-8") as file:
        file.writelines(json.dumps({**line, "speech_ms": round(line["speech_ms"], 1)}) + "\n" for line in manifest)
    return len(manifest)


def listed(text: str, flag: str) -> tuple[str, ...]:
    """A comma-separated option's values, or VoiceError naming the flag when it has none."""
    values = tuple(value.strip() for value in text.split(",") if value.strip())
    if not values:
        raise VoiceError(f"{flag}: give at least one value")
    return values


def speech_rates(text: str) -> tuple[int, ...]:
    """--speech-rates as words per minute (espeak-ng takes 80-450)."""
    try:
        rates = tuple(int(value) for value in listed(text, "--speech-rates"))
    except ValueError:
        raise VoiceError(f"--speech-rates: {text!r} is not a list of whole numbers") from None
    if not all(80 <= rate <= 450 for rate in rates):
        raise VoiceError(f"--speech-rates: {text!r}; give words per minute from 80 to 450")
    return rates

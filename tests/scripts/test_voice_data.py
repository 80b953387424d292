"""Spoken questions: create_test_data.py --voice renders prompts with espeak-ng (when installed), cut where the
speech really ends; the set shipped in datasets/voice is what AudioStreamUser reads, and its manifest is true."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts import voice_data
from tests.conftest import ROOT, clean_env
from users.audio.audio_codec import VOICE_PEAK, frame_peaks, read_wav
from users.audio.utterances import read_folder

SHIPPED = ROOT / "datasets" / "voice"


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "utterances.jsonl").read_text().splitlines()]


def check_spoken(folder: Path) -> list[dict]:
    """Every file is 16 kHz mono speech from its first to its last frame, as long as the manifest says."""
    said = manifest(folder)
    assert [spoken.path.name for spoken in read_folder(folder)] == [line["file"] for line in said]
    for line in said:
        samples, rate = read_wav(folder / line["file"])
        assert rate == 16000 and abs(len(samples) / rate * 1000 - line["speech_ms"]) < 0.1
        peaks = frame_peaks(samples, rate // 50)  # 20 ms frames, as callers send them
        assert peaks[0] >= VOICE_PEAK and peaks[-1] >= VOICE_PEAK, line  # no silence at either end
        assert np.abs(samples[-1:].astype(int)).max() >= VOICE_PEAK  # the last sample is the end of the speech
    return said


def test_the_shipped_spoken_questions_are_short_varied_and_trimmed() -> None:
    said = check_spoken(SHIPPED)
    assert 6 <= len(said) <= 10 and sum(path.stat().st_size for path in SHIPPED.iterdir()) < 400_000
    assert len({line["voice"] for line in said}) >= 3 and len({line["rate"] for line in said}) >= 2
    assert voice_data.VOICE_PEAK == VOICE_PEAK  # the script trims at the level callers and demobot detect speech


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_create_test_data_says_prompts_in_turning_voices_and_rates(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "scripts" / "create_test_data.py"), "--out", str(tmp_path), "--voice"]
    command += ["--pairs", "2", "--categories", "simple", "--voices", "en-us,en-gb", "--speech-rates", "140"]
    command += ["--words", str(ROOT / "datasets" / "words.txt")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "2 spoken questions in" in result.stdout
    said = check_spoken(tmp_path / "voice")
    prompts = [json.loads(line)["prompt"] for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert [line["prompt"] for line in said] == prompts and all(p.startswith("What is a") for p in prompts)
    assert [(line["voice"], line["rate"]) for line in said] == [("en-us", 140), ("en-gb", 140)]
    bad = subprocess.run([*command[:4], "--voice", "--speech-rates", "9"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "create_test_data: error: --speech-rates: '9'; give words per minute from 80 to 450"
    ]

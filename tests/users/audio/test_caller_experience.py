"""Callers like real ones: spoken questions from a folder, dead air, hang-ups out of --patience, call setup success
and TTFA by turn. The pure parts are checked directly against hand-computed values; one real run against a demo
chatbot slower than the callers' patience checks abandonment, dead air and the call_setup SLO end to end (the
folder of spoken questions is said in test_audio_stream.py's raw preset run)."""

from __future__ import annotations

import itertools
import random
import re
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import InputError
from core.slo import parse_slo
from plugins.setup.slo_reach import why_unmeasurable
from report.page import SECTIONS
from users.audio.audio_codec import write_wav
from users.audio.audio_metrics import AudioStats, CallRecord, TurnRecord
from users.audio.audio_stream import AudioStreamUser, check_options
from users.audio.call_plan import ABANDONED
from users.audio.caller_settings import CallerSettings
from users.audio.dead_air import MIN_SILENCE_MS, Silences, dead_air
from users.audio.utterances import Deck, read_folder
from users.http.rest_chat import RestChatUser


def test_a_deck_deals_every_utterance_before_repeating_and_never_one_twice_in_a_row() -> None:
    deck = Deck(4, random.Random(7))
    dealt = [deck.deal() for _ in range(400)]
    for start in range(0, 400, 4):
        assert sorted(dealt[start : start + 4]) == [0, 1, 2, 3]
    assert all(a != b for a, b in itertools.pairwise(dealt))
    again = Deck(4, random.Random(7))
    assert [again.deal() for _ in range(400)] == dealt  # seeded: the same callers say the same things
    single = Deck(1, random.Random(1))
    assert [single.deal() for _ in range(3)] == [0, 0, 0]


def test_silences_are_the_waits_and_the_gaps_a_caller_hears() -> None:
    gaps = Silences()
    gaps.heard(10.0, 0.5)  # plays until 10.5
    gaps.heard(10.2, 0.5)  # queued behind it: plays until 11.0, no gap
    gaps.heard(11.3, 0.1)  # 300 ms of nothing
    gaps.heard(11.45, 0.1)  # 50 ms: a breath, not a silence
    assert gaps.gaps_ms == pytest.approx([300.0])
    assert MIN_SILENCE_MS == 100

    answered = TurnRecord(speech_end_at=1.0)
    answered.add_audio(3.5, 200)  # TTFA 2500 ms
    answered.add_audio(4.9, 200)  # played until 3.7: a 1200 ms gap
    unanswered = TurnRecord(speech_end_at=6.0, finished_at=7.5)  # the caller gave up after 1.5 s
    record = CallRecord(protocol="raw", started_at=0.0, turns=[answered, unanswered], error=ABANDONED)
    found = dead_air(record, threshold_ms=1400, hung_up_at=9.0)
    assert found is not None and found.longest_ms == pytest.approx(2500) and found.over == 2
    cut = CallRecord(protocol="raw", started_at=0.0, turns=[TurnRecord(speech_end_at=2.0)], cut_short=True)
    assert dead_air(cut, 1000, hung_up_at=2.7).longest_ms == pytest.approx(700)  # silent until the test ended
    assert dead_air(CallRecord(protocol="raw", started_at=0.0, turns=[TurnRecord()]), 1000, 5.0) is None


def call(ttfas: list[float | None], **fields: object) -> CallRecord:
    turns = [TurnRecord(speech_end_at=1.0) for _ in ttfas]
    for turn, ttfa in zip(turns, ttfas, strict=True):
        if ttfa is not None:
            turn.add_audio(1.0 + ttfa / 1000, 100)
    record = CallRecord(protocol="raw", started_at=0.0, turns=turns, **fields)
    record.dead_air = dead_air(record, 300, hung_up_at=3.0)
    return record


def test_setup_abandonment_dead_air_and_ttfa_by_turn_add_up_and_merge() -> None:
    calls = [
        call([200, 400, 250]),  # set up; one dead air (400 ms)
        call([None], error=ABANDONED),  # abandoned before any answer: not set up; 2 s of silence
        call([], error="handshake HTTP 503 Service Unavailable", connect_failed=True),  # never spoke
        call([None], cut_short=True),  # the test ended before it was answered: not tried
        call([100], fault="drop"),  # an injected fault: not tried
        *[call([220] * 12) for _ in range(2)],  # turns past MAX_TURN_INDEX share its row
    ]
    whole, one, other = AudioStats(), AudioStats(), AudioStats()
    for number, record in enumerate(calls):
        whole.add(record)
        (one if number % 2 else other).add(record)
    merged = AudioStats()
    merged.merge_message(one.to_message())
    merged.merge_message(other.to_message())
    for stats in (whole, merged):
        section = stats.summary(10.0)
        assert section["setup"] == {"tried": 5, "set_up": 3, "success_rate": 0.6}
        assert section["calls"]["abandoned"] == 1 and section["calls"]["failed"] == 1  # abandoning is no failure
        assert section["real_failures"] == {"handshake HTTP 503 Service Unavailable": 1}
        assert section["dead_air"]["silences_over_threshold"] == 1 + 1 + 1  # 400 ms, the abandoned, the cut one
        assert section["dead_air"]["calls_with_dead_air"] == 3 and section["dead_air"]["threshold_ms"] == 300
        by_turn = section["ttfa_by_turn_ms"]
        assert list(by_turn) == [str(turn) for turn in range(1, 10)] + ["10+"]
        assert by_turn["1"]["count"] == 4 and by_turn["2"]["p50"] == 220 and by_turn["10+"]["count"] == 6
        assert by_turn["3"]["count"] == 3 and by_turn["2"]["count"] == 3
    assert merged.outcomes.setup_success() == pytest.approx(0.6)


def options(**values: object) -> Namespace:
    return Namespace(**values)


def test_bad_caller_options_and_folders_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--dead-air-ms: 50; give 100-600000 ms"):
        CallerSettings.read(options(dead_air_ms=50.0))
    with pytest.raises(InputError, match="--patience: must be zero or more"):
        CallerSettings.read(options(patience=-1.0))
    with pytest.raises(InputError, match="--patience: 12 s is not below --response-timeout 10 s"):
        check_options(options(patience=12.0))
    with pytest.raises(InputError, match="--audio-dir and --audio-file: give one"):
        check_options(options(audio_dir=str(tmp_path), audio_file="a.wav"))
    with pytest.raises(InputError, match="--audio-dir: no such folder"):
        read_folder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(InputError, match=r"holds no \.wav file"):
        read_folder(tmp_path)
    write_wav(tmp_path / "a.wav", np.full(1600, 1000, dtype=np.int16), 16000)
    (tmp_path / "b.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(InputError, match=r"^--audio-dir: .*b\.wav is not a PCM WAV file"):
        read_folder(tmp_path)
    (tmp_path / "b.wav").unlink()
    assert [spoken.path.name for spoken in read_folder(tmp_path)] == ["a.wav"]  # other files are left alone


def test_callers_out_of_patience_hang_up_abandoned_and_setup_fails_its_slo(demobot, run_locust, short_wav) -> None:
    # demobot answers 2 s after the speech ends; callers wait 1.2 s, and call 1 s of silence dead air.
    bot = demobot("--audio-reply-ms", "2000", "--audio-endpoint-ms", "150", "--audio-reply-len-ms", "300")
    args = ("--user-mix", "AudioStreamUser", "--audio-file", short_wav, "--think-time", "0.05", "-u", "2", "-r", "20")
    args += ("-t", "4s", "--patience", "1.2", "--dead-air-ms", "1000", "--slo", "call_setup>50%", "--skip-probe")
    run = run_locust("--host", bot.url, *args)
    assert run.returncode == 3, run.output  # no failure (exit 1): the setup SLO is what breaks
    audio = run.summary["audio"]
    abandoned = audio["calls"]["abandoned"]
    row = run.row("ABANDON audio:raw")
    assert abandoned >= 2 and row["count"] == abandoned and row["failures"] == 0, row
    assert run.summary["totals"]["failures"] == 0 and audio["real_failures"] == {}
    assert audio["setup"] == {"tried": abandoned, "set_up": 0, "success_rate": 0.0}
    assert run.summary["slo"] == [{"slo": "call_setup>50%", "value": 0.0, "passed": False}]
    # One silence per abandoned call, as long as the patience (a turn cut short by the end may add a shorter one).
    dead = audio["dead_air"]
    assert dead["silences_over_threshold"] == dead["calls_with_dead_air"] >= abandoned, dead
    assert dead["silences_over_threshold"] <= abandoned + 2, dead
    assert 1200 <= dead["longest_silence_ms"]["p99"] <= 1200 + 30, dead
    assert audio["ttfa_by_turn_ms"] == {} and audio["responses"] == 0


def test_call_setup_is_an_slo_of_callers_for_a_whole_run() -> None:
    setup_slo, named = parse_slo("call_setup>99%"), parse_slo("call_setup[audio:raw]>99%")
    chat = SimpleNamespace(user_classes=[RestChatUser], parsed_options=None)
    callers = SimpleNamespace(user_classes=[AudioStreamUser], parsed_options=None)
    assert why_unmeasurable(setup_slo, chat, windowed=False) == "call_setup needs AudioStreamUser among the users"
    assert why_unmeasurable(setup_slo, callers, windowed=False) is None
    assert why_unmeasurable(named, callers, windowed=False) == "call_setup is the calls' as a whole; it takes no [name]"
    assert why_unmeasurable(setup_slo, callers, windowed=True) == (
        "call_setup is counted as calls end, for a whole run: a shape's window cannot judge it"
    )


def test_the_page_shows_setup_abandonment_dead_air_and_ttfa_by_turn_first() -> None:
    stats = AudioStats()
    for record in (call([200, 400, 250]), call([None], error=ABANDONED), call([300, 300])):
        stats.add(record)
    page = SECTIONS["audio"][1](stats.summary(10.0))
    text = re.sub(r"<[^>]+>", " ", page)
    callers = text.index("Callers: call setup 66.7% (2 of 3 connected and answered); 1 abandoned (out of patience); ")
    assert "4 silences of 300 ms or more in 3 calls; longest silence per call p95 2000 ms" in text
    turns = text.index("turn  answers  TTFA p50 ms  p95 ms  p99 ms")
    assert re.search(r"1\s+2\s+200\.0\s+300\.0\s+300\.0\s+2\s+2\s+300\.0\s+400\.0\s+400\.0\s+3\s+1\s+250\.0", text)
    assert callers < turns < text.index("send_lateness_ms") and "ttfa_by_turn_ms" not in text

"""Barge-in's measuring logic on its own: when the bot stopped, what the caller still heard, what counts as a bot
that did not stop; the figures' totals, their SLO and their row on the page; the options; demobot's answer lengths.
The real calls against demobot are in test_barge_in_calls.py."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from core.book_measure import BookMeasure
from core.errors import InputError
from core.metric_book import MetricBook
from core.slo import parse_slo
from demobot.audio_config import AudioConfig
from plugins.setup.slo_reach import why_unmeasurable
from report.page import section_tables
from users.audio.audio_codec import mulaw_encode, pcm16_bytes
from users.audio.audio_metrics import AudioStats, CallRecord
from users.audio.audio_protocols import WireFormat
from users.audio.audio_stream import AudioStreamUser
from users.audio.barge_in import BargeInSettings, barge_in_settings, has_voice, plan_barge_ins
from users.audio.barge_in_metrics import ANSWER_OVER, DID_NOT_STOP, STOPPED, BargeIn

QUIET_S = 0.3


def spoken_over(at: float = 10.0) -> BargeIn:
    """A barge-in whose interrupting speech's first voiced frame went out at ``at`` seconds."""
    return BargeIn(turn=0, after_s=0.5, started_at=at)


@pytest.mark.parametrize(
    ("kind", "status", "how"),
    [("clear", "", "clear"), ("done", "cancelled", "cancelled"), ("done", "", "done")],
)
def test_a_stop_signal_ends_the_interruption(kind: str, status: str, how: str) -> None:
    barge_in = spoken_over()
    for n in range(1, 8):  # 20 ms frames keep coming for 140 ms, then the bot says it stopped at 150 ms
        barge_in.audio(10.0 + n * 0.02, 20.0, speech_over=False, quiet_s=QUIET_S)
    barge_in.signal(kind, status, 10.15)
    assert (barge_in.outcome, barge_in.how) == (STOPPED, how)
    assert barge_in.latency_ms == pytest.approx(150.0) and barge_in.audio_after_ms == 140.0
    barge_in.audio(10.9, 20.0, speech_over=True, quiet_s=QUIET_S)  # the next answer: not this one's
    assert barge_in.audio_after_ms == 140.0 and barge_in.latency_ms == pytest.approx(150.0)


def test_without_a_signal_the_bot_stopped_at_the_last_frame_before_the_answer_went_quiet() -> None:
    barge_in = spoken_over()
    for n in range(1, 5):
        barge_in.audio(10.0 + n * 0.02, 20.0, speech_over=False, quiet_s=QUIET_S)
    assert not barge_in.settle_if_quiet(10.08 + QUIET_S - 0.01, QUIET_S) and barge_in.watching
    # The next answer's first audio, after a pause longer than --response-gap-ms, settles it.
    barge_in.audio(10.9, 20.0, speech_over=True, quiet_s=QUIET_S)
    assert (barge_in.outcome, barge_in.how) == (STOPPED, "last frame")
    assert barge_in.latency_ms == pytest.approx(80.0) and barge_in.audio_after_ms == 80.0


def test_a_bot_that_talks_through_the_whole_interruption_did_not_stop() -> None:
    ran_to_its_end = spoken_over()
    ran_to_its_end.audio(10.02, 20.0, speech_over=False, quiet_s=QUIET_S)
    ran_to_its_end.signal("done", "completed", 10.5)
    talks_on = spoken_over()
    for n in range(1, 60):  # still talking, without a pause, when the caller has said everything
        talks_on.audio(10.0 + n * 0.02, 20.0, speech_over=n > 50, quiet_s=QUIET_S)
    for barge_in in (ran_to_its_end, talks_on):
        assert barge_in.outcome == DID_NOT_STOP and barge_in.latency_ms is None
    assert talks_on.audio_after_ms == 50 * 20.0


def test_an_answer_already_said_in_full_is_not_an_interruption() -> None:
    barge_in = spoken_over()
    assert barge_in.settle_if_quiet(10.0 + QUIET_S, QUIET_S)
    assert barge_in.outcome == ANSWER_OVER and barge_in.latency_ms is None


def test_totals_merge_over_workers_and_count_each_outcome() -> None:
    def call(*barge_ins: BargeIn) -> CallRecord:
        return CallRecord(protocol="raw", started_at=0.0, barge_ins=list(barge_ins))

    fast, slow, deaf, over, unknown = (spoken_over() for _ in range(5))
    fast.stop(10.1, "clear")
    slow.stop(10.3, "clear")
    deaf.signal("done", "completed", 11.0)
    over.outcome = ANSWER_OVER
    worker_a, worker_b, master = AudioStats(), AudioStats(), AudioStats()
    worker_a.add(call(fast, deaf))
    worker_b.add(call(slow, over, unknown))  # unknown: the call ended before the bot's reaction was known
    for worker in (worker_a, worker_b):
        master.merge_message(worker.to_message())
    figures = master.summary(10.0)["barge_in"]
    assert figures["count"] == 3 and figures["bot_did_not_stop"] == 1 and figures["answer_over_first"] == 1
    assert figures["latency_ms"]["count"] == 2 and figures["latency_ms"]["p50"] == 100.0
    assert figures["latency_ms"]["p99"] == 300.0
    assert "barge_in" not in AudioStats().summary(10.0)  # callers that never barge in: no section
    # The page shows them as rows of the audio section.
    page = section_tables(master.summary(10.0))
    assert "<td>barge_in latency_ms</td>" in page and "<td>barge_in bot_did_not_stop</td>" in page


def test_bargein_slo_reads_the_barge_rows_and_needs_callers_that_barge_in() -> None:
    book = MetricBook()
    for ms in (150.0, 152.0, 149.0, 400.0):
        book.add_request("BARGE", "audio:raw", ms, failed=False)
    book.add_request("BARGE", "audio:raw", 20.0, failed=True)  # a bot that did not stop: not a latency
    book.add_request("TTFA", "audio:raw", 900.0, failed=False)
    measure = BookMeasure(book, 10.0)
    assert parse_slo("bargein_p95<300").metric == "bargein_p95"
    assert measure("bargein_p50") == 150.0 and measure("bargein_max") == 400.0
    assert measure("bargein_p50", "audio:twilio") is None

    slo = parse_slo("bargein_p95<300")
    runs = SimpleNamespace(user_classes=[AudioStreamUser], parsed_options=SimpleNamespace(barge_in_rate=0.5))
    assert why_unmeasurable(slo, runs, windowed=False) is None
    never = SimpleNamespace(user_classes=[AudioStreamUser], parsed_options=SimpleNamespace(barge_in_rate=0.0))
    assert "--barge-in-rate above 0" in why_unmeasurable(slo, never, windowed=False)


@pytest.mark.parametrize(
    ("options", "turns", "error"),
    [
        ({"barge_in_rate": 1.5}, 2, "--barge-in-rate: must be from 0 to 1"),
        ({"barge_in_rate": -0.1}, 2, "--barge-in-rate: must be from 0 to 1"),
        ({"barge_in_rate": float("nan")}, 2, "is not a finite number"),
        ({"barge_in_after_ms": -1.0}, 2, "--barge-in-after-ms: give 0-60000 ms"),
        ({"barge_in_after_ms": 1e9}, 2, "--barge-in-after-ms: give 0-60000 ms"),
        ({"barge_in_rate": 0.5}, 1, "give --turns 2 or more"),
    ],
)
def test_bad_barge_in_options_are_refused_in_one_line(options: dict, turns: int, error: str) -> None:
    with pytest.raises(InputError, match=error.replace("(", r"\(")):
        barge_in_settings(SimpleNamespace(**options), turns)


def test_planned_barge_ins_are_seeded_and_never_the_last_turn() -> None:
    settings = BargeInSettings(barge_in_rate=0.5, barge_in_after_ms=300.0)
    plans = [[b.turn for b in plan_barge_ins(settings, 5, random.Random(7))] for _ in range(2)]
    assert plans[0] == plans[1] and set(plans[0]) <= {0, 1, 2, 3}
    everything = plan_barge_ins(BargeInSettings(barge_in_rate=1.0), 3, random.Random(1))
    assert [(b.turn, b.after_s) for b in everything] == [(0, 0.5), (1, 0.5)]
    generator = random.Random(3)
    assert plan_barge_ins(BargeInSettings(), 3, generator) == [] and generator.random() == random.Random(3).random()


def test_the_interruption_starts_at_the_first_frame_loud_enough_to_be_speech() -> None:
    import base64

    quiet, loud = np.full(160, 100, dtype=np.int16), np.full(160, -2000, dtype=np.int16)
    assert not has_voice(pcm16_bytes(quiet), WireFormat("pcm16", 8000))
    assert has_voice(pcm16_bytes(loud), WireFormat("pcm16", 8000))
    mulaw = WireFormat("mulaw", 8000)
    assert has_voice(base64.b64encode(mulaw_encode(loud)).decode(), mulaw)
    assert not has_voice(base64.b64encode(mulaw_encode(quiet)).decode(), mulaw)


def test_demobot_answer_lengths_vary_within_their_bounds_and_repeat_with_the_seed() -> None:
    varying = AudioConfig(reply_len_ms=300.0, reply_len_max_ms=700.0)
    lengths = [varying.reply_frames(random.Random(seed)) for seed in range(200)]
    assert min(lengths) == 15 and max(lengths) == 35 and len(set(lengths)) > 10
    assert lengths == [varying.reply_frames(random.Random(seed)) for seed in range(200)]
    assert {AudioConfig(reply_len_ms=310.0).reply_frames(random.Random(s)) for s in range(20)} == {16}


def test_a_call_speaks_over_the_planned_answers_and_follows_the_bot_until_it_stops() -> None:
    from gevent.event import Event

    from users.audio.audio_metrics import TurnRecord
    from users.audio.audio_protocols import RawProtocol
    from users.audio.barge_in import BargeInCalls

    class Call(BargeInCalls):
        def __init__(self) -> None:
            self.record = CallRecord("raw", 0.0, barge_ins=[BargeIn(0, 0.2), BargeIn(1, 0.2)])
            self.plan, self.protocol = SimpleNamespace(response_gap_s=QUIET_S), RawProtocol()
            self.changed, self.turn = Event(), None

    call, silence, voice = Call(), bytes(640), pcm16_bytes(np.full(320, 3000, dtype=np.int16))
    first = TurnRecord(speech_end_at=1.0, first_audio_at=1.2)
    call.record.turns.append(first)
    assert not call._interrupts(first, 1.39) and call.wake_for is call.record.barge_ins[0]  # a timer will wake it
    assert call._interrupts(first, 1.4)
    call.turn = TurnRecord()
    call.record.turns.append(call.turn)
    call._heard("audio", 640, "", 1.41)  # before the caller's voice: not counted
    call._spoke(silence, 1.42)
    call._spoke(voice, 1.44)
    call._heard("audio", 640, "", 1.46)
    call._heard("done", 0, "cancelled", 1.59)
    barge_in = call.record.barge_ins[0]
    assert barge_in.latency_ms == pytest.approx(150.0) and barge_in.audio_after_ms == 20.0
    # The second answer had played out before the caller's moment came: the third turn finds it over.
    call.record.turns.append(TurnRecord(speech_end_at=3.0, first_audio_at=3.1))
    assert not call._interrupts(call.record.turns[-1], 3.2)
    assert call.record.barge_ins[1].outcome == ANSWER_OVER

"""The pure audio parts: codec (WAV, resampling, μ-law, framing), protocol presets, and call metrics.

No network here: the presets build and parse messages, the metrics add up records, and demobot's own
μ-law (written apart from the client's) is checked against the client's for every sample.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from datasets.make_speech_sample import RATE, synthesise
from demobot import audio_signal
from users.audio.audio_codec import (
    MULAW_DECODE,
    VOICE_PEAK,
    frame_peaks,
    last_voiced_frame,
    mulaw_decode,
    mulaw_encode,
    read_wav,
    resample,
    split_frames,
    write_wav,
)
from users.audio.audio_metrics import AudioStats, CallRecord, Playback, TurnRecord
from users.audio.audio_protocols import (
    AUDIO,
    CLEAR,
    DONE,
    ERROR,
    MARK,
    READY,
    OpenAIRealtimeProtocol,
    RawProtocol,
    TwilioProtocol,
    b64_size,
    prepare_utterance,
)
from users.audio.audio_stream import DEFAULT_AUDIO_FILE, websocket_url

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def tone(frequency: float, rate: int, seconds: float = 0.5, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def level_at(samples: np.ndarray, rate: int, frequency: float) -> float:
    """Amplitude of one frequency in the signal (a single DFT bin, windowed)."""
    window = np.hanning(len(samples))
    t = np.arange(len(samples)) / rate
    bin_value = np.sum(samples * window * np.exp(-2j * np.pi * frequency * t))
    return 2 * abs(bin_value) / window.sum()


# -- μ-law -----------------------------------------------------------------------------------------


def test_mulaw_matches_the_g711_reference_for_every_sample() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # the C reference (Sun's g711.c), gone in Python 3.13
    encoded = mulaw_encode(ALL_SAMPLES)
    assert encoded == audioop.lin2ulaw(ALL_SAMPLES.astype("<i2").tobytes(), 2)
    decoded = np.frombuffer(audioop.ulaw2lin(bytes(range(256)), 2), dtype="<i2")
    assert (mulaw_decode(bytes(range(256))) == decoded).all()


def test_mulaw_known_values_and_round_trip_error() -> None:
    assert mulaw_encode(np.array([0, 32767, -32768, -1], dtype=np.int16)) == b"\xff\x80\x00\x7e"
    assert MULAW_DECODE[0xFF] == 0 and MULAW_DECODE[0x80] == 32124 and MULAW_DECODE[0x00] == -32124
    error = np.abs(mulaw_decode(mulaw_encode(ALL_SAMPLES)).astype(int) - ALL_SAMPLES.astype(int))
    # μ-law keeps about 4 bits of mantissa: the error stays within 1/16 of the value (or a few units near 0).
    assert (error <= np.maximum(16, np.abs(ALL_SAMPLES.astype(int)) / 16)).all()


def test_demobot_mulaw_is_an_independent_implementation_that_agrees() -> None:
    client = mulaw_encode(ALL_SAMPLES)
    assert bytes(audio_signal.linear_to_mulaw(int(s)) for s in ALL_SAMPLES[::7]) == client[::7]
    assert [audio_signal.mulaw_to_linear(code) for code in range(256)] == MULAW_DECODE.tolist()


def test_voice_detection_agrees_between_client_and_demobot() -> None:
    quiet = np.full(160, VOICE_PEAK - 40, dtype=np.int16)
    loud = quiet.copy()
    loud[80] = -VOICE_PEAK - 40
    for frame, voiced in ((quiet, False), (loud, True)):
        assert (frame_peaks(frame, 160)[0] >= VOICE_PEAK) == voiced
        assert audio_signal.pcm16_has_voice(frame.astype("<i2").tobytes()) == voiced
        assert audio_signal.mulaw_has_voice(mulaw_encode(frame)) == voiced
    with pytest.raises(ValueError):
        audio_signal.pcm16_has_voice(b"\x01\x02\x03")


# -- resampling ------------------------------------------------------------------------------------


def test_resampling_keeps_the_sound_and_the_duration() -> None:
    speech_band = tone(1000, 16000)
    for rate in (8000, 24000, 16000):
        out = resample(speech_band, 16000, rate)
        assert len(out) == len(speech_band) * rate // 16000 and out.dtype == np.int16
        assert abs(level_at(out.astype(float), rate, 1000) - 10000) < 300  # within 3%


def test_downsampling_filters_what_the_new_rate_cannot_carry() -> None:
    # 6 kHz does not exist at 8 kHz; unfiltered it would fold back to 2 kHz at full strength.
    out = resample(tone(6000, 16000), 16000, 8000).astype(float)
    assert level_at(out, 8000, 2000) < 10000 * 10 ** (-30 / 20)  # at least 30 dB down


# -- WAV files and frames --------------------------------------------------------------------------


def test_wav_round_trip_and_bad_files(tmp_path: Path) -> None:
    samples = tone(440, 16000, 0.1)
    write_wav(tmp_path / "a.wav", samples, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and (back == samples).all()

    import wave

    bad = {  # name: (channels, bytes per sample, rate, samples), the error
        "stereo.wav": ((2, 2, 8000, 4), "stereo.wav: stereo; give a mono 16-bit PCM WAV"),
        "8bit.wav": ((1, 1, 8000, 100), "8-bit samples"),
        "1hz.wav": ((1, 2, 1, 10), "1hz.wav: 1 Hz; give a mono 16-bit PCM WAV at 8000-48000 Hz"),
        "long.wav": ((1, 2, 8000, 8000 * 61), "long.wav: 61 s of audio; give at most 60 s"),
        "empty.wav": ((1, 2, 8000, 0), "holds no audio"),
    }
    for name, ((channels, width, rate, count), _) in bad.items():
        with wave.open(str(tmp_path / name), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(width)
            wav.setframerate(rate)
            wav.writeframes(bytes(width * channels * count))
    (tmp_path / "text.wav").write_text("not audio")
    expectations = {name: expected for name, (_, expected) in bad.items()}
    expectations.update({"text.wav": "not a PCM WAV file", "no.wav": "no such"})
    for name, expected in expectations.items():
        with pytest.raises(InputError, match=re.escape(expected)):
            read_wav(tmp_path / name)


def test_frames_are_padded_with_silence_and_the_speech_end_is_found() -> None:
    assert split_frames(b"abcde", 2) == [b"ab", b"cd", b"e\x00"]
    assert split_frames(b"\x01\x02\x03", 2, fill=0xFF) == [b"\x01\x02", b"\x03\xff"]
    samples = np.zeros(1000, dtype=np.int16)
    samples[450] = 5000
    peaks = frame_peaks(samples, 160)
    assert len(peaks) == 7 and peaks[2] == 5000 and last_voiced_frame(peaks) == 2
    assert last_voiced_frame(np.zeros(3)) == -1


def test_the_shipped_sample_is_synthesised_speech_that_runs_to_its_end() -> None:
    samples, rate = read_wav(DEFAULT_AUDIO_FILE)
    assert rate == RATE == 16000
    assert (samples == synthesise()).all()  # the file is exactly what datasets/make_speech_sample.py makes
    assert 2.5 < len(samples) / rate < 5
    peaks = frame_peaks(samples, rate // 50)
    voiced = peaks >= VOICE_PEAK
    assert not voiced[:10].any()  # it starts with room noise
    assert last_voiced_frame(peaks) == len(peaks) - 1  # speech runs into the last frame
    # No pause inside the speech is long enough for an endpointer (demobot's default waits 300 ms).
    first = int(np.argmax(voiced))
    longest_pause = max(len(run) for run in "".join("1" if v else "0" for v in voiced[first:]).split("1"))
    assert longest_pause * 20 < 150


# -- protocol presets ------------------------------------------------------------------------------


def test_twilio_plays_twilio() -> None:
    twilio = TwilioProtocol(frame_ms=20)
    connected, start = (json.loads(m) for m in twilio.opening())
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["start"]["streamSid"] == start["streamSid"] == twilio.stream_sid
    assert start["start"]["callSid"].startswith("CA") and start["start"]["accountSid"].startswith("AC")
    payload = twilio.encode_payload(b"\xff" * 160)
    assert len(payload) == 216  # 20 ms of 8 kHz μ-law in base64
    media = [json.loads(twilio.audio_message(payload)) for _ in range(3)]
    assert [m["sequenceNumber"] for m in media] == ["2", "3", "4"]
    assert [m["media"]["chunk"] for m in media] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in media] == ["0", "20", "40"]
    assert media[0]["media"]["payload"] == payload and media[0]["streamSid"] == twilio.stream_sid
    echo = json.loads(twilio.mark_echo("reply-1"))
    assert echo == {"event": "mark", "sequenceNumber": "5", "streamSid": twilio.stream_sid, "mark": {"name": "reply-1"}}
    stop = json.loads(twilio.closing()[0])
    assert stop["event"] == "stop" and stop["sequenceNumber"] == "6"

    bot_media = json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})
    assert twilio.parse(bot_media)[0].kind == AUDIO and twilio.parse(bot_media)[0].audio_bytes == 160
    assert twilio.parse('{"event": "mark", "mark": {"name": "m7"}}')[0].name == "m7"
    assert twilio.parse('{"event": "mark", "mark": {"name": "m7"}}')[0].kind == MARK
    assert twilio.parse('{"event": "clear", "streamSid": "MZ1"}')[0].kind == CLEAR
    with pytest.raises(ValueError):
        json.loads(twilio.malformed())


def test_openai_realtime_speaks_ga_and_beta() -> None:
    ga = OpenAIRealtimeProtocol("ga")
    update = json.loads(ga.opening()[0])
    assert update["type"] == "session.update" and update["session"]["type"] == "realtime"
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    beta = json.loads(OpenAIRealtimeProtocol("beta", server_vad=True).opening()[0])["session"]
    assert beta["input_audio_format"] == "pcm16" and beta["turn_detection"] == {"type": "server_vad"}
    assert json.loads(ga.audio_message("QUJD")) == {"type": "input_audio_buffer.append", "audio": "QUJD"}
    assert [json.loads(m)["type"] for m in ga.end_of_speech()] == ["input_audio_buffer.commit", "response.create"]
    assert OpenAIRealtimeProtocol("ga", server_vad=True).end_of_speech() == []

    delta = base64.b64encode(bytes(960)).decode()
    for name in ("response.output_audio.delta", "response.audio.delta"):
        event = ga.parse(json.dumps({"type": name, "delta": delta}))[0]
        assert event.kind == AUDIO and event.audio_bytes == 960
    assert ga.parse('{"type": "response.done", "response": {"status": "completed"}}')[0].kind == DONE
    failed = ga.parse('{"type": "response.done", "response": {"status": "failed", "status_details": {"error": "x"}}}')
    assert failed[0].kind == ERROR and "x" in failed[0].name
    assert ga.parse('{"type": "session.updated", "session": {}}')[0].kind == READY
    error = ga.parse('{"type": "error", "error": {"message": "bad audio"}}')[0]
    assert error.kind == ERROR and error.name == "bad audio"
    assert ga.wire.bytes_for_ms(20) == 960


def test_raw_sends_binary_and_reads_binary_or_json() -> None:
    raw = RawProtocol(16000)
    assert raw.audio_message(raw.encode_payload(b"\x01\x02")) == b"\x01\x02"
    assert raw.wire.bytes_for_ms(20) == 640 and raw.opening() == [] and raw.end_of_speech() == []
    assert raw.parse(bytes(640))[0].audio_bytes == 640
    assert raw.parse('{"type": "audio", "audio": "AAAA"}')[0].audio_bytes == 3
    assert raw.parse('{"type": "done"}')[0].kind == DONE
    assert raw.parse('{"type": "error", "message": "busy"}')[0].name == "busy"
    assert isinstance(raw.malformed(), str)


def test_b64_size_without_decoding() -> None:
    for size in range(0, 20):
        assert b64_size(base64.b64encode(bytes(size)).decode()) == size


def test_the_utterance_is_encoded_once_in_each_protocols_frames() -> None:
    samples, rate = read_wav(DEFAULT_AUDIO_FILE)
    frames = len(samples) // 320
    for protocol, frame_bytes in ((RawProtocol(16000), 640), (TwilioProtocol(), 160), (OpenAIRealtimeProtocol(), 960)):
        utterance = prepare_utterance(samples, rate, protocol, frame_bytes)
        assert len(utterance.payloads) == frames and utterance.frame_ms == 20
        assert utterance.last_voiced == frames - 1
        first = utterance.payloads[0]
        assert (len(first) if isinstance(first, bytes) else b64_size(first)) == frame_bytes
    twilio = prepare_utterance(samples, rate, TwilioProtocol(), 160)
    assert base64.b64decode(twilio.silence) == b"\xff" * 160


def test_websocket_url_follows_the_host() -> None:
    assert websocket_url("http://127.0.0.1:8080", "/ws/audio") == "ws://127.0.0.1:8080/ws/audio"
    assert websocket_url("https://bot.example.com/api/", "ws/audio?x=1") == "wss://bot.example.com/api/ws/audio?x=1"
    assert websocket_url("wss://bot.example.com", "/v1/realtime") == "wss://bot.example.com/v1/realtime"


# -- metrics ---------------------------------------------------------------------------------------


def test_playback_echoes_marks_when_the_audio_has_played_and_counts_gaps() -> None:
    playback = Playback()
    playback.add(10.0, 0.1, continuing=False)  # 100 ms of audio at t=10 s: plays until 10.1
    playback.add(10.02, 0.02, continuing=True)  # queued behind it
    assert playback.done_at(10.05) == pytest.approx(10.12)
    playback.add(10.2, 0.02, continuing=True)  # 80 ms after the audio ran out: the caller heard a gap
    assert playback.underruns == 1 and playback.done_at(10.3) == 10.3
    playback.add(10.3, 0.5, continuing=True)
    playback.clear(10.4)
    assert playback.done_at(10.4) == 10.4


def test_turn_ttfa_and_real_time_factor() -> None:
    turn = TurnRecord(speech_end_at=5.0)
    for i in range(50):  # one second of audio in 20 ms chunks, paced in real time, the first 0.5 s after speech
        turn.add_audio(5.5 + i * 0.02, 20)
    assert turn.ttfa_ms == pytest.approx(500) and turn.audio_ms == 1000
    assert turn.rtf == pytest.approx(1.0)
    assert TurnRecord(speech_end_at=1.0).ttfa_ms is None


def test_stats_keep_faults_apart_from_failures_and_merge() -> None:
    def call(**fields: object) -> CallRecord:
        record = CallRecord("twilio", 0.0, connect_ms=3.0, duration_ms=4000.0, **fields)
        turn = TurnRecord(speech_end_at=1.0)
        turn.add_audio(1.4, 20)
        turn.finished_at = 2.0
        record.turns.append(turn)
        record.sent(300, 2.0, 20)
        record.sent(300, 45.0, 20)
        return record

    one, two = AudioStats(), AudioStats()
    one.add(call(marks_ms=[80.0]))
    one.add(call(fault="drop", fault_reaction="dropped mid-utterance"))
    two.add(call(after_fault=True))
    two.add(call(error="response audio timeout", after_fault=True))
    one.merge_message(json.loads(json.dumps(two.to_message())))  # as it travels from a worker
    summary = one.summary(duration_s=10)
    assert summary["calls"] == {
        "started": 4,
        "completed": 2,
        "failed": 1,
        "connect_failures": 0,
        "injected_faults": 1,
        "cut_short": 0,
        "abandoned": 0,
        "completed_per_s": 0.2,
    }
    assert summary["faults"]["injected"] == {"drop": 1}
    assert summary["faults"]["reactions"] == {"drop: dropped mid-utterance": 1}
    assert summary["faults"]["recovered"] == 1 and summary["faults"]["not_recovered"] == 1
    assert summary["real_failures"] == {"response audio timeout": 1}
    assert summary["ttfa_ms"]["count"] == 4 and summary["ttfa_ms"]["p50"] == 400
    assert summary["send_lateness_ms"]["count"] == 8 and summary["send_lateness_ms"]["max"] == 45
    assert summary["late_frames"] == 4 and summary["frames_sent"] == 8 and summary["bytes_sent"] == 2400
    assert summary["mark_ms"]["p50"] == 80
    assert summary["response_audio_ms"]["count"] == 4 and summary["response_rtf"]["p50"] == 1.0

    cut = CallRecord("raw", 0.0, cut_short=True, turns=[TurnRecord(speech_end_at=1.0)])
    cut.turns[0].add_audio(1.3, 20)  # answered, but the test ended mid-answer
    one.add(cut)
    summary = one.summary(duration_s=10)
    assert summary["calls"]["cut_short"] == 1 and summary["calls"]["completed"] == 2
    assert summary["ttfa_ms"]["count"] == 5 and summary["response_audio_ms"]["count"] == 4


# -- WebSocket frames on the hot path --------------------------------------------------------------


def test_client_frames_match_websocket_client_and_round_trip() -> None:
    from websocket import ABNF

    from users.ws.ws_frames import BINARY, TEXT, FrameReader, client_frame, mask

    key = b"\x01\x02\x03\x04"
    for payload in (b"", b"x" * 125, b"y" * 126, bytes(range(256)) * 300):  # every length encoding
        reference = ABNF.create_frame(payload, ABNF.OPCODE_BINARY)
        reference.get_mask_key = lambda _size: key
        assert client_frame(payload, key=key) == reference.format()
    text = client_frame('{"event": "media"}', key=key)
    assert text[0] == 0x80 | TEXT and mask(text[6:], key) == b'{"event": "media"}'
    # A server's (unmasked) frames come back whole however the bytes are cut.
    server = bytes([0x80 | BINARY, 3]) + b"abc" + bytes([0x80 | TEXT, 126]) + (300).to_bytes(2, "big") + b"t" * 300
    reader = FrameReader(1 << 20)
    messages = [message for i in range(len(server)) for message in reader.feed(server[i : i + 1])]
    assert messages == [(BINARY, b"abc"), (TEXT, b"t" * 300)]


def test_frame_reader_joins_fragments_and_passes_control_frames() -> None:
    from users.ws.ws_frames import BINARY, CLOSE, PING, TEXT, FrameError, FrameReader, close_code

    reader = FrameReader(1 << 20)
    fragmented = bytes([TEXT, 2]) + b"he" + bytes([0x80 | PING, 1]) + b"p" + bytes([0x80, 3]) + b"llo"
    assert reader.feed(fragmented) == [(PING, b"p"), (TEXT, b"hello")]
    masked = bytes([0x80 | BINARY, 0x80 | 2]) + b"\x0f\x0f\x0f\x0f" + bytes([0x0F ^ 1, 0x0F ^ 2])
    assert reader.feed(masked) == [(BINARY, b"\x01\x02")]
    closing = reader.feed(bytes([0x80 | CLOSE, 2]) + (1007).to_bytes(2, "big"))
    assert closing == [(CLOSE, b"\x03\xef")] and close_code(closing[0][1]) == 1007 and close_code(b"") is None
    with pytest.raises(FrameError):
        FrameReader(1 << 20).feed(bytes([0x80, 1]) + b"x")  # a continuation of nothing

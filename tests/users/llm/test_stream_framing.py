"""SSE framing (users/llm/stream_framing.py): line endings at every split, dispatch, edge fields; JSON paths."""

from __future__ import annotations

import pytest

from core.errors import InputError
from tests.users.llm.stream_bytes import assert_split_invariant, run
from users.llm.stream_parsers import (
    JsonPath,
    SSEDecoder,
)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_sse_decoder_line_endings_at_every_split(eol: bytes) -> None:
    body = eol.join(
        [
            b": comment",
            b"event: update",
            b"id: 7",
            b"retry: 3000",
            b"data: first",
            b"data:second",
            b"data:  two spaces",
            b"",
            b"data: caf\xc3\xa9 \xf0\x9f\x99\x82",
            b"",
            b"event: only-an-event",
            b"",
            b"",
        ]
    )
    expected = [("update", "first\nsecond\n two spaces"), ("message", "café 🙂")]
    assert_split_invariant(SSEDecoder, body, expected)


def test_sse_decoder_dispatches_at_the_blank_line_not_later() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [("message", "a")]
    # a CR-terminated blank line is known to end the message at once, before any LF arrives
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\r") == [("message", "b")]
    assert decoder.feed(b"\ndata: c\r\n\r\n") == [("message", "c")]


def test_sse_decoder_mixed_line_endings() -> None:
    body = b"data: a\r\r\ndata: b\n\r\ndata: c\r\n\r:x\r\n\ndata: d\r\r"
    assert_split_invariant(SSEDecoder, body, [("message", "a"), ("message", "b"), ("message", "c"), ("message", "d")])
    decoder = SSEDecoder()
    assert decoder.feed(b"data: e\r") == []
    assert decoder.feed(b"\r\n") == [("message", "e")]
    assert decoder.feed(b"\n") == []


def test_sse_decoder_edge_fields() -> None:
    body = b"\xef\xbb\xbfdata: after bom\n\ndata\ndata\n\nunknown: x\ndata: y\n\ndata:\n\n"
    assert run(SSEDecoder(), [body]) == [("message", "after bom"), ("message", "\n"), ("message", "y"), ("message", "")]


def test_sse_decoder_close_flushes_an_unterminated_message() -> None:
    assert run(SSEDecoder(), [b"data: a\n\ndata: b"]) == [("message", "a"), ("message", "b")]
    assert run(SSEDecoder(), [b"event: x\ndata: c\n"]) == [("x", "c")]
    assert run(SSEDecoder(), [b"data: d\r"]) == [("message", "d")]
    assert SSEDecoder().close() == []


def test_sse_decoder_bad_utf8_is_replaced_not_raised() -> None:
    assert run(SSEDecoder(), [b"data: \xff\xfe\n\n"]) == [("message", "\ufffd\ufffd")]


# ---------------------------------------------------------------- openai


def test_json_path_get() -> None:
    obj = {"choices": [{"delta": {"content": "x"}}, {"delta": {}}], "0": {"a": 1}, "n": None}
    assert JsonPath("choices.0.delta.content").get(obj) == "x"
    assert JsonPath("choices.1.delta.content").get(obj) is None
    assert JsonPath("choices.2.delta").get(obj) is None
    assert JsonPath("choices.delta").get(obj) is None
    assert JsonPath("missing.key").get(obj) is None
    assert JsonPath("n.x").get(obj) is None
    assert JsonPath("0.a").get(obj) == 1  # a digit segment is still a key in an object
    assert JsonPath("choices.0.delta.content.more").get(obj) is None
    assert JsonPath("1").get(["a", "b"]) == "b"
    assert JsonPath(" usage.completion_tokens ").get({"usage": {"completion_tokens": 4}}) == 4


@pytest.mark.parametrize("path", ["", "  ", "a..b", ".a", "a."])
def test_json_path_rejects_bad_paths(path: str) -> None:
    with pytest.raises(InputError, match="--stream-usage-path"):
        JsonPath(path, "--stream-usage-path")


# ---------------------------------------------------------------- make_parser


def _byte_by_byte(chunks: list[bytes]) -> list[tuple[str, str]]:
    """What the decoder gives when every byte arrives alone (no piece can take the one-message fast path)."""
    decoder = SSEDecoder()
    return [message for chunk in chunks for byte in chunk for message in decoder.feed(bytes([byte]))]


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"a":1}\n\n', b'data: {"b":"\xc3\xa9"}\n\n', b"data: [DONE]\n\n"],
        [b"event: error\n", b'data: {"error":"x"}\n\n', b"data: y\n\n"],  # an event name read in an earlier piece
        [b"data: one\n", b"data: two\n\n"],  # a message whose first data line came earlier
        [b"data: par", b"tial\n\n", b"data: next\n\n"],  # an unfinished line waiting
        [b"data: a\r", b"\ndata: b\n\n"],  # a CR whose LF comes in the next piece
        [b"\xef\xbb\xbfdata: bom\n\n", b"data: after\n\n"],
        [b"data: two\n\ndata: in one piece\n\n", b"data:no space\n\n", b"data: x\ndata: y\n\n"],
        [b"data: \xff\xfe\n\n"],  # not UTF-8
    ],
)
def test_sse_decoder_one_message_pieces_decode_as_byte_by_byte(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    assert [message for chunk in chunks for message in decoder.feed(chunk)] == _byte_by_byte(chunks)
    assert decoder.not_utf8 == (b"\xff" in b"".join(chunks))

"""Unit tests for users.llm.stream_parsers: the openai, sse, ndjson and text formats, cut every way."""

from __future__ import annotations

import json

import pytest

from core.errors import InputError
from tests.users.llm.stream_bytes import (
    DONE,
    USAGE,
    assert_split_invariant,
    chat_chunk,
    chunkings,
    content,
    error,
    run,
    sse,
    usage,
)
from users.llm.stream_parsers import (
    MALFORMED_JSON,
    JsonSSEParser,
    NDJSONParser,
    OpenAIChatParser,
    TextParser,
    make_parser,
)

OPENAI_CHAT = (
    sse(chat_chunk({"role": "assistant", "content": ""}))
    + b": keep-alive\n\n"
    + sse(
        chat_chunk({"content": "Héllo"}),
        chat_chunk({"content": ", 世界"}),
        chat_chunk({"content": ""}),
        chat_chunk({"content": " 🙂"}),
        chat_chunk({}, finish="stop"),
        chat_chunk(None, usage=USAGE),
        "[DONE]",
    )
)
OPENAI_CHAT_EVENTS = [content("Héllo"), content(", 世界"), content(" 🙂"), usage(5), DONE]


# ---------------------------------------------------------------- SSEDecoder


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_openai_chat_stream(eol: bytes) -> None:
    body = OPENAI_CHAT.replace(b"\n", eol)
    assert_split_invariant(OpenAIChatParser, body, OPENAI_CHAT_EVENTS)


def test_openai_event_arrives_with_the_bytes_that_complete_it() -> None:
    parser = OpenAIChatParser()
    line = sse(chat_chunk({"content": "Hi"}))
    assert parser.feed(line[:-1]) == []
    assert parser.feed(line[-1:]) == [content("Hi")]
    assert parser.feed(b"data: [DONE]\n\n") == [DONE]
    assert parser.close() == []


def test_openai_content_and_usage_in_one_chunk() -> None:
    # vLLM with continuous_usage_stats: every chunk carries the running total
    body = sse(
        chat_chunk({"content": "One"}, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}),
        chat_chunk({"content": " two"}, finish="stop", usage={"prompt_tokens": 3, "completion_tokens": 2}),
        "[DONE]",
    )
    assert_split_invariant(OpenAIChatParser, body, [content("One"), usage(1), content(" two"), usage(2), DONE])


def test_openai_null_usage_and_empty_choices_are_fine() -> None:
    body = sse(
        chat_chunk({"role": "assistant"}, usage=None),
        {**chat_chunk({"content": "x"}), "usage": None},
        chat_chunk(None),
        chat_chunk(None, usage={"prompt_tokens": 1, "completion_tokens": None}),
    )
    assert run(OpenAIChatParser(), [body]) == [content("x")]


def test_openai_reasoning_deltas() -> None:
    body = sse(
        chat_chunk({"role": "assistant", "content": "", "reasoning_content": None}),
        chat_chunk({"reasoning_content": "Let me think"}),
        chat_chunk({"reasoning": " about it."}),  # newer vLLM / OpenRouter name
        chat_chunk({"reasoning_content": "Done.", "content": "Yes"}),  # the switch can share a chunk
        chat_chunk({"content": "!", "reasoning_content": None}),
        "[DONE]",
    )
    expected = [
        content("Let me think", True),
        content(" about it.", True),
        content("Done.", True),
        content("Yes"),
        content("!"),
        DONE,
    ]
    assert_split_invariant(OpenAIChatParser, body, expected)


def test_openai_legacy_completions() -> None:
    def completion(text: str, finish: str | None = None) -> dict:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {
            "id": "cmpl-3f9a",
            "object": "text_completion",
            "created": 1718000000,
            "model": "m",
            "choices": [choice],
        }

    body = sse(completion(" Paris"), completion(""), completion(".", "stop"), "[DONE]")
    assert_split_invariant(OpenAIChatParser, body, [content(" Paris"), content("."), DONE])


def test_openai_error_events() -> None:
    body = (
        sse(chat_chunk({"content": "partial"}))
        # OpenAI / newer vLLM: {"error": {...}}
        + sse({"error": {"message": "context length exceeded", "type": "BadRequestError", "code": 400}})
        # older vLLM: the error object itself
        + sse({"object": "error", "message": "engine dead", "type": "InternalServerError", "param": None, "code": 500})
        # an SSE error event, JSON or plain text
        + b'event: error\ndata: {"error": {"message": "overloaded"}}\n\n'
        + b"event: error\ndata: upstream timed out\n\n"
        + b"event: error\ndata: \n\n"
        + sse({"error": "rate limited"})
        # OpenRouter: the error rides on a normal chunk with finish_reason "error"
        + sse(
            chat_chunk(
                {"content": ""}, finish="error", error={"code": "server_error", "message": "Provider disconnected"}
            )
        )
        + sse(chat_chunk({"content": "fine"}, error=None))
    )
    expected = [
        content("partial"),
        error("context length exceeded"),
        error("engine dead"),
        error("overloaded"),
        error("upstream timed out"),
        error("error event in stream"),
        error("rate limited"),
        error("Provider disconnected"),
        content("fine"),
    ]
    assert_split_invariant(OpenAIChatParser, body, expected)


def test_openai_malformed_json_then_goes_on() -> None:
    good = json.dumps(chat_chunk({"content": "ok"}))
    body = b'data: {"choices": [{"delta": {"content": "cut\n\n' + sse(good, "[1, 2]", "   ", "[DONE]")
    expected = [error(MALFORMED_JSON), content("ok"), error("unexpected JSON shape in stream"), DONE]
    assert_split_invariant(OpenAIChatParser, body, expected)


def test_openai_truncated_body_reports_at_close() -> None:
    parser = OpenAIChatParser()
    assert parser.feed(b'data: {"choices": [{"delta": {"content": "Hel') == []
    assert parser.close() == [error(MALFORMED_JSON)]


def test_openai_done_without_space_or_final_blank_line() -> None:
    assert run(OpenAIChatParser(), [b"data:[DONE]"]) == [DONE]


# ---------------------------------------------------------------- generic SSE (JsonSSEParser)

ANTHROPIC = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    b'"content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" w\xc3\xb6rld"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":15}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_json_sse_anthropic_style(eol: bytes) -> None:
    def make() -> JsonSSEParser:
        return JsonSSEParser("delta.text", usage_path="usage.output_tokens")

    assert_split_invariant(make, ANTHROPIC.replace(b"\n", eol), [content("Hello"), content(" wörld"), usage(15)])


def test_json_sse_error_event() -> None:
    body = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    assert run(JsonSSEParser("delta.text"), [body]) == [error("Overloaded")]


def test_json_sse_tgi_style_with_list_index_path_and_custom_done() -> None:
    def token(text: str, special: bool = False, details: dict | None = None) -> str:
        data = {"index": 1, "token": {"id": 7, "text": text, "logprob": -0.2, "special": special}}
        data |= {"generated_text": None, "details": details}
        return "data:" + json.dumps(data) + "\n\n"

    body = (token(" Hi") + token("") + token("!", details={"generated_tokens": 3}) + "data: END\n\n").encode()
    expected = [content(" Hi"), content("!"), usage(3), DONE]

    def make() -> JsonSSEParser:
        return JsonSSEParser("token.text", usage_path="details.generated_tokens", done_data="END")

    assert_split_invariant(make, body, expected)
    openai_path = JsonSSEParser("choices.0.delta.content", usage_path="usage.completion_tokens")
    assert run(openai_path, [OPENAI_CHAT]) == OPENAI_CHAT_EVENTS


def test_json_sse_malformed_and_missing_path() -> None:
    body = sse({"other": 1}, {"delta": {}}, {"delta": {"text": 5}}, "{nope", "[DONE]")
    assert run(JsonSSEParser("delta.text"), [body]) == [error(MALFORMED_JSON), DONE]


# ---------------------------------------------------------------- NDJSON


def ollama(content_text: str = "", done: bool = False, **extra) -> bytes:
    line = {"model": "llama3.2", "created_at": "2024-07-01T10:00:00.000000Z"}
    line["message"] = {"role": "assistant", "content": content_text, **extra.pop("message", {})}
    line["done"] = done
    line.update(extra)
    return json.dumps(line).encode() + b"\n"


OLLAMA_CHAT = (
    ollama(message={"thinking": "Hmm, "})
    + ollama("The")
    + b"\n"
    + ollama(" sky is blue ")
    + ollama("\u2014 \u00e9t\u00e9 \U0001f324")
    + ollama(
        "",
        done=True,
        done_reason="stop",
        total_duration=4883583458,
        prompt_eval_count=26,
        eval_count=290,
        eval_duration=4709213000,
    )
)
OLLAMA_EVENTS = [
    content("Hmm, ", True),
    content("The"),
    content(" sky is blue "),
    content("— été 🌤"),
    usage(290),
    DONE,
]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_ndjson_ollama_chat(eol: bytes) -> None:
    assert_split_invariant(NDJSONParser, OLLAMA_CHAT.replace(b"\n", eol), OLLAMA_EVENTS)


def test_ndjson_ollama_generate_with_make_parser() -> None:
    lines = [
        {"model": "llama3.2", "created_at": "2024-07-01T10:00:00Z", "response": "Why", "done": False},
        {"model": "llama3.2", "created_at": "2024-07-01T10:00:00Z", "response": "?", "done": False},
        {"model": "llama3.2", "response": "", "done": True, "done_reason": "stop", "eval_count": 2},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    assert_split_invariant(
        lambda: make_parser("ndjson", "response"), body, [content("Why"), content("?"), usage(2), DONE]
    )


def test_ndjson_errors_and_malformed_lines() -> None:
    body = ollama("a") + b'{"model": "llama3.2", "message": {"content": "tru\n' + b'{"error": "model runner crashed"}\n'
    body += b"   \n" + ollama("b", done=True)
    expected = [content("a"), error(MALFORMED_JSON), error("model runner crashed"), content("b"), DONE]
    assert_split_invariant(NDJSONParser, body, expected)


def test_ndjson_unterminated_last_line_is_parsed_at_close() -> None:
    parser = NDJSONParser()
    assert parser.feed(ollama("x", done=True).rstrip(b"\n")) == []
    assert parser.close() == [content("x"), DONE]
    parser = NDJSONParser()
    assert parser.feed(b'{"message": {"content": "cut') == []
    assert parser.close() == [error(MALFORMED_JSON)]


def test_ndjson_line_arrives_with_its_newline() -> None:
    parser = NDJSONParser()
    line = ollama("now")
    assert parser.feed(line[:-1]) == []
    assert parser.feed(line[-1:]) == [content("now")]


# ---------------------------------------------------------------- text


def test_text_parser_keeps_split_characters_whole() -> None:
    body = "Grüße, 世界 🙂!".encode()
    for name, pieces in chunkings(body):
        events = run(TextParser(), pieces)
        assert events[-1] == DONE, name
        assert all(e.kind == "content" and e.text for e in events[:-1]), name
        assert "".join(e.text for e in events[:-1]) == "Grüße, 世界 🙂!", name


def test_text_parser_chunks_and_truncated_character() -> None:
    parser = TextParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"Hi ") == [content("Hi ")]
    assert parser.feed(b"\xe4\xb8") == []
    assert parser.close() == [content("\ufffd"), DONE]


# ---------------------------------------------------------------- JsonPath


def test_make_parser_formats() -> None:
    assert isinstance(make_parser("openai"), OpenAIChatParser)
    assert isinstance(make_parser(" OpenAI "), OpenAIChatParser)
    assert isinstance(make_parser("text"), TextParser)
    assert isinstance(make_parser("ndjson"), NDJSONParser)
    assert isinstance(make_parser("ndjson", "", ""), NDJSONParser)
    assert isinstance(make_parser("sse", "delta.text", "usage.output_tokens"), JsonSSEParser)
    assert run(make_parser("sse", "delta.text", "usage.output_tokens"), [ANTHROPIC]) == [
        content("Hello"),
        content(" wörld"),
        usage(15),
    ]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("websocket",), "--stream-format"),
        (("",), "--stream-format"),
        (("sse",), "--stream-text-path"),
        (("sse", "a..b"), "--stream-text-path"),
        (("sse", "delta.text", "usage..x"), "--stream-usage-path"),
        (("ndjson", "."), "--stream-text-path"),
        (("openai", "choices.0.text"), "--stream-text-path"),
        (("text", None, "usage.x"), "--stream-usage-path"),
    ],
)
def test_make_parser_errors_name_the_option(args: tuple, option: str) -> None:
    with pytest.raises(InputError, match=option) as caught:
        make_parser(*args)
    assert "\n" not in str(caught.value)

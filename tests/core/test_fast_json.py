"""fast_json.loads agrees with json.loads on real-format stream chunks, and fails where json.loads fails."""

import json

import pytest

from core.fast_json import loads

CHUNKS = [
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733300000,"model":"m","choices":[{"index":0,'
    '"delta":{"content":" river"},"logprobs":null,"finish_reason":null}],"usage":null}',
    '{"choices":[{"index":0,"delta":{"content":"say \\"hi\\"\\n\\tand \\\\ \\/ \\u00e9\\ud83d\\ude00"}}]}',
    '{"choices":[{"delta":{"content":"日本語 ünïcödé 😀"}}]}',
    '{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":32,"total_tokens":44}}',
    '{"choices":[{"delta":{"reasoning_content":"think"}}],"usage":{"completion_tokens":9223372036854775807}}',
    '{"error":{"message":"overloaded","type":"server_error","code":null}}',
    '{"object":"error","message":"bad","code":400}',
    '{"type":"ping"}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
    '{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}',
    '{"model":"llama3","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"a"},"done":false}',
    '{"done":true,"eval_count":17,"total_duration":1.5e9}',
    '  {"a": [1, -2.5e-3, true, false, null, {}]}  ',
    '{"a":1,"a":2}',
    '{"a":NaN,"b":Infinity,"c":-Infinity}',
    '"\\ud800 lone surrogate"',
    "[DONE]",
    "",
    '{"choices": [{"delta": {"content": "oops"',
    "[1,]",
    '{"a":1}x',
    "{'a': 1}",
]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_loads_agrees_with_json(chunk: str) -> None:
    try:
        expected = json.loads(chunk)
    except ValueError:
        for text in (chunk, chunk.encode()):
            with pytest.raises(ValueError):
                loads(text)
        return
    assert loads(chunk) == expected or (chunk.startswith('{"a":NaN') and str(loads(chunk)) == str(expected))
    assert str(loads(chunk.encode())) == str(expected)


def test_bytes_that_are_not_utf8_fail() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a":"\xff"}')


def test_utf16_and_utf32_bytes_parse_as_json_loads_parses_them() -> None:
    """A WebSocket server may send UTF-16 or -32 JSON, which json.loads reads from bytes and orjson refuses."""
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        payload = '{"text": "hé"}'.encode(encoding)
        assert loads(payload) == json.loads(payload) == {"text": "hé"}

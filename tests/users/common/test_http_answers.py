"""The server's request id kept for requests.csv is bounded: a hostile target's huge header does not fill the disk."""

from __future__ import annotations

from geventhttpclient.header import Headers

from users.common.http_answers import MAX_REQUEST_ID_CHARS, request_id


def test_a_huge_request_id_is_cut_and_a_missing_one_is_empty() -> None:
    assert request_id(Headers({"X-Request-Id": "r" * 80_000})) == "r" * MAX_REQUEST_ID_CHARS
    assert request_id(Headers({"x-request-ID": "abc-1"})) == "abc-1"  # header names are case-insensitive
    assert request_id(Headers({"Content-Type": "application/json"})) == ""

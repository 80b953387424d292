"""BoundedDecoder: a compressed answer is never decoded past the cap (a 1 GB gzip bomb stops at the cap)."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from users.common.http_body import AnswerTooLarge, BoundedDecoder, UnknownEncoding

CAP = 1 << 20


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda data: zlib.compress(data, wbits=-15)),
     ("br", brotli.compress), ("identity", bytes)],
)  # fmt: skip
def test_an_answer_within_the_cap_decodes_whole(encoding, compress) -> None:
    answer = b'{"answer": "' + b"ok " * 1000 + b'"}'
    assert BoundedDecoder(encoding, CAP).decode(compress(answer)) == answer


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("br", brotli.compress)])
def test_a_compression_bomb_stops_at_the_cap(encoding, compress) -> None:
    bomb = compress(b"\0" * (64 << 20))  # 64 MB of zeros in a few kB
    with pytest.raises(AnswerTooLarge):
        BoundedDecoder(encoding, CAP).decode(bomb)


def test_an_unknown_encoding_is_refused() -> None:
    with pytest.raises(UnknownEncoding):
        BoundedDecoder("zstd-nonsense", CAP)

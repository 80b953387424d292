"""WebSocket frames (RFC 6455) on the audio caller's hot path: masked frames out, the server's frames in.

websocket-client opens the connection (the HTTP upgrade); after that a call writes and reads frames
itself, because a paced caller sends 50 frames a second and its bot answers as often. One socket read
takes every frame that has arrived (websocket-client reads each frame with two or three reads), and
building a frame is a header and a mask. Pure functions and one small class: no sockets here.
"""

from __future__ import annotations

import os
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
"""Frame opcodes."""


class FrameError(ValueError):
    """The server sent something that is not a valid WebSocket frame."""


class MessageTooLong(FrameError):
    """A frame's header announced more than the reader's bound (refused before its payload is read)."""


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR-ed with the 4-byte ``key`` repeated (masking and unmasking are the same)."""
    size = len(payload)
    if not size:
        return b""
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(size, "little")


def client_frame(payload: bytes | str, opcode: int | None = None, key: bytes | None = None) -> bytes:
    """One complete, masked client frame; str payloads go as text, bytes as binary, unless ``opcode`` says."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
        opcode = TEXT if opcode is None else opcode
    elif opcode is None:
        opcode = BINARY
    key = key if key is not None else os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + key + mask(payload, key)


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    """A masked close frame with a status code."""
    return client_frame(struct.pack("!H", code) + reason.encode("utf-8")[:120], CLOSE)


def close_code(payload: bytes) -> int | None:
    """The status code of a close frame's payload (None when it has none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


_WHOLE_MESSAGE = frozenset((0x80 | TEXT, 0x80 | BINARY))
"""First bytes of a final (unfragmented) text or binary frame."""


def whole_message(data: bytes, max_message_bytes: int) -> bytes | None:
    """The payload when ``data`` is exactly one whole text or binary message in one unmasked frame of at most
    ``max_message_bytes`` (as a server's message mostly arrives), else None: read it with a FrameReader then."""
    if len(data) < 2 or data[0] not in _WHOLE_MESSAGE:
        return None
    size, start = data[1], 2  # a masked frame (second byte 0x80 and up) falls out below, as a 64-bit length does
    if size == 126:
        size, start = int.from_bytes(data[2:4], "big"), 4
    elif size > 126:
        return None
    if start + size != len(data) or size > max_message_bytes:
        return None
    return data[start:]


class FrameReader:
    """Splits what the server sent into messages and control frames, however the bytes were cut.

    ``feed`` returns ``(opcode, payload)`` pairs: whole TEXT or BINARY messages (fragments joined) and
    CLOSE, PING and PONG frames as they come. A message longer than ``max_message_bytes`` (one frame, or its
    fragments together) raises MessageTooLong as soon as the header announcing it is in, so at most one bound's
    worth of a message is ever buffered.
    """

    __slots__ = ("backlog", "buffer", "fragment_opcode", "fragments", "max_message_bytes")

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.fragment_opcode: int | None = None
        self.backlog = False
        """True when the last ``feed`` stopped at its frame budget with whole frames still buffered."""

    def feed(self, data: bytes, max_frames: int | None = None) -> list[tuple[int, bytes]]:
        """The messages and control frames ``data`` completes; with ``max_frames``, at most that many frames are
        parsed (a read of tiny frames is parsed over several loop turns: ``feed(b"", ...)`` while ``backlog``)."""
        buffer = self.buffer
        buffer += data
        out: list[tuple[int, bytes]] = []
        parsed, self.backlog = 0, False
        while len(buffer) >= 2:
            if parsed == max_frames:
                self.backlog = True
                break
            parsed += 1
            first, second = buffer[0], buffer[1]
            size, start = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if size + sum(map(len, self.fragments)) > self.max_message_bytes:
                raise MessageTooLong(f"frame of {size} bytes")
            key = None
            if second & 0x80:  # servers must not mask, but unmasking costs nothing
                if len(buffer) < start + 4:
                    break
                key, start = bytes(buffer[start : start + 4]), start + 4
            end = start + size
            if len(buffer) < end:
                break
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if key is not None:
                payload = mask(payload, key)
            self._frame(first & 0x80, first & 0x0F, payload, out)
        return out

    def _frame(self, fin: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        if opcode >= CLOSE:  # control frames may come between the fragments of a message
            out.append((opcode, payload))
        elif opcode == CONTINUATION:
            if self.fragment_opcode is None:
                raise FrameError("continuation frame without a message to continue")
            self.fragments.append(payload)
            if fin:
                out.append((self.fragment_opcode, b"".join(self.fragments)))
                self.fragments, self.fragment_opcode = [], None
        elif opcode in (TEXT, BINARY):
            if fin:
                out.append((opcode, payload))
            else:
                self.fragments, self.fragment_opcode = [payload], opcode
        else:
            raise FrameError(f"unknown opcode {opcode}")

"""Stream framing: W3C server-sent events decoded incrementally, and dotted JSON paths compiled once.

The parsers in stream_parsers.py build on these; nothing here imports Locust or touches the network.
"""

from __future__ import annotations

from typing import Any

from core.errors import InputError

_BOM = "\ufeff"


class JsonPath:
    """A dotted path into parsed JSON (``choices.0.delta.content``), compiled once for a fast ``get``.

    Segments are object keys; an all-digit segment also indexes a list. A missing key, an index out of
    range or a type mismatch makes ``get`` return None.
    """

    __slots__ = ("_steps", "path")

    def __init__(self, path: str, option: str = "--stream-text-path") -> None:
        """Compile ``path``; raise InputError naming ``option`` when it is empty or has an empty segment."""
        self.path = path
        segments = path.strip().split(".")
        if not path.strip() or any(not segment for segment in segments):
            raise InputError(
                f"{option} {path!r} is not a JSON path: give dot-separated keys and list indices,"
                " e.g. choices.0.delta.content"
            )
        self._steps = tuple(
            (segment, int(segment) if segment.isascii() and segment.isdigit() else None) for segment in segments
        )

    def get(self, obj: Any) -> Any:
        """Return the value at this path in ``obj``, or None when it is not there."""
        for key, index in self._steps:
            if isinstance(obj, dict):
                obj = obj.get(key)
            elif index is not None and isinstance(obj, list):
                if index >= len(obj):
                    return None
                obj = obj[index]
            else:
                return None
        return obj

    def __repr__(self) -> str:
        return f"JsonPath({self.path!r})"


class SSEDecoder:
    """Incremental W3C server-sent-events framing: bytes in, ``(event name, data)`` messages out.

    Handles LF, CRLF and CR line endings (also a CRLF split across feeds), a UTF-8 character split
    across feeds, a leading BOM, ``:`` comment lines, multi-line ``data`` (joined with ``\\n``), ``data:``
    with or without its one leading space, and ``event``; ``id``, ``retry`` and unknown fields are
    ignored; a message without data lines is dropped. The event name defaults to ``message``.
    Unlike a browser, ``close()`` also dispatches an unterminated last line and message, so a body cut
    short still shows what it carried.
    """

    __slots__ = ("_at_start", "_data", "_event", "_pending", "_skip_lf", "not_utf8")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of the unfinished line (no line break in them)
        self._skip_lf = False  # the last feed ended in CR: a LF starting the next feed belongs to it
        self._at_start = True  # the BOM check is still due
        self._event = ""
        self._data: list[str] = []  # data lines of the message being read
        self.not_utf8 = False
        """Whether a line was not valid UTF-8 (decoded with U+FFFD in its place): a stream to fail, not to trust."""

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Take the next piece of the body; return the messages it completed, in order."""
        if (
            data.endswith(b"\n\n")
            and data.startswith(b"data: ")
            and data.count(b"\n") == 2
            and not (self._pending or self._data or self._event or self._skip_lf or b"\r" in data)
        ):
            # fast path: exactly one whole one-line message, as a server sends one token (the BOM check is
            # moot: the piece starts with "data")
            self._at_start = False
            return [("message", self._decode(data[6:-2]))]
        if ((data == b"\n" and not self._skip_lf) or data == b"\r\n") and not self._pending:
            # fast path: the blank line that ends a message, as a line-by-line reader delivers it
            self._skip_lf = False
            blank: list[tuple[str, str]] = []
            self._dispatch(blank)
            return blank
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
        if b"\r" in data:
            if data[-1] == 13:
                self._skip_lf = True
            data = data.replace(b"\r\n", b"\n")
            if b"\r" in data:
                data = data.replace(b"\r", b"\n")
        end = data.rfind(b"\n")
        if end < 0:
            if data:
                self._pending.append(data)
            return []
        if self._pending:
            self._pending.append(data[:end])
            text = self._decode(b"".join(self._pending))
            self._pending.clear()
        else:
            text = self._decode(data[:end])
        if end + 1 < len(data):
            self._pending.append(data[end + 1 :])
        if self._at_start:
            self._at_start = False
            text = text.removeprefix(_BOM)
        messages: list[tuple[str, str]] = []
        lines = self._data  # data lines of the current message
        for line in text.split("\n"):
            if line.startswith("data:"):
                lines.append(line[6:] if line.startswith(" ", 5) else line[5:])
            elif not line:
                self._dispatch(messages)
            elif line[0] != ":":  # not a comment (keep-alive)
                field, _, value = line.partition(":")
                if field == "event":
                    self._event = value[1:] if value.startswith(" ") else value
                elif field == "data":  # a bare "data" line is an empty data line
                    lines.append("")
        return messages

    def between_messages(self) -> bool:
        """Whether the next piece starts afresh: nothing is held from the last piece, the body's start (and a BOM)
        is past, and the stream has been UTF-8. The piece may then be read elsewhere (``OpenAIChatParser.scan``)."""
        return not (self._at_start or self._pending or self._data or self._event or self._skip_lf or self.not_utf8)

    def _decode(self, lines: bytes) -> str:
        try:
            return lines.decode("utf-8")
        except UnicodeDecodeError:
            self.not_utf8 = True
            return lines.decode("utf-8", "replace")

    def close(self) -> list[tuple[str, str]]:
        """End of the body: treat an unterminated last line as complete and dispatch any pending message."""
        self._skip_lf = False
        return self.feed(b"\n\n")

    def _dispatch(self, messages: list[tuple[str, str]]) -> None:
        """A blank line: append the message read so far, if it has data, and start the next one."""
        lines = self._data
        if lines:
            messages.append((self._event or "message", lines[0] if len(lines) == 1 else "\n".join(lines)))
            lines.clear()
        self._event = ""

"""A streaming chat server for benchmarks only: demobot's OpenAI SSE wire format at a fraction of its cost per event.

    .venv/bin/python bench/sse_server.py --ttft-ms 50 --token-ms 10 --answer-tokens 32 --timing-log t.jsonl

Why (issue 20): demobot (aiohttp, uvloop) fills its core at ~450 streams, and its loop lag then reads as the
clients' error. This server does the least per event pure Python can: one thread, one epoll loop, answers built
as bytes on arrival, one ``send`` per SSE event; events due within --quantum-ms go out together (fewer wake-ups on
both sides, as a batching LLM server's tokens do). One TTFT and one token gap for all: due times come in order, so
two FIFO queues (first tokens, next tokens) merged at their heads replace a heap. POST /v1/chat/completions
(HTTP/1.1 keep-alive, chunked) gets demobot's stream: role chunk with the headers, a chunk per token, finish, usage
if include_usage, ``data: [DONE]``. As demobot, a fresh request id goes out as X-Request-Id and into the timing log
(demobot's JSONL fields; ``received``: the kernel's arrival time of the request, SO_TIMESTAMPNS), kept in memory
and written at exit (SIGTERM/SIGINT) with a line on stderr: how late tokens left against schedule (p50/p99/max).
Loopback only; request size, connections and log lines are bounded.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import ctypes
import gc
import itertools
import json
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demobot.launcher import PARENT_ENV, READY_PREFIX
from users.common.arrival_clock import ANCILLARY_SIZE, SO_TIMESTAMPNS, kernel_stamp_ns

PATH = b"/v1/chat/completions"
MAX_REQUEST_BYTES, READ_BYTES = 64 * 1024, 65536
MAX_LOG_LINES = 1_000_000
"""Timing-log lines kept (about 200 bytes each in memory); later answers are counted, not logged."""
LATE_BIN_S, LATE_BINS = 10e-6, 10_000
"""Send lateness is counted in 10 µs bins up to 100 ms (the last bin holds everything later)."""
PARENT_CHECK_S, PR_SET_TIMERSLACK = 1.0, 29
WORDS = (b"the", b"answer", b"to", b"your", b"question", b"is", b"a", b"steady", b"stream", b"of", b"small", b"tokens")
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
    b"X-Request-Id: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
)
CHUNK_START = b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%d,"model":%s,"choices":'
ROLE = b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]'
TOKEN = b'[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]'
FINISH = b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"%s"}]'
USAGE = b'[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
DONE = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
"""The last event and the chunked body's end, in one send."""


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler so a wait in epoll ends at once."""


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def token_choices(count: int) -> list[bytes]:
    """The content chunks' ``choices`` of an answer of ``count`` tokens: words that concatenate, a full stop last."""
    pieces = [(b"" if i == 0 else b" ") + WORDS[i % len(WORDS)] for i in range(count)]
    pieces[-1] += b"."
    return [TOKEN % json.dumps(piece.decode()).encode() for piece in pieces]


def prompt_tokens(messages: list) -> int:
    """Words in the messages' text, as demobot counts prompt tokens (a string content or OpenAI content parts)."""
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [{"text": content}]
        words += sum(len(p["text"].split()) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return words


def read_request(body: bytes) -> tuple[list, str, bool, int] | None:
    """A streamed chat completion body's messages, model, include_usage and max tokens (0: the server's); or None."""
    try:
        request = json.loads(body)
        messages, model = request["messages"], request.get("model") or "demobot"
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        max_tokens = request.get("max_completion_tokens", request.get("max_tokens")) or 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    streamed = isinstance(messages, list) and messages and isinstance(model, str) and request.get("stream") is True
    counted = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0
    return (messages, model, include_usage, max_tokens) if streamed and counted else None


class Connection:
    """One client's keep-alive connection and the answer it is being sent, if any."""

    __slots__ = ("closed", "due", "events", "fd", "first_token", "inbox", "keep_alive", "received", "record", "sent")
    __slots__ += ("sock", "started", "tokens")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.fd, self.inbox = sock, sock.fileno(), bytearray()
        self.closed, self.keep_alive, self.received = False, True, 0.0
        self.events: list[bytes] | None = None
        """The answer's content events then its tail (finish, usage); None while no answer is being sent."""
        self.tokens, self.sent, self.due, self.started, self.first_token, self.record = 0, 0, 0.0, 0.0, 0.0, ""


class SseServer:
    """The epoll loop: accepts, reads requests, sends every due event, logs each answer's true timings."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.ttft_s, self.gap_s = options.ttft_ms / 1000, options.token_ms / 1000
        self.quantum_s = options.quantum_ms / 1000
        self.choices = token_choices(options.answer_tokens)
        self.max_connections, self.log_path = options.max_connections, options.timing_log
        self.listener = socket.create_server((options.host, options.port), backlog=1024)
        self.listener.setblocking(False)
        self.listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.conns: dict[int, Connection] = {}
        self.first: deque[Connection] = deque()
        self.next: deque[Connection] = deque()
        self.log: list[tuple] = []
        self.unlogged = 0
        self.late = [0] * (LATE_BINS + 1)
        self.parent = int(os.environ.get(PARENT_ENV, "0"))

    def run(self) -> None:
        """Serve until a signal raises Stop (or the launcher that started us is gone)."""
        listen_fd, conns, parent_check = self.listener.fileno(), self.conns, time.monotonic() + PARENT_CHECK_S
        while True:
            heads = [q[0].due for q in (self.first, self.next) if q]
            now = time.monotonic()
            for fd, _mask in self.wait(min(heads, default=now + PARENT_CHECK_S) + self.quantum_s - now):
                if fd == listen_fd:
                    self.accept()
                elif conn := conns.get(fd):
                    self.read(conn)
                self.send_due()  # between requests too: a burst of them must not hold back tokens already due
            self.send_due()
            if now > parent_check:
                parent_check = now + PARENT_CHECK_S
                if self.parent and os.getppid() != self.parent:
                    return

    def wait(self, timeout: float) -> list[tuple[int, int]]:
        """Wait for sockets at most ``timeout`` seconds, never past it: epoll rounds its timeout up to whole
        milliseconds, so the last millisecond is waited in select, which keeps microseconds."""
        if timeout <= 0:
            return self.epoll.poll(0)
        if timeout > 0.0015:
            return self.epoll.poll(timeout - 0.001)
        return self.epoll.poll(0) if select.select([self.epoll], [], [], timeout)[0] else []

    def accept(self) -> None:
        """Take every waiting connection; beyond --max-connections one is closed at once."""
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if len(self.conns) >= self.max_connections:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conn = Connection(sock)
            self.conns[conn.fd] = conn
            self.epoll.register(conn.fd, select.EPOLLIN)

    def read(self, conn: Connection) -> None:
        """Take what the client sent, stamped with its arrival when it starts a request; answer a whole request."""
        try:
            data, ancdata, _, _ = conn.sock.recvmsg(READ_BYTES, ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        if not data:
            self.drop(conn)
            return
        if not conn.inbox:
            stamp_ns = kernel_stamp_ns(ancdata)
            conn.received = time.time() if stamp_ns is None else stamp_ns / 1e9
        conn.inbox += data
        if conn.events is None:
            self.parse(conn)

    def parse(self, conn: Connection) -> None:
        """Answer the request at the start of the inbox once it is whole; a too large one gets 413 and a close."""
        inbox = conn.inbox
        head_end = inbox.find(b"\r\n\r\n")
        if head_end < 0:
            if len(inbox) > MAX_REQUEST_BYTES:
                self.refuse(conn, b"413 Payload Too Large", "the request is too large")
            return
        request_line, *lines = bytes(inbox[:head_end]).split(b"\r\n")
        headers = dict(line.lower().split(b":", 1) for line in lines if b":" in line)
        length = int(text) if (text := headers.get(b"content-length", b"0").strip()).isdigit() else -1
        if not 0 <= length <= MAX_REQUEST_BYTES - head_end - 4 or b"transfer-encoding" in headers:
            self.refuse(conn, b"413 Payload Too Large", "the body is too large or its length unknown")
            return
        if len(inbox) < head_end + 4 + length:
            return
        body = bytes(inbox[head_end + 4 : head_end + 4 + length])
        del inbox[: head_end + 4 + length]
        conn.keep_alive = headers.get(b"connection", b"").strip() != b"close"
        method, _, rest = request_line.partition(b" ")
        if rest.partition(b" ")[0] != PATH or method != b"POST":
            self.refuse(conn, b"404 Not Found", "only POST /v1/chat/completions is served", conn.keep_alive)
        else:
            self.start_answer(conn, body)

    def start_answer(self, conn: Connection, body: bytes) -> None:
        """Build the whole answer's events now, send the headers with the role chunk, queue the first token."""
        parsed = read_request(body)
        if parsed is None:
            self.refuse(conn, b"400 Bad Request", "a streamed chat completion body is expected", conn.keep_alive)
            return
        messages, model, include_usage, max_tokens = parsed
        request_id, count = os.urandom(16).hex().encode(), min(max_tokens or len(self.choices), len(self.choices))
        start = CHUNK_START % (request_id, int(time.time()), json.dumps(model).encode())
        end = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        conn.events = [chunk(start + choice + end) for choice in self.choices[:count]]
        conn.events.append(chunk(start + FINISH % (b"stop" if count == len(self.choices) else b"length") + end))
        if include_usage:
            prompt = prompt_tokens(messages)
            conn.events.append(chunk(start + USAGE % (prompt, count, prompt + count)))
        conn.tokens, conn.sent, conn.first_token = count, 0, 0.0
        conn.record, conn.started = request_id.decode(), time.time()
        conn.due = time.monotonic() + self.ttft_s
        if self.send(conn, HEAD % request_id + chunk(start + ROLE + end)):
            self.first.append(conn)

    def send_due(self) -> None:
        """Send every token due by now, earliest first (the two queues' heads merged), and queue each one's next."""
        first, following, late, gap = self.first, self.next, self.late, self.gap_s
        now = time.monotonic()
        while first or following:
            queue = first if first and (not following or first[0].due <= following[0].due) else following
            conn = queue[0]
            if conn.due > now:
                return
            queue.popleft()
            if conn.closed:
                continue
            late[min(int((time.monotonic() - conn.due) / LATE_BIN_S), LATE_BINS)] += 1
            if not self.send(conn, conn.events[conn.sent]):  # type: ignore[index]
                continue
            if conn.sent == 0:
                conn.first_token = time.time()
            conn.sent += 1
            if conn.sent < conn.tokens:
                conn.due += gap  # from the schedule, not the send: a late token does not delay the next
                following.append(conn)
            else:
                self.finish_answer(conn)

    def finish_answer(self, conn: Connection) -> None:
        """Send the tail events (one send each), log the answer, then serve the next request or close."""
        for event in conn.events[conn.tokens :]:  # type: ignore[index]
            if not self.send(conn, event):
                return
        if not self.send(conn, DONE):
            return
        self.record(conn, 200)
        conn.events = None
        if not conn.keep_alive:
            self.drop(conn)
        elif conn.inbox:
            self.parse(conn)

    def send(self, conn: Connection, data: bytes) -> bool:
        """One send; a client that is gone or reads too slowly to take an event whole is dropped."""
        try:
            if conn.sock.send(data) == len(data):
                return True
        except OSError:
            pass
        self.drop(conn)
        return False

    def refuse(self, conn: Connection, status: bytes, message: str, keep_alive: bool = False) -> None:
        """An error reply in OpenAI's style; the connection is closed unless it can go on."""
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
        head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (status, len(body))
        if self.send(conn, head + (b"\r\n" if keep_alive else b"Connection: close\r\n\r\n") + body) and not keep_alive:
            self.drop(conn)

    def drop(self, conn: Connection) -> None:
        """Close a connection; an answer cut short is logged as 499, as demobot logs a client that went away."""
        if conn.closed:
            return
        if conn.events is not None:
            self.record(conn, 499)
        conn.closed, conn.events = True, None
        self.epoll.unregister(conn.fd)
        del self.conns[conn.fd]
        conn.sock.close()

    def record(self, conn: Connection, status: int) -> None:
        """Keep the answer's timings for the log (bounded: past MAX_LOG_LINES they are only counted)."""
        if len(self.log) >= MAX_LOG_LINES:
            self.unlogged += 1
            return
        first_token = conn.first_token or None
        self.log.append((conn.record, conn.received, conn.started, first_token, time.time(), status, conn.sent))

    def write_log(self) -> None:
        """Write the timing log in demobot's JSONL fields, and the summary line on stderr."""
        if self.log_path:
            keys = ("id", "received", "slot_acquired", "first_token", "finished", "status", "tokens")
            with open(self.log_path, "w", encoding="utf-8") as file:
                for line in self.log:
                    row = {"id": line[0], "route": "completions", "stream": True, **dict(zip(keys, line, strict=True))}
                    file.write(json.dumps(row, separators=(",", ":")) + "\n")
        print(f"sse_server: {summary(self.late)}, answers {len(self.log)} (+{self.unlogged} unlogged)", file=sys.stderr)


def summary(late: list[int]) -> str:
    """Send lateness p50 / p99 / max in ms (each bin's upper edge) and how many events were counted."""
    total, edge = sum(late), LATE_BIN_S * 1000
    cumulative = list(itertools.accumulate(late))
    p50, p99 = (edge * (1 + bisect.bisect_left(cumulative, total * share)) for share in (0.5, 0.99))
    top = edge * (1 + max((i for i, count in enumerate(late) if count), default=-1))
    return f"send late p50 {p50:.2f} ms p99 {p99:.2f} ms max {top:.2f} ms over {total} events"


def bounded(kind: type, low: float, high: float) -> Callable[[str], float]:
    """An argparse type that refuses values outside [low, high] (NaN and inf too) with a one-line error."""

    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}")
        return value

    return parse


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; a bad value ends in one line and exit code 2 (argparse's way)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "localhost"), help="loopback only")
    parser.add_argument("--port", type=bounded(int, 0, 65535), default=0, help="0: a free port (see the ready line)")
    parser.add_argument("--ttft-ms", type=bounded(float, 0, 60_000), default=50.0, help="time to the first token")
    parser.add_argument("--token-ms", type=bounded(float, 0, 60_000), default=10.0, help="time between tokens")
    parser.add_argument("--answer-tokens", type=bounded(int, 1, 4096), default=32, help="tokens per answer")
    parser.add_argument(
        "--quantum-ms", type=bounded(float, 0, 10), default=0.5, help="send tokens due this close together"
    )
    parser.add_argument("--max-connections", type=bounded(int, 1, 20_000), default=5000, help="open at once")
    parser.add_argument("--timing-log", default=None, metavar="PATH", help="true timings as JSONL, written at exit")
    return parser.parse_args(argv)


def main() -> None:
    server = SseServer(options())

    def stop(_signal: int, _frame: object) -> None:
        raise Stop

    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, stop)
    with contextlib.suppress(OSError, AttributeError):  # the kernel's default 50 µs timer slack is lateness too
        ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    gc.disable()  # a collection pause would read as send lateness; nothing here makes reference cycles
    print(f"{READY_PREFIX}http://127.0.0.1:{server.listener.getsockname()[1]}", flush=True)
    try:
        server.run()
    except Stop:
        pass
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, signal.SIG_IGN)
        server.write_log()


if __name__ == "__main__":
    main()

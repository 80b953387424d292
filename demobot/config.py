"""demobot's command-line flags: one `BotConfig` that every other module reads."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from demobot.audio_config import LONGEST_REPLY_MS, AudioConfig
from demobot.faults import Fault, parse_fault

AUTH_MODES = ("off", "required", "cognito")


@dataclass(frozen=True)
class BotConfig:
    """Everything demobot can be told on its command line, with the defaults it runs on."""

    host: str = "127.0.0.1"
    port: int = 8080
    slots: int = 16
    """How many answers are generated at the same time."""
    queue_limit: int = 200
    """How many admitted requests may wait for a slot before new ones get 429."""
    retry_after: int = 1
    """Seconds sent in the Retry-After header of a 429."""
    ttft_ms: float = 100.0
    """Delay from acquiring a slot to the first token."""
    token_ms: float = 10.0
    """Delay between consecutive tokens after the first."""
    token_ms_per_stream: float = 0.0
    """Added to the token gap for every other answer generated at the same time (a batching server's decode slows
    as its batch grows), so TPOT and ITL rise with load and a breakpoint can find where they pass an SLO."""
    answer_tokens: int = 40
    reasoning_tokens: int = 0
    """Reasoning ("thinking") tokens streamed before the answer by the Anthropic, Responses and Ollama routes."""
    error_rate: float = 0.0
    """Probability that a generation request fails at once with an injected 500."""
    auth: str = "off"
    cognito_pool_id: str = ""
    """Under --auth cognito: the user pool whose tokens are accepted."""
    cognito_endpoint: str = ""
    """Where the pool's signing keys are fetched (default: Cognito in the pool's region)."""
    cognito_client_id: str = ""
    """Under --auth cognito: accept only tokens issued to this app client (empty = any client of the pool)."""
    cognito_token: str = "any"
    token_ttl: float = 3600.0
    auto_register: bool = False
    train_time: float = 1.0
    """Seconds a bot takes to train on its uploaded pairs."""
    hide_token_expiry: bool = False
    """Leave expires_in out of login answers, as many real APIs do (clients learn of expiry from a 401)."""
    accounts: tuple[tuple[str, str], ...] = field(default=())
    """Pre-seeded (email, password) pairs."""
    faults: tuple[Fault, ...] = field(default=())
    """Injected faults (--fault), see demobot.faults."""
    fault_delay: float = 30.0
    """Seconds a ``slow-headers`` fault keeps the client waiting before it answers."""
    timing_log: str | None = None
    broadcast_delay_ms: float = 0.0
    """Plenary: delay from receiving a room message to broadcasting it."""
    broadcast_drop_rate: float = 0.0
    """Plenary: probability that one member's copy of a broadcast is dropped."""
    room_capacity: int = 0
    """Plenary: most members per room (0 = no limit); joins beyond it are refused."""
    seed: int = 0
    access_log: bool = False
    tls_cert: str = ""
    """PEM certificate (chain) to serve https/wss with; empty = plain http."""
    tls_key: str = ""
    """PEM private key of --tls-cert."""
    audio: AudioConfig = field(default_factory=AudioConfig)
    """Voice calls on /ws/audio (the --audio-* flags)."""


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --slots: must be ..."; the house style is "--slots must be ...".
        match = re.fullmatch(r"argument (--[\w-]+)(?:/[\w-]+)*: (.*)", message, flags=re.DOTALL)
        if match:
            message = f"{match.group(1)} {match.group(2)}"
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _number(kind: type, low: float | None = None, high: float | None = None, what: str = "") -> Callable[[str], float]:
    """Build an argparse `type` that converts to `kind` and checks the range, with a readable message."""

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        out_of_range = (low is not None and value < low) or (high is not None and value > high)
        if out_of_range or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return convert


def _auth_mode(text: str) -> str:
    if text not in AUTH_MODES:
        raise argparse.ArgumentTypeError(f"must be 'off', 'required' or 'cognito', got {text!r}")
    return text


def _account(text: str) -> tuple[str, str]:
    email, sep, password = text.partition(":")
    if not sep or not email or not password:
        # The value holds a password, so it is not echoed back.
        raise argparse.ArgumentTypeError("must look like EMAIL:PASSWORD")
    return email, password


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser behind `python -m demobot`."""
    parser = _OneLineParser(prog="demobot", description="The built-in demo chatbot of Chatswarm.")
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=_number(int, 0, 65535, "a port number 0..65535"), default=8080, help="0 picks a free port")
    add("--slots", type=_number(int, 1, None, "a positive integer"), default=16, help="concurrent generations")
    add("--queue-limit", type=_number(int, 0, None, "a non-negative integer"), default=200, help="waiting requests")
    add("--retry-after", type=_number(int, 0, None, "a non-negative integer"), default=1, help="seconds, on 429")
    add("--ttft-ms", type=_number(float, 0, None, "a non-negative number"), default=100.0, help="time to 1st token")
    add("--token-ms", type=_number(float, 0, None, "a non-negative number"), default=10.0, help="time per next token")
    per_stream = "added to --token-ms for every other answer generated at the same time (batching)"
    add("--token-ms-per-stream", type=_number(float, 0, 1000, "0 to 1000"), default=0.0, help=per_stream)
    add("--answer-tokens", type=_number(int, 1, None, "a positive integer"), default=40, help="words per answer")
    add("--reasoning-tokens", type=_number(int, 0, 100_000, "0 to 100000"), default=0, help="thinking before answers")
    add("--error-rate", type=_number(float, 0, 1, "a number from 0 to 1"), default=0.0, help="injected 500s")
    add(
        "--auth",
        type=_auth_mode,
        default="off",
        metavar="off|required|cognito",
        help="off | required (bearer token on chat routes) | cognito (valid Cognito JWT on chat routes)",
    )
    add("--cognito-pool-id", default="", metavar="POOL_ID", help="--auth cognito: user pool whose tokens pass")
    add("--cognito-endpoint", default="", metavar="URL", help="where the pool's keys are (default: AWS)")
    add("--cognito-client-id", default="", metavar="ID", help="--auth cognito: only this app client's tokens")
    add("--cognito-token", choices=("any", "id", "access"), default="any", help="--auth cognito: token kind")
    add("--token-ttl", type=_number(float, 0.001, None, "a positive number"), default=3600.0, help="seconds")
    add("--auto-register", action="store_true", help="register unknown emails on first login")
    add(
        "--train-time",
        type=_number(float, 0, None, "a non-negative number"),
        default=1.0,
        help="seconds to train a bot",
    )
    add("--hide-token-expiry", action="store_true", help="leave expires_in out of login answers")
    add("--account", type=_account, action="append", default=[], metavar="EMAIL:PASSWORD", help="repeatable")
    add("--fault", type=parse_fault, action="append", default=[], metavar="KIND[:RATE][@ROUTES]", help="see faults.py")
    add(
        "--fault-delay",
        type=_number(float, 0, 3600, "seconds from 0 to 3600"),
        default=30.0,
        metavar="SECONDS",
        help="how long a slow-headers fault waits before answering (default 30)",
    )
    add("--timing-log", default=None, metavar="PATH", help="write true per-request timings as JSONL")
    add("--broadcast-delay-ms", type=_number(float, 0, None, "a non-negative number"), default=0.0, help="plenary")
    add("--broadcast-drop-rate", type=_number(float, 0, 1, "a number from 0 to 1"), default=0.0, help="plenary")
    add("--room-capacity", type=_number(int, 0, None, "a non-negative integer"), default=0, help="0 = no limit")
    add("--seed", type=_number(int, None, None, "an integer"), default=0, help="seed for answers and errors")
    add("--access-log", action="store_true", help="log every HTTP request to stderr")
    add("--tls-cert", default="", metavar="PEM", help="serve https and wss with this certificate (needs --tls-key)")
    add("--tls-key", default="", metavar="PEM", help="private key of --tls-cert")
    _add_voice_calls(add)
    return parser


def _add_voice_calls(add: Callable[..., object]) -> None:
    """Voice calls on /ws/audio: their timing, answers that vary in length, callers speaking over them."""
    add("--audio-calls", type=_number(int, 1, None, "a positive integer"), default=100, help="concurrent voice calls")
    add("--audio-reply-ms", type=_number(float, 0, None, "0 or more"), default=500.0, help="speech end → reply audio")
    add("--audio-endpoint-ms", type=_number(float, 1, None, "1 or more"), default=300.0, help="silence ending a turn")
    add("--audio-reply-len-ms", type=_number(float, 20, None, "20 or more"), default=1500.0, help="reply length")
    add("--audio-lead-ms", type=_number(float, 0, None, "0 or more"), default=60.0, help="reply audio sent ahead")
    add("--audio-idle-timeout", type=_number(float, 0.01, None, "a positive number"), default=10.0, help="s, hang up")
    add(
        "--audio-reply-len-max-ms",
        type=_number(float, 0, LONGEST_REPLY_MS, f"0-{LONGEST_REPLY_MS:g}"),
        default=0.0,
        help="longest reply: lengths drawn from --audio-reply-len-ms to this (seeded); 0 = all the same",
    )
    add(
        "--audio-barge-in-ms",
        type=_number(float, 0, 60000, "0-60000"),
        default=0.0,
        help="caller speaking over a reply this long stops it (0 = at once)",
    )


def parse_args(argv: Sequence[str] | None = None) -> BotConfig:
    """Turn demobot's command line into a `BotConfig`; bad values exit with code 2 and one line on stderr."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if bool(ns.tls_cert) != bool(ns.tls_key):
        parser.error("--tls-cert and --tls-key go together: give both to serve https, or neither")
    if ns.auth == "cognito" and "_" not in ns.cognito_pool_id:
        parser.error("--auth cognito needs --cognito-pool-id REGION_ID (the user pool whose tokens pass)")
    return BotConfig(
        host=ns.host,
        port=ns.port,
        slots=ns.slots,
        queue_limit=ns.queue_limit,
        retry_after=ns.retry_after,
        ttft_ms=ns.ttft_ms,
        token_ms=ns.token_ms,
        token_ms_per_stream=ns.token_ms_per_stream,
        answer_tokens=ns.answer_tokens,
        reasoning_tokens=ns.reasoning_tokens,
        error_rate=ns.error_rate,
        auth=ns.auth,
        cognito_pool_id=ns.cognito_pool_id,
        cognito_endpoint=ns.cognito_endpoint,
        cognito_client_id=ns.cognito_client_id,
        cognito_token=ns.cognito_token,
        token_ttl=ns.token_ttl,
        auto_register=ns.auto_register,
        train_time=ns.train_time,
        hide_token_expiry=ns.hide_token_expiry,
        accounts=tuple(ns.account),
        faults=tuple(ns.fault),
        fault_delay=ns.fault_delay,
        timing_log=ns.timing_log,
        broadcast_delay_ms=ns.broadcast_delay_ms,
        broadcast_drop_rate=ns.broadcast_drop_rate,
        room_capacity=ns.room_capacity,
        seed=ns.seed,
        access_log=ns.access_log,
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        audio=AudioConfig(
            calls=ns.audio_calls,
            reply_ms=ns.audio_reply_ms,
            endpoint_ms=ns.audio_endpoint_ms,
            reply_len_ms=ns.audio_reply_len_ms,
            lead_ms=ns.audio_lead_ms,
            idle_timeout_s=ns.audio_idle_timeout,
            reply_len_max_ms=ns.audio_reply_len_max_ms,
            barge_in_ms=ns.audio_barge_in_ms,
        ),
    )

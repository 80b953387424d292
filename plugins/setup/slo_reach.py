"""Refuses, before the start, an SLO that the selected users (or the shape's windows) can never measure.

An SLO with no data at judgement time is a breach (core/slo.py), so an SLO nobody can measure would only fail
the run at its end; better to say so at once, in one line (exit 2). What each kind of user produces:

- every user: exchanges (``p95``, ``avg``, ``max``, ``rps``, ``fail_ratio`` …);
- StreamingChatUser and WebSocketChatUser: streamed answers (``ttft_ itl_ tpot_ e2e_``, ``tokens_per_s``,
  ``goodput``);
- PlenaryUser: ``fanout_``, and for a whole run ``lost``, ``completeness``, ``duplicates``;
- AudioStreamUser: ``ttfa_``, ``lateness_`` (``[audio]``), ``bargein_`` (with --barge-in-rate above 0), and for a
  whole run ``call_setup``;
- --arrival-rate: ``lateness_`` (``[arrival]``, whole run).

The breakpoint and PID shapes judge windows: plenary delivery and arrival lateness are counted for the whole
run only, so they are refused there. Request names are mostly not known before the run (an unknown one reads no
data, a breach); StreamingChatUser's are: its answers are named ``chat:<category>`` of the prompts.
"""

from __future__ import annotations

from typing import Any

from core.book_measure import RUN_ONLY_METRICS
from core.errors import InputError
from core.slo import SLO, parse_slo
from shapes.options import selected_shape
from shapes.pid import PIDSettings
from users.audio.audio_stream import AudioStreamUser
from users.audio.barge_in import BargeInSettings
from users.common.chat_base import ChatSettings
from users.common.pacing import PacingSettings
from users.llm.streaming_chat import StreamingChatUser
from users.plenary.plenary_user import PlenaryUser
from users.ws.ws_chat import WebSocketChatUser

ANSWERS = ("ttft", "itl", "tpot", "e2e", "tokens", "goodput")
"""Metric families (the part before the first ``_``) of streamed answers."""

PRODUCERS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(ANSWERS, (StreamingChatUser, WebSocketChatUser)),
    "fanout": (PlenaryUser,),
    **dict.fromkeys(RUN_ONLY_METRICS - {"call_setup"}, (PlenaryUser,)),
    "ttfa": (AudioStreamUser,),
    "call": (AudioStreamUser,),
    "bargein": (AudioStreamUser,),
}
"""Metric family → the user classes that produce it; a family not listed is every exchange's."""

WINDOWED_SHAPES = ("breakpoint", "pid")


def lateness_sources(environment: Any, windowed: bool) -> set[str]:
    """Where lateness comes from in this run: audio calls, arrival pacing (a whole run's only)."""
    sources = set()
    if _runs(environment, (AudioStreamUser,)):
        sources.add("audio")
    if not windowed and PacingSettings.read(environment.parsed_options).arrival_rate > 0:
        sources.add("arrival")
    return sources


def why_unmeasurable(slo: SLO, environment: Any, windowed: bool) -> str | None:
    """Why this run cannot measure ``slo``, or None when it can."""
    family = slo.metric.split("_", 1)[0]
    if family == "lateness":
        sources = lateness_sources(environment, windowed)
        if slo.name is not None and slo.name not in ("audio", "arrival"):
            return "lateness takes [audio] or [arrival]"
        wanted = {slo.name} if slo.name else {"audio", "arrival"}
        if not sources & wanted:
            return f"no {' or '.join(sorted(wanted))} lateness in this run" + (
                " (arrival lateness is judged for a whole run, not in a shape's window)" if windowed else ""
            )
        return None
    if slo.metric in RUN_ONLY_METRICS:
        plenary = slo.metric != "call_setup"
        if slo.name is not None:
            whose = "plenary's" if plenary else "calls'"
            return f"{slo.metric} is the {whose} as a whole; it takes no [name]"
        if windowed:
            counted = "as members leave" if plenary else "as calls end"
            return f"{slo.metric} is counted {counted}, for a whole run: a shape's window cannot judge it"
    producers = PRODUCERS.get(family)
    if producers and not _runs(environment, producers):
        return f"{slo.metric} needs {' or '.join(p.__name__ for p in producers)} among the users"
    if family == "bargein" and not BargeInSettings.read(environment.parsed_options).barge_in_rate:
        return f"{slo.metric} needs callers that speak over answers: --barge-in-rate above 0"
    names = answer_names(environment) if family in ANSWERS and slo.name is not None else None
    if names is not None and slo.name not in names:
        return f"no request is named {slo.name!r} (StreamingChatUser's answers are {', '.join(sorted(names))})"
    return None


def answer_names(environment: Any) -> set[str] | None:
    """The request names streamed answers can have in this run, when the users make them knowable."""
    streams = [user for user in environment.user_classes or () if issubclass(user, PRODUCERS["ttft"])]
    if not streams or not all(issubclass(user, StreamingChatUser) for user in streams):
        return None
    return {f"chat:{category}" for category in ChatSettings.read(environment.parsed_options).prompt_source.categories}


def check_reach(environment: Any, slos: list[SLO]) -> None:
    """Raise InputError for the first SLO (or PID statistic) this run's users or shape cannot measure."""
    options = environment.parsed_options
    shape = selected_shape(options)
    windowed = shape in WINDOWED_SHAPES
    judged = [(f"--slo {slo.text or str(slo)!r}", slo) for slo in slos]
    if shape == "pid":
        statistic = PIDSettings.read(options).latency_percentile
        judged.append((f"--latency-percentile {statistic}", parse_slo(f"{statistic}<1")))
    for flag, slo in judged:
        reason = why_unmeasurable(slo, environment, windowed)
        if reason:
            raise InputError(f"{flag}: cannot be measured in this run: {reason}")


def _runs(environment: Any, classes: tuple[type, ...]) -> bool:
    return any(issubclass(user, classes) for user in environment.user_classes or ())

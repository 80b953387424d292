"""Chatswarm: the one file Locust loads.

    locust -f locustfile.py --headless --config config/load.conf --host http://127.0.0.1:8080

It imports the simulated users and the plugins (options, preflight checks, progress, run folder, LLM
metrics, per-request log). Pick users with ``--user-mix`` (or Locust's positional class names);
everything else is an option: see ``locust -f locustfile.py --help`` or the web UI.
"""

from plugins import (
    arrival_report,
    audio_report,
    cloudwatch,
    llm_metrics,
    options,
    parent_watch,
    plenary_report,
    preflight,
    progress,
    request_log,
    resource_monitor,
    run_folder,
    shape_select,
    slo_gate,
    workers,
    ws_report,
)
from users.audio_stream import AudioStreamUser
from users.health_check import HealthCheckUser
from users.plenary import PlenaryUser
from users.rest_chat import RestChatUser
from users.streaming_chat import StreamingChatUser
from users.ws_chat import WebSocketChatUser

PLUGINS = (
    options,
    preflight,
    progress,
    run_folder,
    llm_metrics,
    request_log,
    shape_select,
    arrival_report,
    slo_gate,
    resource_monitor,
    cloudwatch,
    ws_report,
    plenary_report,
    audio_report,
    workers,
    parent_watch,
)
"""Plugins register their event listeners when imported; options also loads .env."""

__all__ = [
    "AudioStreamUser",
    "HealthCheckUser",
    "PlenaryUser",
    "RestChatUser",
    "StreamingChatUser",
    "WebSocketChatUser",
]

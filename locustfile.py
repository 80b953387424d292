"""Chatswarm: the one file Locust loads.

    locust -f locustfile.py --headless --config config/load.conf --host http://127.0.0.1:8080

It imports the simulated users and registers the plugins in order (options, checks before the start, run
folder, metrics, per-request log, SLO gate); a new protocol user is one import line here (see
docs/ARCHITECTURE.md). Pick users with ``--user-mix`` (or Locust's positional class names); everything else is
an option: see the web UI or the README.
"""

import sys

try:
    import gevent
    from locust import events

    from plugins.metrics import (
        arrival_report,
        audio_report,
        book_keeper,
        cloudwatch,
        heap_freeze,
        llm_metrics,
        loop_lag,
        plenary_report,
        resource_monitor,
        retry_after_report,
        trend,
        workers,
        ws_report,
    )
    from plugins.output import progress, redaction, request_log, run_end, run_folder, slo_gate, trust
    from plugins.setup import (
        config_files,
        header_stamps,
        options,
        parent_watch,
        pool_check,
        preflight,
        probe,
        shape_select,
        stop_warmup,
    )
    from plugins.web import form, tab, test_runs
    from users.audio.audio_stream import AudioStreamUser
    from users.http.health_check import HealthCheckUser
    from users.http.rest_chat import RestChatUser
    from users.llm.streaming_chat import StreamingChatUser
    from users.plenary.plenary_user import PlenaryUser
    from users.ws.ws_chat import WebSocketChatUser
except ModuleNotFoundError as missing:  # started outside the virtualenv the README sets up
    from core.errors import missing_dependency

    sys.exit(missing_dependency(missing, "chatswarm"))

PLUGINS = (
    options,  # every option, .env
    redaction,  # before Locust's runner listens: failure names, log lines and the web UI never show a secret
    preflight,  # the first init listener: bad input ends the run before any plugin acts on it
    probe,  # after the checks, before the run folder: one exchange per user kind stops a misconfigured run
    run_folder,
    test_runs,  # the web UI: one run folder per test (after the run folder: it stamps the start first)
    arrival_report,
    audio_report,
    resource_monitor,
    cloudwatch,
    llm_metrics,
    book_keeper,  # the exact figures every verdict reads: summary's requests and totals, gate, shapes
    plenary_report,
    retry_after_report,
    workers,
    ws_report,
    loop_lag,
    trend,
    heap_freeze,  # full garbage collections would stall the loop: 50 ms at the start, ~1 s with 10,000 participants
    progress,
    request_log,
    trust,  # after every metrics plugin: it judges their figures
    tab,  # the web UI's live Chatswarm tab: the figures the run folder will hold
    slo_gate,  # after the run folder and the request log: it judges what they hold
    parent_watch,
    stop_warmup,  # Locust's stop walks the stack: done once at the start, it no longer stalls answers in flight
    pool_check,  # a pooled connection's check does not yield: a request leaves when its start is taken
    header_stamps,  # bytes that come with an answer's headers are timed by their arrival, as every other read
    shape_select,
    form,  # the web UI's form: the options of the picked users and shape
    config_files,  # every plugin has added its options when it checks the config files
    run_end,  # last: on SIGTERM or Ctrl-C its quitting listeners stop the users before any other plugin writes
)
"""Plugins in the order their listeners run: each adds them with register(events)."""

for plugin in PLUGINS:
    plugin.register(events)

gevent.config.track_greenlet_tree = False
"""Greenlets keep no copy of the stack that spawned them (gevent keeps one for debugging): ~1 KB less per user and
per receive greenlet, and cheaper spawns. Nothing here reads ``spawning_stack`` or ``spawn_tree_locals``."""

__all__ = [
    "AudioStreamUser",
    "HealthCheckUser",
    "PlenaryUser",
    "RestChatUser",
    "StreamingChatUser",
    "WebSocketChatUser",
]

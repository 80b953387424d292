"""No secret in any output: every known secret (core/redaction.py) is masked where text leaves the process.

- **Failure names.** Locust names a failure after its exception, and every user reports failures through the
  request event. This plugin's request listener is added when locustfile.py is imported, before Locust's
  runner adds the one that files the failure, so it masks the exception's text in place first: the stats,
  Locust's CSV and HTML, requests.csv and the web UI all get the masked name, whatever user built it and
  whatever the target echoed into it (an error body, a close reason). The same for task exceptions
  (``user_error``). It costs nothing for a request that did not fail.
- **Log lines**, console and run.log alike: a log record factory masks the message and its traceback.
- **The web UI**: every page, JSON answer and CSV download of Locust's web UI is masked as it is sent
  (Locust's live report shows the target's URL, credentials and all, while a test runs).
- summary.json is masked as it is written (plugins/output/run_folder.py); index.html is made from it.

Secrets are learnt at the start (secret options, variables named like secrets, the target's URL) and as they
are born (accounts, sign-in tokens, credential headers: see ``remember*`` in core/redaction.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from locust import Events

from core import redaction
from core.options import SECRET_OPTIONS

WEB_UI_TEXT_TYPES = ("text/html", "text/csv", "text/plain", "application/json")
"""Answers of the web UI that are masked (its scripts, styles and images are not)."""


def learn(options: Any, host: str | None) -> None:
    """Remember the values of secret options, variables named like secrets and the target URL's credentials."""
    redaction.remember(*(str(getattr(options, name, "") or "") for name in SECRET_OPTIONS))
    redaction.remember_environment(os.environ)
    redaction.remember_url(host)


def install_log_redaction() -> None:
    """Mask secrets in every log record this process makes, whichever logger or handler it goes to."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "masks_secrets", False):
        return

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        mask_record(record)
        return record

    masked_record.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked_record)


def mask_record(record: logging.LogRecord) -> None:
    """Mask the record's message and traceback (formatted now, so handlers print the masked text)."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: logging reports it when a handler formats it
        return
    masked = redaction.redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redaction.redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redaction.redact(record.stack_info)


def mask_response(response: Any) -> Any:
    """A Flask response of the web UI with every secret masked (files sent as they are: assets, not text)."""
    if response.direct_passthrough or response.is_streamed or response.mimetype not in WEB_UI_TEXT_TYPES:
        return response
    text = response.get_data(as_text=True)
    masked = redaction.redact(text)
    if masked != text:
        response.set_data(masked)
    return response


def _on_request(exception: Any = None, **_kwargs: Any) -> None:
    if isinstance(exception, BaseException):
        redaction.redact_exception(exception)


def _on_user_error(exception: Any = None, **_kwargs: Any) -> None:
    if isinstance(exception, BaseException):
        redaction.redact_exception(exception)


def _on_init(environment: Any, web_ui: Any = None, **_kwargs: Any) -> None:
    learn(environment.parsed_options, environment.host)
    if web_ui is not None:
        web_ui.app.after_request(mask_response)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    redaction.remember_url(environment.host)  # a test started from the web UI may name a new host


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order).

    Called when locustfile.py is imported, so the request and user_error listeners come before the runner's.
    """
    install_log_redaction()
    events.request.add_listener(_on_request)
    events.user_error.add_listener(_on_user_error)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)

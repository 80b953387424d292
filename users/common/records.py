"""The one seam between users and plugins: measurement records, and state kept per Environment.

A user hands a measurement to the plugins one way, as a record (a plain object: a StreamRecord, an audio
CallRecord, a plenary Reception …):

- a record that belongs to a request row rides in that row's context: ``context={RECORD: record}``;
- any other record is published: ``publish(environment, record)`` fires Chatswarm's one event,
  ``chatswarm_record``, declared here.

A plugin takes records of one type from both, with ``subscribe(environment, StreamRecord, handler)``.
What a plugin keeps while a run goes on lives on one object per Environment (``state``), never in a
process global, so two Environments (a test, the web UI's next test) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from locust.event import EventHook

RECORD = "chatswarm_record"
"""Key of a request event's context that carries the exchange's record."""

REQUEST_ID = "chatswarm_request_id"
"""Key of a request event's context that carries the server's id of the exchange (``X-Request-Id``), for a row
without a record (a REST answer, a login)."""

EVENT = "chatswarm_record"
"""Name of Chatswarm's one event on ``environment.events``: fired with ``record=`` for a record without a row."""

STATE = "chatswarm_state"
"""Attribute of an Environment holding its per-run objects (type → object)."""

T = TypeVar("T")


def event(environment: Any) -> EventHook:
    """Chatswarm's event on this Environment's events (made on first use)."""
    events = environment.events
    hook = getattr(events, EVENT, None)
    if hook is None:
        hook = EventHook()
        setattr(events, EVENT, hook)
    return hook


def publish(environment: Any, record: Any) -> None:
    """Hand a record with no request row to the plugins."""
    event(environment).fire(record=record)


def subscribe(environment: Any, kind: type[T], handler: Callable[[T], None]) -> None:
    """Call ``handler(record)`` for every record of type ``kind``: published, or in a request row's context."""
    state(environment, _Subscribers, lambda: _Subscribers(environment)).handlers.setdefault(kind, []).append(handler)


class _Subscribers:
    """This Environment's handlers by record type, behind one listener on each event."""

    def __init__(self, environment: Any) -> None:
        self.handlers: dict[type, list[Callable[[Any], None]]] = {}
        event(environment).add_listener(self.on_published)
        environment.events.request.add_listener(self.on_request)

    def on_published(self, record: Any, **_kwargs: Any) -> None:
        for handler in self.handlers.get(type(record), ()):
            handler(record)

    def on_request(self, context: dict[str, Any] | None = None, **_kwargs: Any) -> None:
        record = context.get(RECORD) if context else None
        if record is not None:
            for handler in self.handlers.get(type(record), ()):
                handler(record)


def state(environment: Any, kind: type[T], make: Callable[[], T] | None = None) -> T:
    """The one ``kind`` object of this Environment, made with ``make`` (default: ``kind()``) on first use."""
    states: dict[type, Any] = environment.__dict__.setdefault(STATE, {})
    found = states.get(kind)
    if found is None:
        found = states[kind] = (make or kind)()
    return found


def existing(environment: Any, kind: type[T]) -> T | None:
    """This Environment's ``kind`` object, or None when nothing made one."""
    return environment.__dict__.get(STATE, {}).get(kind)

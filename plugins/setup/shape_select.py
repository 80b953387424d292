"""Puts the shape chosen with --shape in charge of the test, offers every shape in the web UI's class
picker, and reports the shape's progress and outcome (the ``shape`` section of summary.json)."""

from __future__ import annotations

from typing import Any

from locust import Events

from plugins.metrics import book_keeper
from plugins.output.progress import PROGRESS_FIELDS
from plugins.output.run_folder import add_section
from shapes.base import ChatswarmShape
from shapes.options import SHAPES, selected_shape


def _on_init(environment: Any, runner: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if options.class_picker:
        available = environment.available_shape_classes
        if available is not None:
            for shape in SHAPES.values():
                available.setdefault(shape.__name__, shape())
    name = selected_shape(options)
    if name is not None and environment.shape_class is None:
        environment.shape_class = SHAPES[name]()
        environment.shape_class.runner = runner
        # Locust fills in a spawn rate of 1 after init when none was given; a shape has better defaults.
        environment.shape_class.requested_spawn_rate = options.spawn_rate
    for shape in [environment.shape_class, *(environment.available_shape_classes or {}).values()]:
        if isinstance(shape, ChatswarmShape):  # the shapes judge windows of the run's exact figures
            shape.book = lambda: book_keeper.keeper(environment).book


def _current_shape(environment: Any) -> ChatswarmShape | None:
    shape = environment.shape_class
    return shape if isinstance(shape, ChatswarmShape) and shape.options is not None else None


def shape_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``shape`` section: the shape's name and outcome."""
    shape = _current_shape(environment)
    return shape.outcome() if shape else None


def shape_status(environment: Any) -> str | None:
    shape = _current_shape(environment)
    return shape.status() if shape else None


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    add_section("shape", shape_section)
    PROGRESS_FIELDS["step"] = shape_status

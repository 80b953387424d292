"""The web UI's form shows what matters: the target's and API's options, the picked users' main options and the
picked shape's options; everything else stays on the command line, in config files and LOCUST_* variables.

Which options may appear is declared once per option (``setting(..., web_ui=True)``, core/settings.py, passed to
Locust as ``include_in_web_ui``). Locust builds the form's "Custom parameters" from those on every page load,
sorted by name, with no groups and no reaction to the shape or users ticked on the page; so, through Flask's
public ``context_processor`` and Locust's ``template_args``, this plugin keeps the fields of the users and shape
picked when the page loads (--user-mix, --shape, or the last test's picks), names each field's group in its
label, adds notes saying where the rest live, and ticks only the picked users in the class picker.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from locust import Events

from core.options import GROUP_OF_OPTION, group_of
from core.settings import Settings
from shapes.arrival import ArrivalShape
from shapes.base import ChatswarmShape, UserCounts
from users.common.pacing import PacingSettings

ALWAYS_SHOWN = ("Target, API and every user", "SLOs, reports and the run")
"""Groups whose web-UI options every form shows; a user kind's group shows when that kind is picked."""

SHAPES_GROUP = "Load shapes"

NOTES = {
    "about_these_fields": (
        "main options only; the rest: command line, --config file, LOCUST_* (--chatswarm-help)",
        "see locust -f locustfile.py --chatswarm-help",
    ),
    "about_the_shape_list": (
        "the shape fields are those of --shape NAME or of the last test's shape",
        "a shape picked in the list shows its fields after its first run (reload)",
    ),
}
"""One-choice fields that carry the form's notes (label, value): Locust sorts the fields by name, so these come
first, and ignores a posted field it has no option for. A label longer than ~100 characters is cut on screen."""


def option_names(settings: type[Settings]) -> set[str]:
    """Where Locust keeps a settings class's options (their dests)."""
    return {settings.flag(item.name).lstrip("-").replace("-", "_") for item in fields(settings) if item.init}


def shape_options(shape: Any) -> set[str]:
    """The options of a picked shape: the shared user counts, its own, and the arrival rate's for arrival."""
    if not isinstance(shape, ChatswarmShape):
        return set()
    shown = option_names(UserCounts)
    for settings in (shape.settings_class, PacingSettings if isinstance(shape, ArrivalShape) else None):
        if settings is not None:
            shown |= option_names(settings)
    return shown


def shown_options(environment: Any) -> set[str]:
    """The web-UI options this Environment's form shows: always-shown groups, the picked users', the shape's."""
    groups = {*ALWAYS_SHOWN, *(group_of(user.__module__) for user in environment.user_classes)}
    groups.discard(SHAPES_GROUP)
    picked = {name for name, group in GROUP_OF_OPTION.items() if group in groups}
    return picked | shape_options(environment.shape_class)


def form_fields(extra_options: dict[str, dict[str, Any]], shown: set[str]) -> dict[str, dict[str, Any]]:
    """Locust's custom parameters narrowed to ``shown``, each labelled with its group, and the note."""
    kept = {}
    for name, field in extra_options.items():
        if name in shown or name not in GROUP_OF_OPTION:  # an option of another plugin's stays as Locust shows it
            group = GROUP_OF_OPTION.get(name)
            kept[name] = {**field, "help_text": f"{group}: {field['help_text']}" if group else field["help_text"]}
    for name, (label, value) in NOTES.items():
        note = {"default_value": value, "choices": [value], "help_text": label}
        kept[name] = {**note, "is_secret": False, "is_required": False, "is_multiple": False}
    return kept


def narrow_the_form(environment: Any) -> None:
    """Rewrite the form's template arguments in place, just before Locust renders the page."""
    args = environment.web_ui.template_args
    args["extra_options"] = form_fields(args.get("extra_options") or {}, shown_options(environment))
    if args.get("show_userclass_picker"):  # Locust ticks every class it calls available; all stay listed
        args["available_user_classes"] = sorted(user.__name__ for user in environment.user_classes)


def _on_init(environment: Any, **_kwargs: Any) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return

    @web_ui.app.context_processor
    def _narrow() -> dict[str, Any]:
        narrow_the_form(environment)
        return {}


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)

"""The stack walk Locust makes when a run stops maps no module to its file once the start made it."""

import inspect
import os

import pytest

from plugins.setup.stop_warmup import _walk_the_stack_once


def _paths_resolved_by_a_stack_walk(monkeypatch: pytest.MonkeyPatch) -> int:
    resolved: list[str] = []
    realpath = os.path.realpath

    def counting(path: str, *args: object, **kwargs: object) -> str:
        resolved.append(path)
        return realpath(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os.path, "realpath", counting)
        inspect.stack()
    return len(resolved)


def test_the_walk_at_the_start_leaves_the_one_at_the_stop_nothing_to_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    inspect._filesbymodname.clear()  # as in a fresh Locust process: nothing mapped yet
    inspect.modulesbyfile.clear()
    _walk_the_stack_once()
    assert _paths_resolved_by_a_stack_walk(monkeypatch) < 10
    inspect._filesbymodname.clear()
    inspect.modulesbyfile.clear()
    assert _paths_resolved_by_a_stack_walk(monkeypatch) > 100  # what the stop would pay without it

"""How the suite shares this machine: tests marked ``timing`` run first, in two lanes with a core each, and the
other tests wait for them, then run four at a time (a pytest plugin, loaded by tests/conftest.py).

A timing test compares a measured time with a known truth, so nothing else may run beside it. The squeeze check
(scripts/squeeze_tests.sh) shows every one of them holds with pytest, demobot and Locust all on one core; so two
lanes run side by side, each pinned to a core of its own (the pytest worker's affinity, which every process it
starts inherits), and the timing phase takes about half as long as one lane. Ordinary tests start only once every
selected timing test is done.
"""

from __future__ import annotations

import ast
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

TIMING_MARK = "timing"
"""Tests that compare a measured time with a known truth. They run first, in lanes of one core each, while the other
tests wait; then the other test files run, four at a time."""

LANES = max(1, min(2, len(os.sched_getaffinity(0))))
"""How many timing tests may run at once: one per core, at most two (the squeeze check's condition)."""

QUIET_S = 30.0
"""An ordinary test waits for the timing tests; if none has run for this long (their worker died), it goes on."""

LONGEST_FIRST = (
    "test_distributed.py",
    "test_audio_stream.py",
    "test_honest_verdicts.py",
    "test_verdicts_by_shape_and_protocol.py",
    "test_deploy.py",
    "test_web_ui.py",
)
"""After the timing tests, the files that take longest start first, so that no long file runs last alone."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{TIMING_MARK}: compares measured times with a known truth, so it runs with no other test beside it"
    )
    config.addinivalue_line(
        "markers", "startup: needs processes to start and reach the target before a short run ends (squeeze check)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Timing tests first, then the longest files; the order within a file stays."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker(TIMING_MARK):
            return -1
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units for pytest-xdist's workers: a file's timing tests as one, its other tests as another.

    One unit per file runs a module's fixtures once. (xdist's own ``--dist loadgroup`` cannot be used: it renames
    node ids, which pytest 9 no longer allows.)
    """
    from xdist.scheduler import LoadScopeScheduling

    timing = timing_tests(ROOT / "tests")

    class TimingFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, rest = nodeid.partition("::")
            return f"timing::{path}" if (path, rest.split("[")[0]) in timing else path

    return TimingFirst(config, log)


def timing_tests(folder: Path) -> set[tuple[str, str]]:
    """(file, test name) of every test function marked ``timing`` in the folder's test files (found by reading)."""
    found = set()
    for path in folder.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                ast.unparse(decorator) == f"pytest.mark.{TIMING_MARK}" for decorator in node.decorator_list
            ):
                found.add((path.relative_to(ROOT).as_posix(), node.name))
    return found


_lane: ExitStack | None = None
"""On a pytest-xdist worker running a file's timing tests: its lane, held from the first to the last of them."""

_timing_over = False
"""On a pytest-xdist worker: every selected timing test is known to be done."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown of a timing test hold a lane; an ordinary test first waits for every timing test."""
    global _lane
    worker = getattr(item.config, "workerinput", None)
    if worker is None:  # one process runs everything: nothing to share
        return (yield)
    files = _Files(worker["testrunuid"])
    if not item.get_closest_marker(TIMING_MARK):
        _wait_for_timing_tests(files, item.session)
        return (yield)
    if _lane is None:
        _lane = ExitStack()
        _lane.enter_context(_timing_lane(files))
    try:
        return (yield)
    finally:
        files.mark_done(item.nodeid)
        if nextitem is None or nextitem.path != item.path or not nextitem.get_closest_marker(TIMING_MARK):
            _lane.close()
            _lane = None


class _Files:
    """The run's shared files in the temp folder: one lock per lane, and the list of timing tests done."""

    def __init__(self, run_id: str) -> None:
        folder = Path(tempfile.gettempdir())
        self.lanes = [folder / f"chatswarm-{run_id}.lane-{index}" for index in range(LANES)]
        self.done = folder / f"chatswarm-{run_id}.timing-done"

    def mark_done(self, nodeid: str) -> None:
        with open(self.done, "a") as done:  # one short append: whole lines, whichever worker writes
            done.write(nodeid + "\n")

    def done_tests(self) -> set[str]:
        try:
            return set(self.done.read_text().splitlines())
        except FileNotFoundError:
            return set()

    def any_lane_held(self) -> bool:
        for path in self.lanes:
            with open(path, "a") as lane:
                try:
                    fcntl.flock(lane, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(lane, fcntl.LOCK_UN)
        return False


@contextmanager
def _timing_lane(files: _Files) -> Iterator[None]:
    """Take a free lane (waiting for one), and pin this worker, and every process it starts, to the lane's core."""
    cores = sorted(os.sched_getaffinity(0))
    while True:
        for index, path in enumerate(files.lanes):
            lane = open(path, "a")  # noqa: SIM115 - held across the yield below
            try:
                fcntl.flock(lane, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lane.close()
                continue
            try:
                os.sched_setaffinity(0, {cores[index % len(cores)]})
                yield
            finally:
                os.sched_setaffinity(0, cores)
                fcntl.flock(lane, fcntl.LOCK_UN)
                lane.close()
            return
        time.sleep(0.1)


def _wait_for_timing_tests(files: _Files, session: pytest.Session) -> None:
    """Return once every selected timing test is done, or no timing test has run for QUIET_S (a worker died)."""
    global _timing_over
    if _timing_over:
        return
    expected = {item.nodeid for item in session.items if item.get_closest_marker(TIMING_MARK)}
    quiet_since = time.monotonic()
    while not expected <= files.done_tests():
        if files.any_lane_held():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_S:
            break
        time.sleep(0.25)
    _timing_over = True

"""How the suite shares this machine, in three phases (a pytest plugin, loaded by tests/conftest.py): timing tests
in two lanes of a core each; then the timing tests that need the whole machine, one at a time; then the rest, five
at a time.

A timing test compares a measured time with a known truth, so nothing else may run beside it. The squeeze check
(scripts/squeeze_tests.sh) shows every one of them holds with pytest, demobot and Locust all on one core; so two
lanes run side by side, each pinned to a core of its own (the pytest worker's affinity, which every process it
starts inherits), and the timing phase takes about half as long as one lane. A test marked ``alone`` (real-time
audio callers, or the 50 s PID run of three Locust processes, which the other lane's work slows past their bounds
even on another core) runs after them, alone on the whole machine. Each phase starts once every selected test of
the one before is done. (The lanes come first: a worker is handed its next test before it starts the one it holds,
and a lane test queued behind a whole-machine test waiting its turn kept its lane idle.)
"""

from __future__ import annotations

import ast
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

TIMING_MARK = "timing"
ALONE_MARK = "alone"
"""Tests that compare a measured time with a known truth. They run first, in lanes of one core each, while the other
tests wait; then the other test files run, five at a time."""

LANES = max(1, min(2, len(os.sched_getaffinity(0))))
"""How many timing tests may run at once: one per core, at most two (the squeeze check's condition)."""

QUIET_S = 30.0
"""An ordinary test waits for the timing tests; if none has run for this long (their worker died), it goes on."""

LONGEST_FIRST = (
    "test_audio_stream.py",
    "test_distributed.py",
    "test_streaming_chat.py",
    "test_verdicts_by_shape_and_protocol.py",
    "test_plenary.py",
    "test_rest_chat.py",
    "test_deploy.py",
    "test_reports.py",
    "test_secrets.py",
    "test_ws_chat.py",
)
"""After the timing tests, the files that take longest start first, so that no long file runs last alone."""

LONGEST_TIMING_FIRST = (
    "test_pid_holds_the_target_latency_across_two_workers",
    "test_streaming_pid_across_two_workers_keeps_the_configured_timings",
    "test_breakpoint_finds_the_knee",
    "test_time_shapes_end_by_themselves_and_follow_their_plan",
    "test_arrival_holds_the_rate_while_the_server_keeps_up",
)
"""The timing tests that take longest start first in their lanes, so that the lanes end together."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{TIMING_MARK}: compares measured times with a known truth, so it runs with no other test beside it"
    )
    config.addinivalue_line(
        "markers", f"{ALONE_MARK}: a timing test that needs the whole machine, not a lane of one core"
    )
    config.addinivalue_line(
        "markers", "startup: needs processes to start and reach the target before a short run ends (squeeze check)"
    )
    if not hasattr(config, "workerinput") and getattr(config.option, "testrunuid", "") is None:
        config.option.testrunuid = uuid.uuid4().hex  # xdist hands it to every worker; the controller's to clean up


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller removes the run's shared files when the workers are done (they would pile up in /tmp)."""
    run_id = getattr(config.option, "testrunuid", None)
    if run_id and not hasattr(config, "workerinput"):
        files = _Files(run_id)
        for path in (*files.lanes, files.done):
            path.unlink(missing_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lane timing tests first (longest first), then the whole-machine ones, then the longest files; the order
    within a file stays."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.get_closest_marker(TIMING_MARK):
            name = item.originalname if isinstance(item, pytest.Function) else item.name
            longest = LONGEST_TIMING_FIRST.index(name) if name in LONGEST_TIMING_FIRST else len(LONGEST_TIMING_FIRST)
            return (-1, 0) if item.get_closest_marker(ALONE_MARK) else (-2, longest)
        name = item.path.name
        return (0, LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units for pytest-xdist's workers: each timing test function (its parameters together) as one, and a
    file's other tests as one.

    A unit runs a module's fixtures once (the timing tests that share a module fixture are parameters of one
    function). Units are handed out in collection order, so a worker's lane tests come before its whole-machine
    tests, and those before its ordinary tests: no phase waits on work queued behind it. A worker is given its next
    unit only when the test it holds back is its last (an xdist worker starts a test once it knows the next), not
    three tests ahead as xdist does: else one worker queued the two longest lane tests one after the other while
    the other lane sat idle for 70 s. (xdist's own ``--dist loadgroup`` cannot be used: it renames node ids, which
    pytest 9 no longer allows.)
    """
    from xdist.scheduler import LoadScopeScheduling

    timing = timing_tests(ROOT / "tests")

    class TimingFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, rest = nodeid.partition("::")
            function = rest.split("[")[0]
            return f"timing::{path}::{function}" if (path, function) in timing else path

        def _reschedule(self, node: Any) -> None:
            if node.shutting_down or not self.workqueue or self._pending_of(self.assigned_work[node]) <= 1:
                super()._reschedule(node)

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
"""On a pytest-xdist worker running a timing test function: its lane (or every lane), held across its parameters."""

_phases_over: set[str] = set()
"""On a pytest-xdist worker: the phases known to be over ("lanes", "timing")."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A timing test holds a lane of one core; a whole-machine timing test waits for those, then holds every lane;
    an ordinary test waits for every timing test."""
    global _lane
    worker = getattr(item.config, "workerinput", None)
    if worker is None:  # one process runs everything: nothing to share
        return (yield)
    files = _Files(worker["testrunuid"])
    if not item.get_closest_marker(TIMING_MARK):
        _wait_for(files, item.session, "timing")
        return (yield)
    alone = item.get_closest_marker(ALONE_MARK) is not None
    if _lane is None:
        if alone:
            _wait_for(files, item.session, "lanes")
        _lane = ExitStack()
        _lane.enter_context(_timing_lane(files, alone))
    try:
        return (yield)
    finally:
        files.mark_done(item.nodeid)
        if nextitem is None or _function(nextitem) != _function(item) or not nextitem.get_closest_marker(TIMING_MARK):
            _lane.close()
            _lane = None


def _function(item: pytest.Item) -> tuple[Path, str]:
    return item.path, item.originalname if isinstance(item, pytest.Function) else item.name


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
def _timing_lane(files: _Files, alone: bool) -> Iterator[None]:
    """Take a free lane and pin this worker, and every process it starts, to the lane's core; or, ``alone``, take
    every lane (in order, so whole-machine tests go one at a time) and the whole machine."""
    cores = sorted(os.sched_getaffinity(0))
    with ExitStack() as held:
        if alone:
            for path in files.lanes:
                _lock(held, path, blocking=True)
        else:
            index = _take_a_lane(held, files)
            os.sched_setaffinity(0, {cores[index % len(cores)]})
            held.callback(os.sched_setaffinity, 0, cores)
        yield


def _take_a_lane(held: ExitStack, files: _Files) -> int:
    """The index of the lane this worker now holds (waiting for one to be free)."""
    while True:
        for index, path in enumerate(files.lanes):
            if _lock(held, path, blocking=False):
                return index
        time.sleep(0.1)


def _lock(held: ExitStack, path: Path, blocking: bool) -> bool:
    """Lock ``path`` for as long as ``held`` lasts; False when it is taken and ``blocking`` is off."""
    lane = open(path, "a")  # noqa: SIM115 - closed by ``held``
    try:
        fcntl.flock(lane, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        lane.close()
        return False
    held.callback(lane.close)
    held.callback(fcntl.flock, lane, fcntl.LOCK_UN)
    return True


def _wait_for(files: _Files, session: pytest.Session, phase: str) -> None:
    """Return once every selected test of ``phase`` ("lanes": the timing tests run in lanes; "timing": every timing
    test) is done, or none has run for QUIET_S (their worker died)."""
    if phase in _phases_over:
        return
    expected = {
        item.nodeid
        for item in session.items
        if item.get_closest_marker(TIMING_MARK) and (phase == "timing" or not item.get_closest_marker(ALONE_MARK))
    }
    quiet_since = time.monotonic()
    while not expected <= files.done_tests():
        if files.any_lane_held():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_S:
            break
        time.sleep(0.25)
    _phases_over.add(phase)

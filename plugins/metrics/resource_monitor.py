"""Resource monitoring: is the server the bottleneck, or the load generator itself?

Every ``--monitor-interval`` seconds the master (or local runner) samples, with psutil, its own process
and its child processes (the workers of ``--processes``: the load generator), every ``--monitor-pid``,
and every process whose name or command line contains a ``--monitor-process`` text: CPU %, memory,
threads, open files; plus the machine's network I/O. Samples go to ``resources.csv``; ``summary.json``
gets ``resources`` (peak and mean per process, bottlenecks past the thresholds) and ``generator`` (peak
CPU, Locust's CPU warning, and whether the latency figures can be trusted). A master also records its
workers' CPU and memory as their heartbeats report them, wherever they run.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Any

import gevent
import psutil
from locust import Events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from core.errors import InputError
from core.settings import Settings, setting
from plugins.output import run_folder
from users.common import records

logger = logging.getLogger("chatswarm")

GENERATOR = "load generator"
"""Label of the Locust processes in samples."""

WORKERS = "busiest worker (heartbeats)"
"""Label of the master's busiest worker as the workers' heartbeats report them (they may run elsewhere)."""

COLUMNS = ("time", "label", "pid", "cpu_percent", "memory_mb", "threads", "open_files", "net_sent_mb", "net_recv_mb")


@dataclass(frozen=True)
class MonitorSettings(Settings):
    """What the resource monitor watches, how often, and the thresholds that make a bottleneck."""

    monitor_pid: str = setting("", "Process ids to watch besides Locust, comma separated")
    monitor_process: str = setting("", "Also watch processes whose command line contains this")
    monitor_interval: float = setting(2.0, "Seconds between resource samples")
    cpu_threshold: float = setting(80.0, "CPU %% above which a process is a bottleneck")
    memory_threshold: float = setting(1024.0, "Memory (MB) counted as a bottleneck")
    threads_threshold: int = setting(100, "Threads counted as a bottleneck")
    open_files_threshold: int = setting(500, "Open files counted as a bottleneck")

    def check(self) -> None:
        if self.monitor_interval < 0.2:
            raise InputError("--monitor-interval: must be 0.2 seconds or more")
        for pid in self.pids:
            if not psutil.pid_exists(pid):
                raise InputError(f"--monitor-pid: no process with id {pid} is running")

    @cached_property
    def pids(self) -> list[int]:
        """The ids given with --monitor-pid."""
        text = self.monitor_pid.replace(" ", ",")
        try:
            return [int(part) for part in text.split(",") if part]
        except ValueError:
            raise InputError(f"--monitor-pid: {text!r} is not a list of process ids") from None


def add_arguments(parser: Any) -> None:
    """Register the monitoring options."""
    MonitorSettings.add_arguments(parser)


def check_options(options: Any) -> None:
    """Raise InputError for bad monitoring options."""
    MonitorSettings.read(options)


@dataclass
class Series:
    """The samples of one watched process, summarised."""

    label: str
    cpu: list[float] = field(default_factory=list)
    memory_mb: list[float] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    open_files: list[int] = field(default_factory=list)
    busiest_process_cpu: float = 0.0
    """The highest CPU % any single process of this label reached (one process uses at most one core)."""
    high_water_mb: float | None = None
    """The largest resident size any single process of this label ever had, as the kernel counts it (Linux's
    VmHWM): a peak between two samples is not missed (a 664 MB burst once showed as a 215 MB sampled peak)."""

    def summary(self) -> dict[str, Any]:
        def peak_mean(values: list[float]) -> dict[str, float | None]:
            if not values:
                return {"peak": None, "mean": None}
            return {"peak": round(max(values), 1), "mean": round(sum(values) / len(values), 1)}

        memory = peak_mean(self.memory_mb)
        if self.high_water_mb is not None:
            memory["peak"] = round(max(memory["peak"] or 0.0, self.high_water_mb), 1)
        return {
            "cpu_percent": peak_mean(self.cpu),
            "memory_mb": memory,
            "threads": peak_mean(self.threads),
            "open_files": peak_mean(self.open_files),
            "samples": len(self.cpu),
        }


def high_water_mb(pid: int) -> float | None:
    """The process's peak resident size so far (MB, from /proc/<pid>/status VmHWM), or None where unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def _named(process: psutil.Process) -> str:
    """A watched process's label: its name and id, e.g. ``python3 (pid 2886)``."""
    try:
        return f"{process.name()} (pid {process.pid})"
    except psutil.Error:
        return f"pid {process.pid}"


class ResourceMonitor:
    """Samples the watched processes on a greenlet and writes resources.csv as it goes."""

    def __init__(self, options: Any, csv_file: IO[str] | None, runner: Any = None) -> None:
        self.settings = MonitorSettings.read(options)
        self.runner = runner
        self.interval = self.settings.monitor_interval
        self.pattern = self.settings.monitor_process
        self.extra_pids = self.settings.pids
        self.series: dict[str, Series] = {}
        self._processes: dict[int, psutil.Process] = {}
        self._writer = csv.writer(csv_file) if csv_file else None
        self._file = csv_file
        if self._writer:
            self._writer.writerow(COLUMNS)
        self._net_start = psutil.net_io_counters()
        self._greenlet: gevent.Greenlet | None = None
        self._slow_found: tuple[list[tuple[Any, ...]], Any] | None = None
        """The slow reads (processes, open files, high water, network) for the next sample, made in a thread."""

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def flush(self) -> None:
        """Write the samples taken so far to resources.csv (the web UI copies each test's slice)."""
        if self._file:
            self._file.flush()

    def stop(self) -> None:
        with contextlib.suppress(psutil.Error):  # the peaks since the last sample
            for label, process in self._targets():
                self._note_high_water(self.series.setdefault(label, Series(label)), process.pid)
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        if self._file:
            self._file.flush()

    def _run(self) -> None:
        while True:
            self.sample()
            gevent.sleep(self.interval)

    def _targets(self) -> list[tuple[str, psutil.Process]]:
        me = psutil.Process(os.getpid())
        targets = [(GENERATOR, me)] + [(GENERATOR, child) for child in me.children(recursive=True)]
        for pid in self.extra_pids:
            process = self._process(pid)
            targets.append((_named(process), process))
        if self.pattern:
            for process in psutil.process_iter(["name", "cmdline"]):
                command = " ".join(process.info.get("cmdline") or []) or process.info.get("name") or ""
                if self.pattern in command and process.pid != me.pid:
                    targets.append((self.pattern, self._process(process.pid)))
        return targets

    def _process(self, pid: int) -> psutil.Process:
        # The same Process object between samples, so cpu_percent() measures since the last sample.
        if pid not in self._processes:
            self._processes[pid] = psutil.Process(pid)
        return self._processes[pid]

    def sample(self) -> None:
        """Take one sample of every watched process (processes that have ended are skipped).

        CPU and memory are read here, on the loop, at the sample's instant (microseconds). Finding child processes
        walks every process on the machine and counting a process's open files lists 10,000 entries at 10,000
        connections (3-5 ms at a time): those reads are made in a thread after each sample, for the next one, so
        the event loop keeps timing the users meanwhile (open files and the network lag one interval)."""
        now = time.time()
        found, net = self._slow_found or self._slow_reads()  # the first sample reads them here, once
        readings = []
        for label, process, files, high_water in found:
            try:
                with process.oneshot():
                    cpu, memory = process.cpu_percent(None), process.memory_info().rss / 1e6
                    threads = process.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            readings.append((label, process.pid, cpu, memory, threads, files, high_water))
        sent = (net.bytes_sent - self._net_start.bytes_sent) / 1e6
        received = (net.bytes_recv - self._net_start.bytes_recv) / 1e6
        totals: dict[str, list[float]] = {}
        for label, pid, cpu, memory, threads, files, high_water in readings:
            row = totals.setdefault(label, [0.0, 0.0, 0, 0])
            series = self.series.setdefault(label, Series(label))
            series.busiest_process_cpu = max(series.busiest_process_cpu, cpu)
            if high_water is not None:
                series.high_water_mb = max(series.high_water_mb or 0.0, high_water)
            row[0] += cpu
            row[1] += memory
            row[2] += threads
            row[3] += files
            if self._writer:
                self._writer.writerow(
                    (round(now, 3), label, pid, cpu, round(memory, 1), threads, files, round(sent, 3),
                     round(received, 3))
                )  # fmt: skip
        self._sample_workers(now)
        for label, (cpu, memory, threads, files) in totals.items():
            series = self.series.setdefault(label, Series(label))
            series.cpu.append(cpu)
            series.memory_mb.append(memory)
            series.threads.append(int(threads))
            series.open_files.append(int(files))
        self._slow_found = gevent.get_hub().threadpool.apply(self._slow_reads)  # for the next sample

    def _slow_reads(self) -> tuple[list[tuple[Any, ...]], Any]:
        """The watched processes with their open files and high-water MB, and the network's counters: the reads
        that take milliseconds (it runs in a thread). CPU and memory are read on the loop (microseconds each), so a
        sample shows the process as its users see it."""
        found = []
        for label, process in self._targets():
            try:
                process = self._process(process.pid)
                files = process.num_fds()  # sockets count too: a load test's open files are mostly sockets
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found.append((label, process, files, high_water_mb(process.pid)))
        return found, psutil.net_io_counters()

    @staticmethod
    def _note_high_water(series: Series, pid: int) -> None:
        if (high_water := high_water_mb(pid)) is not None:
            series.high_water_mb = max(series.high_water_mb or 0.0, high_water)

    def _sample_workers(self, now: float) -> None:
        """A master's workers, from the CPU and memory their heartbeats report (every second). The series holds
        the busiest worker's figures, judged like one process; resources.csv has a row per worker."""
        if not isinstance(self.runner, MasterRunner):
            return
        workers = [client for client in self.runner.clients.values() if client.state != STATE_MISSING]
        if not workers:
            return
        series = self.series.setdefault(WORKERS, Series(WORKERS))
        series.cpu.append(max(client.cpu_usage for client in workers))
        series.memory_mb.append(max(client.memory_usage for client in workers) / 1e6)
        series.busiest_process_cpu = max(series.busiest_process_cpu, series.cpu[-1])
        if self._writer:
            for client in workers:
                label = f"worker {self.runner.get_worker_index(client.id)} (heartbeat)"
                memory = round(client.memory_usage / 1e6, 1)
                self._writer.writerow((round(now, 3), label, "", client.cpu_usage, memory, "", "", "", ""))

    def bottlenecks(self) -> list[str]:
        """Processes that passed a threshold, in one line each."""
        limits = (
            ("cpu_percent", "cpu", self.settings.cpu_threshold, "%"),
            ("memory_mb", "memory_mb", self.settings.memory_threshold, " MB"),
            ("threads", "threads", self.settings.threads_threshold, " threads"),
            ("open_files", "open_files", self.settings.open_files_threshold, " open files"),
        )
        found = []
        for label, series in self.series.items():
            for name, attribute, limit, unit in limits:
                values = getattr(series, attribute)
                if values and max(values) > limit:
                    found.append(
                        f"{label}: {name.replace('_', ' ')} peaked at {max(values):.0f}{unit} (limit {limit}{unit})"
                    )
        return found


def resources_section(environment: Any, _duration_s: float) -> dict[str, Any] | None:
    """summary.json's ``resources`` section."""
    monitor = records.existing(environment, ResourceMonitor)
    if monitor is None:
        return None
    return {
        "processes": {label: series.summary() for label, series in monitor.series.items()},
        "bottlenecks": monitor.bottlenecks(),
    }


def generator_cpu(environment: Any) -> tuple[float | None, bool]:
    """The busiest load-generating process's peak CPU % (None unmonitored), and whether Locust warned of CPU."""
    monitor = records.existing(environment, ResourceMonitor)
    watched = monitor.series if monitor else {}
    generator = [watched[label] for label in (GENERATOR, WORKERS) if label in watched]
    busiest = max((series.busiest_process_cpu for series in generator), default=None)
    runner = environment.runner
    warned = bool(getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False))
    return busiest, warned


def _on_init(environment: Any, runner: Any, **_kwargs: Any) -> None:
    folder = run_folder.current(environment)
    if environment.parsed_options is None or isinstance(runner, WorkerRunner) or folder is None:
        return
    csv_file = (folder.path / "resources.csv").open("w", newline="", encoding="utf-8")
    monitor = records.state(
        environment, ResourceMonitor, lambda: ResourceMonitor(environment.parsed_options, csv_file, runner)
    )
    monitor.start()


def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    monitor = records.existing(environment, ResourceMonitor)
    if monitor is None:
        return
    monitor.stop()
    for line in monitor.bottlenecks():
        logger.warning("Bottleneck: %s", line)


def register(events: Events) -> None:
    """Add this plugin's listeners to Locust's events (locustfile.py calls it, in the plugins' order)."""
    events.init.add_listener(_on_init)
    events.quitting.add_listener(_on_quitting)
    run_folder.add_section("resources", resources_section)

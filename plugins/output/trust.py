"""Can this run be trusted? The load generator judges itself, and says so first when it cannot.

A run's latency figures are only as good as the process that timed them. The ``generator`` section of
summary.json is ``trustworthy: false``, with the reasons, a note at the top of the report and console, and
a warning in the log, when any of these held:

- CPU: a load-generating process reached GENERATOR_TRUST_CPU % or Locust warned of high CPU;
- event loop lag (plugins/metrics/loop_lag.py): its p99 exceeded LOOP_LAG_BOUND_MS. Calibrated on this
  2-core machine (docs/PERFORMANCE.md): streaming users at zero think time with lag p99 under 3 ms read
  TTFT within +5 ms at p95 of the server's own log; at lag p99 7 ms, +20 ms (+19%) while CPU read 55%;
- audio: frames left later than the audio report's bound (send lateness p99);
- arrival: more than ARRIVAL_SHORTFALL_BOUND of the scheduled starts were late or dropped, so the open
  model did not apply the load it names.

The section also gives the loop lag as the error bound of the latency figures: each may read up to about
the lag's max high, and its p99 more often.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import Events

from plugins.metrics import arrival_report, audio_report, loop_lag, resource_monitor
from plugins.output.run_folder import add_note, add_section
from users.common import records

logger = logging.getLogger("chatswarm")

GENERATOR_TRUST_CPU = 90.0
"""Above this CPU % the load generator's own timings are not trustworthy (Locust's warning threshold)."""

LOOP_LAG_BOUND_MS = 5.0
"""Event loop lag p99 above this makes the latency figures untrustworthy (see the module's docstring)."""

ARRIVAL_SHORTFALL_BOUND = 0.01
"""Share of scheduled starts late or dropped above which an arrival-rate run did not apply its load."""


def distrust_reasons(environment: Any) -> tuple[list[str], dict[str, Any]]:
    """Why this run's figures cannot be trusted (empty when they can), and the figures judged."""
    reasons: list[str] = []
    busiest, warned = resource_monitor.generator_cpu(environment)
    figures: dict[str, Any] = {
        "cpu_warning": warned,
        "peak_cpu_percent": None if busiest is None else round(busiest, 1),
    }
    if warned or (busiest is not None and busiest >= GENERATOR_TRUST_CPU):
        reasons.append(f"the load generator ran out of CPU (peak {busiest or 0:.0f}%)")
    probe = loop_lag.loop_lag(environment)
    lag = probe.figures() if probe is not None else {"p50": None, "p99": None, "max": None}
    figures.update(loop_lag_ms=lag, loop_lag_bound_ms=LOOP_LAG_BOUND_MS)
    if lag["p99"] is not None and lag["p99"] > LOOP_LAG_BOUND_MS:
        reasons.append(f"its event loop woke up late (lag p99 {lag['p99']:g} ms > {LOOP_LAG_BOUND_MS:g} ms)")
    audio = records.existing(environment, audio_report.AudioReport)
    lateness = audio.stats.summary(1.0)["send_lateness_ms"]["p99"] if audio and audio.stats.counts["calls"] else None
    if lateness is not None and lateness > audio_report.LATENESS_WARNING_MS:
        reasons.append(
            f"audio frames left late (send lateness p99 {lateness:g} ms > {audio_report.LATENESS_WARNING_MS:g} ms)"
        )
    arrival = records.existing(environment, arrival_report.ArrivalReport)
    shortfall = arrival.merged.shortfall_ratio if arrival and arrival.merged.scheduled else None
    if shortfall is not None and shortfall > ARRIVAL_SHORTFALL_BOUND:
        reasons.append(f"the arrival rate was not held ({shortfall:.1%} of the starts late or dropped)")
    return reasons, figures


def generator_section(environment: Any, _duration_s: float) -> dict[str, Any]:
    """summary.json's ``generator`` section: can the figures of this run be trusted, and how far?"""
    reasons, section = distrust_reasons(environment)
    section["trustworthy"] = not reasons
    lag = section["loop_lag_ms"]
    if lag["max"] is not None:
        section["latency_error_bound_ms"] = lag["max"]
    if reasons:
        section["reasons"] = reasons
        section["advice"] = (
            f"NOT TRUSTWORTHY: {'; '.join(reasons)}, so latency figures may read high"
            + (f" (up to {lag['max']:g} ms)" if lag["max"] is not None else "")
            + ". Fewer users per process: run with --processes N (one per core) or add workers."
        )
        logger.warning(section["advice"])
        add_note(environment, section["advice"])
    return section


def register(events: Events) -> None:
    """Add this plugin's section (locustfile.py calls it, in the plugins' order)."""
    add_section("generator", generator_section)

"""The one parser and judge for SLO expressions such as ``p95<2500`` or ``fail_ratio<1%``.

Grammar: ``METRIC[NAME] OP VALUE[UNIT]`` with optional whitespace between the parts.

- METRIC: ``p50 p90 p95 p99 avg max`` (ms, over the successful exchanges); ``fail_ratio``; ``rps``;
  ``ttft_ itl_ tpot_ e2e_ fanout_ ttfa_ bargein_ lateness_`` + ``p50|p90|p95|p99|avg`` (ms); ``tokens_per_s``;
  ``goodput``; plenary delivery ``lost``, ``completeness``, ``duplicates`` (ratios of the expected receptions);
  ``call_setup`` (voice calls connected and answered / tried).
- ``[NAME]`` (optional) restricts the metric to one request name; it may hold colons, spaces, slashes.
- OP: ``< <= > >=``.
- UNIT: ``ms`` (default) or ``s`` for latencies; ``%`` for ratios (default is a plain ratio);
  ``/s`` (optional) for rates.
- A trailing ``?`` makes the SLO optional: no data to judge it by is then no breach (``itl_p95<50?``).
  Without it, an SLO with no data at judgement time is breached.

Thresholds are stored in canonical units: ms for latencies, a ratio for ``fail_ratio``, per second for rates.
The breakpoint shape and the report's pass/fail gate both parse with this module, so an expression means
the same thing everywhere. How a value is measured is the caller's business: :func:`evaluate` asks a
``measure(metric, name)`` callable and treats ``None`` as "no data".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from core.errors import InputError
from core.settings import Settings, setting

LATENCY_STATS = ("p50", "p90", "p95", "p99", "avg", "max")
FAMILY_STATS = ("p50", "p90", "p95", "p99", "avg")
FAMILIES = ("ttft", "itl", "tpot", "e2e", "fanout", "ttfa", "bargein", "lateness")
RATIO_METRICS = ("fail_ratio", "lost", "completeness", "duplicates", "call_setup")
RATE_METRICS = ("rps", "tokens_per_s", "goodput")

_KINDS: dict[str, str] = {
    **dict.fromkeys(LATENCY_STATS, "latency"),
    **{f"{family}_{stat}": "latency" for family in FAMILIES for stat in FAMILY_STATS},
    **dict.fromkeys(RATIO_METRICS, "ratio"),
    **dict.fromkeys(RATE_METRICS, "rate"),
}
_KNOWN = (
    f"{', '.join((*LATENCY_STATS, *RATIO_METRICS, *RATE_METRICS))}; "
    f"{', '.join(f + '_' for f in FAMILIES)} + {'/'.join(FAMILY_STATS)}"
)
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPRESSION = re.compile(
    r"""\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)
        \s*(?:\[(?P<name>[^\]]*)\])?
        \s*(?P<op><=|>=|<|>)
        \s*(?P<value>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
        \s*(?P<unit>ms|s|%|/s)?\s*""",
    re.VERBOSE | re.IGNORECASE,
)
_SYNTAX_HINT = "expected METRIC[NAME] OP VALUE, e.g. p95<2500"


@dataclass(frozen=True)
class SLO:
    """One service-level objective: ``metric`` (optionally of request ``name``) ``op`` ``threshold``."""

    metric: str
    op: str
    threshold: float
    """In canonical units: ms for latencies, a ratio (0..1) for fail_ratio, per second for rates."""
    name: str | None = None
    text: str = ""
    """The expression as the user wrote it."""
    optional: bool = False
    """Written with a trailing ``?``: no data is no breach."""

    @property
    def kind(self) -> str:
        """``latency``, ``ratio`` or ``rate``: what units the threshold is in."""
        return _KINDS[self.metric]

    @property
    def label(self) -> str:
        """The metric with its request name, e.g. ``p95[chat:simple]``."""
        return f"{self.metric}[{self.name}]" if self.name is not None else self.metric

    def passes(self, value: float) -> bool:
        """Whether a measured value (canonical units) meets the objective; NaN never does."""
        return not math.isnan(value) and _OPERATORS[self.op](value, self.threshold)

    def compare(self, value: float) -> str:
        """How a value actually stands against the threshold, e.g. ``p95 3100 > 2500``."""
        if value < self.threshold:
            relation = "<"
        elif value > self.threshold:
            relation = ">"
        else:
            relation = "=="
        return f"{self.label} {self.format(value)} {relation} {self.format(self.threshold)}"

    def describe(self, value: float | None) -> str:
        """A one-line verdict such as ``PASS p95 2310 < 2500`` or ``NO DATA p95<2500``."""
        if value is None or math.isnan(value):
            return f"NO DATA {self}" if self.optional else f"FAIL NO DATA {self}"
        return f"{'PASS' if self.passes(value) else 'FAIL'} {self.compare(value)}"

    def format(self, value: float) -> str:
        """A value of this metric for people: ms without a unit, ratios in %, rates plain."""
        if self.kind == "ratio":
            return f"{_number(value * 100)}%"
        return _number(value)

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.format(self.threshold)}{'?' if self.optional else ''}"


@dataclass(frozen=True)
class SLOResult:
    """An SLO with its measured value; ``value`` is None when there was no data, and then ``passed`` is False
    (a breach) unless the SLO is optional (None)."""

    slo: SLO
    value: float | None
    passed: bool | None

    @property
    def breached(self) -> bool:
        """True when the value fails the objective, or there was no value and the SLO is not optional."""
        return self.passed is False

    def describe(self) -> str:
        """One line: ``PASS p95 2310 < 2500``, ``FAIL ...``, ``FAIL NO DATA p95<2500`` or ``NO DATA p95<2500?``."""
        return self.slo.describe(self.value)


def is_latency_metric(metric: str) -> bool:
    """Whether ``metric`` names a latency statistic in ms, such as ``p95`` or ``ttft_p50`` (lower case)."""
    return _KINDS.get(metric) == "latency"


def parse_slo(text: str) -> SLO:
    """Parse one expression such as ``p95[chat:simple]<2.5s``; raise InputError naming it otherwise."""
    stripped = text.strip()
    optional = stripped.endswith("?")
    match = _EXPRESSION.fullmatch(stripped[:-1] if optional else stripped)
    if match is None:
        raise InputError(f"--slo {text!r}: {_SYNTAX_HINT}")
    metric = match["metric"].lower()
    if metric not in _KINDS:
        raise InputError(f"--slo {text!r}: unknown metric {metric} (known: {_KNOWN})")
    name = match["name"]
    if name is not None:
        name = name.strip()
        if not name:
            raise InputError(f"--slo {text!r}: empty request name in [], e.g. p95[chat:simple]<2000")
    value = float(match["value"])
    if not math.isfinite(value):
        raise InputError(f"--slo {text!r}: {match['value']} is not a finite threshold")
    threshold = _canonical(text, metric, value, (match["unit"] or "").lower())
    return SLO(metric=metric, op=match["op"], threshold=threshold, name=name, text=stripped, optional=optional)


def parse_slos(texts: Iterable[str]) -> list[SLO]:
    """Parse many expressions; each text may hold several separated by commas or semicolons outside [...]."""
    return [parse_slo(part) for text in texts for part in _split(text) if part.strip()]


def evaluate(slos: Iterable[SLO], measure: Callable[[str, str | None], float | None]) -> list[SLOResult]:
    """Judge each SLO on ``measure(metric, name)``; a None (or NaN) value gives a "no data" result, a breach
    unless the SLO is optional."""
    results = []
    for slo in slos:
        value = measure(slo.metric, slo.name)
        if value is None or math.isnan(value):
            results.append(SLOResult(slo, None, None if slo.optional else False))
        else:
            results.append(SLOResult(slo, float(value), slo.passes(value)))
    return results


def _canonical(text: str, metric: str, value: float, unit: str) -> float:
    kind = _KINDS[metric]
    if kind == "latency":
        if unit in ("", "ms"):
            return value
        if unit == "s":
            return value * 1000.0
        raise InputError(f"--slo {text!r}: {metric} is a latency; give ms or s, e.g. {metric}<2500 or {metric}<2.5s")
    if kind == "ratio":
        if unit == "%":
            value /= 100.0
        elif unit:
            raise InputError(f"--slo {text!r}: {metric} is a ratio; give 0.01 or 1%")
        if value > 1.0:
            raise InputError(f"--slo {text!r}: {metric} is a ratio from 0 to 1; write {_number(value)}% for percent")
        return value
    if unit not in ("", "/s"):
        raise InputError(f"--slo {text!r}: {metric} is a rate per second; give a plain number, e.g. {metric}>50")
    return value


def _split(text: str) -> list[str]:
    """Split on commas and semicolons that are not inside a [request name]."""
    parts, current, depth = [], [], 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        if char in ",;" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class SloSettings(Settings):
    """The --slo thresholds of a run (registered with the run options; read by the gate and the shapes)."""

    slo: tuple[str, ...] = setting(
        (),
        "Service level objective, repeatable: p95<2500, ttft_p95<800, fail_ratio<1%%, lost<1%%, p95[chat:simple]<2s; "
        "no data is a breach unless it ends in ? (itl_p95<50?)",
        web_ui=False,
    )

    def check(self) -> None:
        _ = self.slos

    @cached_property
    def slos(self) -> list[SLO]:
        """The thresholds, parsed (InputError for a bad expression)."""
        return parse_slos(list(self.slo))

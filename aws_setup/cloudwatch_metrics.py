"""The target's own CloudWatch metrics for a test window: API Gateway and Lambda, as plain figures.

Used by the ``--cloudwatch`` plugin after a run; free of Locust imports. The API is named by id or name
(or read from an ``https://{id}.execute-api.{region}.amazonaws.com/{stage}`` host); the figures cover the
whole window in one CloudWatch period, so percentiles are true percentiles of the window.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_setup.get_api_gateway_url import api_urls

EXECUTE_API_HOST = re.compile(
    r"^(?:https|wss)://(?P<id>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:/(?P<stage>[^/?#]+))?"
)

API_METRICS = {
    "rest": {"requests": "Count", "4xx": "4XXError", "5xx": "5XXError"},
    "http": {"requests": "Count", "4xx": "4xx", "5xx": "5xx"},
    "websocket": {"requests": "MessageCount", "4xx": "ClientError", "5xx": "ExecutionError"},
}
"""Our names for each kind of API's metrics: REST APIs spell the error counts differently from HTTP APIs."""

LATENCY_METRICS = {"latency": "latency_ms", "integration": "integration_latency_ms"}

MAX_QUERIES = 500
"""GetMetricData takes at most this many queries per call."""


@dataclass(frozen=True)
class Query:
    """One figure to fetch: a metric statistic over the window, and where its value goes in the result."""

    path: tuple[str, ...]
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str


@dataclass
class Target:
    """What to fetch metrics for: an API Gateway stage and Lambda functions."""

    api: dict[str, str] | None = None
    """type, name, id and stage of the API (as get_api_gateway_url lists them)."""
    functions: list[str] = field(default_factory=list)


def api_from_host(host: str) -> tuple[str, str, str] | None:
    """(api id, region, stage or "") from an execute-api URL, else None."""
    match = EXECUTE_API_HOST.match(host or "")
    return (match["id"], match["region"], match["stage"] or "") if match else None


def find_api(aws: Any, key: str, stage: str = "") -> dict[str, str]:
    """The API whose id or name is ``key``, at ``stage`` (default: its only stage, else ``$default``)."""
    matches = [api for api in api_urls(aws) if key in (api["id"], api["name"])]
    if not matches:
        raise LookupError(f"no API Gateway API with id or name {key!r} in {aws.region_name}")
    if stage:
        staged = [api for api in matches if api["stage"] == stage]
        if not staged:
            stages = ", ".join(sorted({api["stage"] for api in matches}))
            raise LookupError(f"API {key!r} has no stage {stage!r} (it has: {stages})")
        return staged[0]
    default = [api for api in matches if api["stage"] == "$default"]
    if default or len(matches) == 1:
        return (default or matches)[0]
    raise LookupError(f"API {key!r} has several stages; name one with --cloudwatch-stage")


def queries(target: Target, percentiles: list[str]) -> list[Query]:
    """The figures to fetch for a target."""
    found: list[Query] = []
    api = target.api
    if api is not None:
        names = API_METRICS[api["type"]]
        dimensions = {"ApiName": api["name"]} if api["type"] == "rest" else {"ApiId": api["id"]}
        dimensions["Stage"] = api["stage"]
        base = ("api_gateway",)
        for key in ("requests", "4xx", "5xx"):
            found.append(Query((*base, key), "AWS/ApiGateway", names[key], dimensions, "Sum"))
        for key, metric in (("latency", "Latency"), ("integration", "IntegrationLatency")):
            if key == "latency" and api["type"] == "websocket":
                continue  # WebSocket APIs report only the integration's latency
            for stat in ("Average", "Maximum", *percentiles):
                found.append(
                    Query((*base, LATENCY_METRICS[key], stat.lower()), "AWS/ApiGateway", metric, dimensions, stat)
                )
    for function in target.functions:
        base, dimensions = ("lambda", function), {"FunctionName": function}
        for key, metric in (("invocations", "Invocations"), ("errors", "Errors"), ("throttles", "Throttles")):
            found.append(Query((*base, key), "AWS/Lambda", metric, dimensions, "Sum"))
        found.append(Query((*base, "max_concurrent"), "AWS/Lambda", "ConcurrentExecutions", dimensions, "Maximum"))
        for stat in ("Average", "Maximum", *percentiles):
            found.append(Query((*base, "duration_ms", stat.lower()), "AWS/Lambda", "Duration", dimensions, stat))
    return found


def window(started: float, stopped: float) -> tuple[datetime, datetime, int]:
    """The test window widened to whole minutes, and its length in seconds (one CloudWatch period)."""
    start = math.floor(started / 60) * 60
    end = max(math.ceil(stopped / 60) * 60, start + 60)
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), end - start


def fetch(cloudwatch: Any, wanted: list[Query], started: float, stopped: float) -> dict[str, Any]:
    """Fetch every query over the window; the figures nested by each query's path (None when CloudWatch has none)."""
    start, end, period = window(started, stopped)
    figures: dict[str, Any] = {}
    for first in range(0, len(wanted), MAX_QUERIES):
        batch = wanted[first : first + MAX_QUERIES]
        requests = [
            {
                "Id": f"q{first + number}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": query.namespace,
                        "MetricName": query.metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions.items()],
                    },
                    "Period": period,
                    "Stat": query.stat,
                },
                "ReturnData": True,
            }
            for number, query in enumerate(batch)
        ]
        values: dict[str, list[float]] = {}
        token = None
        while True:
            page = cloudwatch.get_metric_data(
                MetricDataQueries=requests, StartTime=start, EndTime=end, **({"NextToken": token} if token else {})
            )
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(result.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break
        for number, query in enumerate(batch):
            _put(figures, query.path, _combine(query.stat, values.get(f"q{first + number}", [])))
    figures["window"] = {"start": start.isoformat(), "end": end.isoformat(), "period_s": period}
    return figures


def _combine(stat: str, values: list[float]) -> float | None:
    """One figure from the window's values (normally exactly one, as the period spans the window)."""
    if not values:
        return None
    if stat == "Sum":
        return round(sum(values), 3)
    if stat == "Maximum":
        return round(max(values), 3)
    return round(sum(values) / len(values), 3)


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value

"""Locust arguments and readings shared by the SLO verdict tests."""

from __future__ import annotations

STREAM = ("--user-mix", "StreamingChatUser", "--spawn-rate", "50", "--think-time", "0.05")


PLENARY = ("--user-mix", "PlenaryUser", "--spawn-rate", "50")


def slo_args(*texts: str) -> list[str]:
    return [arg for text in texts for arg in ("--slo", text)]


def slo_values(run) -> dict[str, float | None]:
    return {entry["slo"]: entry["value"] for entry in run.summary["slo"]}

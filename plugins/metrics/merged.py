"""Figures merged over workers: the one way a plugin's figures travel from the workers to the master.

Every process keeps its figures; a worker sends them to the master with each stats report (every 3 s) and
starts afresh; the master merges what arrives, so percentiles are computed over all samples, never averaged.
A plugin's per-Environment object subclasses MergedOverWorkers and says how to take and merge a message.
"""

from __future__ import annotations

from typing import Any


class MergedOverWorkers:
    """A plugin's figures on one Environment, sent from workers to the master under ``message_key``."""

    message_key = ""

    def __init__(self, environment: Any) -> None:
        self.environment = environment

    def listen_for_reports(self) -> None:
        """Send with each worker's stats report; merge what the master receives."""
        events = self.environment.events
        events.report_to_master.add_listener(self._send)
        events.worker_report.add_listener(self._receive)

    def take_message(self) -> Any | None:
        """This process's figures as a message (msgpack-friendly), starting afresh; None when there are none."""
        raise NotImplementedError

    def merge_message(self, message: Any, client_id: str) -> None:
        """Add a worker's message (``client_id`` names the worker)."""
        raise NotImplementedError

    def _send(self, data: dict[str, Any], **_kwargs: Any) -> None:
        message = self.take_message()
        if message is not None:
            data[self.message_key] = message

    def _receive(self, data: dict[str, Any], client_id: str = "", **_kwargs: Any) -> None:
        if self.message_key in data:
            self.merge_message(data[self.message_key], client_id)

"""Requests to a running demobot, shared by its tests."""

from __future__ import annotations

import re

import requests

from demobot.launcher import DemobotProcess

TIMEOUT_S = 10


CONTENT_EVENT = re.compile(rb'"delta":\{"content":"[^"]')


def post(bot: DemobotProcess, path: str, body: object, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{bot.url}{path}", json=body, headers=headers, timeout=TIMEOUT_S)


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about load testing please"},
]

"""bench/hostile_http.py's locustfile: Chatswarm's users, plus two aimed at hostile servers of the bench's own.

The runner gives every user class the run's --host (demobot); these two take theirs from the environment.
"""

from __future__ import annotations

import os
from typing import Any

from locustfile import *  # noqa: F403 (every user and plugin, registered as usual)
from users.http.rest_chat import RestChatUser
from users.llm.streaming_chat import StreamingChatUser


class DrippedHeadersUser(RestChatUser):
    """A REST user whose target drips its response headers a byte at a time."""

    def __init__(self, environment: Any) -> None:
        self.host = os.environ["HOSTILE_DRIP_URL"]
        super().__init__(environment)


class EndlessSseUser(StreamingChatUser):
    """A streaming user whose target sends an SSE body with no newline, as fast as it can."""

    def __init__(self, environment: Any) -> None:
        self.host = os.environ["HOSTILE_SSE_URL"]
        super().__init__(environment)

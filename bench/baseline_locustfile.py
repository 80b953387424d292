"""The baseline for bench/stream_bench.py: the least a Locust user can do to read a streamed answer.

A FastHttpUser posts a streaming chat request and reads the body line by line until ``data: [DONE]``,
with no parsing and no metrics beyond Locust's own row (time to headers).
"""

import json

from locust import FastHttpUser, task

BODY = json.dumps(
    {
        "model": "demobot",
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)


class LineReadingUser(FastHttpUser):
    """Reads each streamed answer to the end with geventhttpclient's readline."""

    @task
    def ask(self) -> None:
        headers = {"Content-Type": "application/json"}
        with self.client.post("/v1/chat/completions", data=BODY, headers=headers, stream=True) as response:
            raw = response._response
            while True:
                line = raw.readline(b"\n")
                if not line or line.startswith(b"data: [DONE]"):
                    break

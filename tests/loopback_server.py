"""A misbehaving server of the tests' own on loopback: each connection is answered by ``answer`` on a thread."""

from __future__ import annotations

import socket
import threading


class LoopbackServer:
    """Accepts connections on a free loopback port until closed; subclasses say how to answer one."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def answer(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def answer_request(self, connection: socket.socket, request: bytes) -> None:
        """Answer a connection whose first read was ``request`` (servers that need the request override this)."""
        self.answer(connection)

    def close(self) -> None:
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                self.answer_request(connection, connection.recv(65536))
            except OSError:
                return  # the client gave up

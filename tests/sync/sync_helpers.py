"""Helpers of the sync tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastws.sync import Server, ServerConnection, serve


class Running:
    """A server running serve_forever() in a thread, shut down on exit."""

    def __init__(self, handler: Callable[[ServerConnection], Any], **options: Any) -> None:
        self.server: Server = serve(handler, "127.0.0.1", 0, **options)
        self.thread = threading.Thread(target=self.server.serve_forever)

    def __enter__(self) -> Running:  # noqa: PYI034 - a test helper, never subclassed
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive()

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"

    @property
    def secure_uri(self) -> str:
        return f"wss://localhost:{self.server.port}/"

"""Fixtures of the sync tests.

``no_leaks`` checks that a test leaves no thread and no file descriptor behind
(the modules that test fastws.sync alone use it for every test).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.fixture
def no_leaks() -> Iterator[None]:
    threads = set(threading.enumerate())
    fds = _fds()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        if not extra and _fds() <= fds:
            break
        time.sleep(0.02)
    assert extra == [], extra
    assert _fds() <= fds

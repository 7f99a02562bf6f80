"""Fixtures for the asyncio front-end tests.

Every test that takes the ``run`` fixture runs twice: on the default asyncio
loop and on uvloop (skipped where uvloop is unavailable). ``run(coro)`` runs
the coroutine in a fresh loop with asyncio debug mode on, bounded in time, and
fails if a task is still pending when it returns (a leak).

``redis_server`` starts a real ``redis-server`` (no persistence) on a free
127.0.0.1 port for one test and stops it afterwards; the test is skipped,
saying why, where the binary or redis-py is missing.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from redis_server import RedisServer

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not on Windows
    uvloop = None  # type: ignore[assignment]

LOOPS = ["asyncio", "uvloop"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every test of this folder to 30 s unless it says otherwise."""
    for item in items:
        if "tests/asyncio" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30))


Runner = Callable[..., Any]


@pytest.fixture(params=LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    """The event loop implementation under test."""
    name = str(request.param)
    if name == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    return name


@pytest.fixture
def run(loop_name: str) -> Runner:
    """Run a coroutine on the loop under test, in debug mode, within ``timeout`` s."""

    def runner(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        async def main() -> T:
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = 1.0  # the machine may be busy
            try:
                return await asyncio.wait_for(coro, timeout)
            finally:
                # Let transports finish closing, then look for leaked tasks.
                for _ in range(5):
                    await asyncio.sleep(0)
                current = asyncio.current_task()
                leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
                if leaked:
                    await asyncio.sleep(0.1)
                    leaked = [t for t in leaked if not t.done()]
                for task in leaked:
                    task.cancel()
                assert not leaked, f"tasks still pending: {leaked}"

        if loop_name == "uvloop":
            assert uvloop is not None
            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return runner


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server for this test (skipped where it or redis-py is missing)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    pytest.importorskip("redis.asyncio", reason="redis-py is not installed (pip install redis)")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()

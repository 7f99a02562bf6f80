"""The client reconnects: ``async for ws in connect(uri)``, backoff, process_exception."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from aio_helpers import free_port

from fastws import limits
from fastws.asyncio import ServerConnection, connect, serve
from fastws.asyncio.client import backoff, process_exception
from fastws.events import Headers, Request, Response
from fastws.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
    SecurityError,
)


def quick() -> Iterator[float]:
    """Reconnection delays for tests."""
    return itertools.repeat(0.01)


async def hello(ws: ServerConnection) -> None:
    await ws.send("hello")
    await ws.wait_closed()


def test_a_refusing_server_is_retried_until_it_accepts(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fastws.client")
    attempts: list[str] = []

    def refuse_three(ws: ServerConnection, request: Request) -> Response | None:
        attempts.append(request.path)
        return ws.respond(503, "busy\n") if len(attempts) <= 3 else None

    async def main() -> None:
        async with serve(hello, "127.0.0.1", 0, process_request=refuse_three) as server:
            started = asyncio.get_running_loop().time()
            async for ws in connect(f"ws://127.0.0.1:{server.port}/", reconnect_delays=quick):
                assert await ws.recv() == "hello"
                break
            assert asyncio.get_running_loop().time() - started < 2

    run(main())
    assert attempts == ["/"] * 4
    retries = [r.getMessage() for r in caplog.records if r.name == "fastws.client"]
    assert len(retries) == 3
    assert "InvalidStatus" in retries[0] and "503" in retries[0] and "0.01 s" in retries[0]


def test_the_environment_sets_the_backoff(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTWS_BACKOFF_INITIAL_DELAY", "0.02")
    monkeypatch.setenv("FASTWS_BACKOFF_MIN_DELAY", "0.01")
    monkeypatch.setenv("FASTWS_BACKOFF_MAX_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_FACTOR", "3")  # the websockets name works too
    attempts = 0

    def refuse_five(ws: ServerConnection, request: Request) -> Response | None:
        nonlocal attempts
        attempts += 1
        return ws.respond(502 if attempts % 2 else 504) if attempts <= 5 else None

    async def main() -> None:
        async with serve(hello, "127.0.0.1", 0, process_request=refuse_five) as server:
            started = asyncio.get_running_loop().time()
            async for ws in connect(f"ws://127.0.0.1:{server.port}/"):
                assert await ws.recv() == "hello"
                break
            # at most 0.02 + 0.01 + 0.03 + 0.05 + 0.05 of waiting
            assert asyncio.get_running_loop().time() - started < 2

    run(main())
    assert attempts == 6


def test_a_closed_port_is_retried_until_it_opens(run: Any) -> None:
    port = free_port()
    attempts = 0

    def counting() -> Iterator[float]:
        nonlocal attempts
        while True:
            attempts += 1
            yield 0.02

    async def main() -> None:
        async def client() -> str:
            async for ws in connect(f"ws://127.0.0.1:{port}/", reconnect_delays=counting):
                message = await ws.recv()
                assert isinstance(message, str)
                return message
            raise AssertionError("unreachable")

        task = asyncio.ensure_future(client())
        await asyncio.sleep(0.2)
        assert not task.done()
        async with serve(hello, "127.0.0.1", port):
            assert await asyncio.wait_for(task, 5) == "hello"

    run(main())
    assert attempts >= 3


def test_a_4xx_is_raised_at_once(run: Any) -> None:
    attempts = 0

    def forbid(ws: ServerConnection, request: Request) -> Response:
        nonlocal attempts
        attempts += 1
        return ws.respond(403, "no\n")

    async def main() -> None:
        async with serve(hello, "127.0.0.1", 0, process_request=forbid) as server:
            with pytest.raises(InvalidStatus) as info:
                async for _ in connect(f"ws://127.0.0.1:{server.port}/", reconnect_delays=quick):
                    raise AssertionError("connected")
            assert info.value.status == 403

    run(main())
    assert attempts == 1


def test_each_iteration_is_a_new_connection_closed_after_it(run: Any) -> None:
    served: list[ServerConnection] = []

    async def one_message(ws: ServerConnection) -> None:
        served.append(ws)
        await ws.send(str(len(served)))
        await ws.close()

    async def main() -> None:
        async with serve(one_message, "127.0.0.1", 0) as server:
            seen = []
            iterator = connect(f"ws://127.0.0.1:{server.port}/", reconnect_delays=quick)
            async for ws in iterator:
                seen.append(await ws.recv())
                await ws.wait_closed()
                if len(seen) == 3:
                    break
            assert seen == ["1", "2", "3"]
            # break: the last connection closes once the iterator is dropped
            async for ws in connect(f"ws://127.0.0.1:{server.port}/"):
                last = ws
                break
            gc.collect()
            await asyncio.wait_for(last.wait_closed(), 5)

    run(main())


def test_process_exception_decides(run: Any) -> None:
    port = free_port()
    seen: list[Exception] = []

    def fatal(exc: Exception) -> Exception | None:
        seen.append(exc)
        return exc

    def replace(exc: Exception) -> Exception | None:
        return RuntimeError("given up")

    def retry_twice(exc: Exception) -> Exception | None:
        seen.append(exc)
        return None if len(seen) < 3 else exc

    def raising(exc: Exception) -> Exception | None:
        raise KeyError("raised")

    async def main() -> None:
        url = f"ws://127.0.0.1:{port}/"
        with pytest.raises(OSError):
            async for _ in connect(url, process_exception=fatal):
                pass
        assert len(seen) == 1
        with pytest.raises(RuntimeError, match="given up") as info:
            async for _ in connect(url, process_exception=replace):
                pass
        assert isinstance(info.value.__cause__, OSError)
        seen.clear()
        with pytest.raises(OSError):
            async for _ in connect(url, process_exception=retry_twice, reconnect_delays=quick):
                pass
        assert len(seen) == 3
        with pytest.raises(KeyError):
            async for _ in connect(url, process_exception=raising):
                pass
        with pytest.raises(TypeError, match="process_exception must return"):
            async for _ in connect(url, process_exception=lambda exc: "no"):  # type: ignore[arg-type,return-value]
                pass
        with pytest.raises(ValueError, match="reconnect_delays"):
            async for _ in connect(url, reconnect_delays=lambda: [-1.0]):
                pass

    run(main())


def _status(status: int) -> InvalidStatus:
    return InvalidStatus("refused", Response(status, "", Headers(), b""))


def _eof(exc: InvalidHandshake) -> InvalidHandshake:
    exc.__cause__ = EOFError()
    return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError("refused"), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (_status(500), True),
        (_status(502), True),
        (_status(503), True),
        (_status(504), True),
        (_eof(InvalidMessage("closed")), True),
        (_eof(InvalidProxyMessage("closed")), True),
        (InvalidProxyStatus("bad gateway", Response(502, "", Headers(), b"")), True),
        (_status(400), False),
        (_status(403), False),
        (_status(404), False),
        (_status(501), False),
        (InvalidProxyStatus("auth", Response(407, "", Headers(), b"")), False),
        (InvalidMessage("not HTTP"), False),
        (InvalidURI("ws://", "no host"), False),
        (SecurityError("downgrade"), False),
        (ssl.SSLCertVerificationError("bad certificate"), False),
        (ssl.SSLError("wrong version"), False),
        (ValueError("bad"), False),
    ],
    ids=repr,
)
def test_the_default_process_exception(exc: Exception, transient: bool) -> None:
    assert process_exception(exc) is (None if transient else exc)


def test_backoff() -> None:
    delays = backoff(initial_delay=1.0, min_delay=2.0, max_delay=10.0, factor=2.0)
    first = next(delays)
    assert 0 <= first < 1.0
    assert list(itertools.islice(delays, 6)) == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    defaults = backoff()
    assert 0 <= next(defaults) < limits.BACKOFF_INITIAL_DELAY
    assert next(defaults) == limits.BACKOFF_MIN_DELAY


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FASTWS_BACKOFF_INITIAL_DELAY", "soon"),
        ("FASTWS_BACKOFF_MIN_DELAY", "-1"),
        ("WEBSOCKETS_BACKOFF_MAX_DELAY", "inf"),
        ("FASTWS_BACKOFF_FACTOR", "0.5"),
    ],
)
def test_a_bad_backoff_variable_is_an_error_at_the_call(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        connect("ws://127.0.0.1:9/")
    connect("ws://127.0.0.1:9/", reconnect_delays=quick)  # not read then

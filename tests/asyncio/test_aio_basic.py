"""Basic behaviour of fastws.asyncio: echo, the connection API, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_helpers import echo_handler

from fastws.asyncio import (
    ClientConnection,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ServerConnection,
    State,
    connect,
    serve,
)


def test_exports() -> None:
    import fastws.asyncio as aio

    for name in aio.__all__:
        assert hasattr(aio, name), name
    assert {"serve", "connect", "unix_serve", "unix_connect"} <= set(aio.__all__)
    assert issubclass(ConnectionClosedOK, ConnectionClosed)
    assert issubclass(ConnectionClosedError, ConnectionClosed)


def test_echo_text_binary(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            assert server.port
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                await ws.send(b"\x00\xff")
                assert await ws.recv() == b"\x00\xff"
                await ws.send(bytearray(b"ba"))
                assert await ws.recv() == b"ba"
                await ws.send(memoryview(b"mv"))
                assert await ws.recv() == b"mv"
                await ws.send("")
                assert await ws.recv() == ""
                big = "x" * 200_000
                await ws.send(big)
                assert await ws.recv() == big

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_fragmented_send(run: Any, compression: str | None) -> None:
    async def agen() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cd"):
            await asyncio.sleep(0)
            yield part

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=compression) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, compression=compression) as ws:
                await ws.send(["a", "b", "c"])
                assert await ws.recv() == "abc"
                await ws.send(iter([b"x", b"y"]))
                assert await ws.recv() == b"xy"
                await ws.send(agen())
                assert await ws.recv() == b"abcd"
                await ws.send([])  # nothing is sent
                with pytest.raises(TypeError):
                    await ws.send(["a", b"b"])  # fails before any frame is sent
                with pytest.raises(TypeError):
                    await ws.send(42)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await ws.send({"a": 1})  # type: ignore[arg-type]
                await ws.send("still open")
                assert await ws.recv() == "still open"
                with pytest.raises(TypeError):
                    await ws.send(["a", "b", b"c"])  # fails after a frame was sent
            # The started message could not be finished: 1011.
            assert ws.close_code == 1011

    run(main())


def test_async_iteration_and_close_codes(run: Any) -> None:
    received: list[Any] = []
    closed: list[ConnectionClosed] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(message)
        assert ws.close_code == 4000
        assert ws.close_reason == "bye"

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            assert ws.state is State.OPEN
            await ws.send("one")
            await ws.send(b"two")
            await ws.close(4000, "bye")
            assert ws.state is State.CLOSED
            assert ws.close_code == 4000  # the server echoed the code
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                closed.append(exc)
            with pytest.raises(ConnectionClosed):
                await ws.send("late")
            await ws.close()  # idempotent
            await ws.wait_closed()

    run(main())
    assert received == ["one", b"two"]
    # 4000 is not "normal": an error closure, with code and reason.
    assert isinstance(closed[0], ConnectionClosedError)
    assert closed[0].code == 4000
    assert closed[0].sent_code == 4000


def test_normal_close_is_ok(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert [m async for m in ws] == ["bye"]
                with pytest.raises(ConnectionClosedOK) as info:
                    await ws.recv()
                assert info.value.code == 1000
                assert ws.close_code == 1000

    run(main())


def test_handler_error_closes_1011(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: ServerConnection) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1011

    run(main())
    assert "connection handler failed" in caplog.text


def test_attributes(run: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        seen["path"] = ws.request.path if ws.request else None
        seen["ua"] = ws.request.headers.get("User-Agent") if ws.request else None
        seen["remote"] = ws.remote_address
        seen["local"] = ws.local_address
        seen["status"] = ws.response.status if ws.response else None
        seen["server"] = ws.server
        await ws.recv()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/a/b?c=d") as ws:
                assert isinstance(ws, ClientConnection)
                assert ws.response is not None and ws.response.status == 101
                assert ws.request is not None and ws.request.path == "/a/b?c=d"
                assert ws.subprotocol is None
                assert ws.extensions == ["permessage-deflate"]
                assert ws.remote_address[1] == server.port
                assert ws.close_code is None and ws.close_reason is None
                assert "OPEN" in repr(ws)
                assert len(server.connections) == 1
                await ws.send("go")
            assert seen["server"] is server

    run(main())
    assert seen["path"] == "/a/b?c=d"
    assert seen["ua"].startswith("fastws/")
    assert seen["remote"][0] == "127.0.0.1"
    assert seen["local"][0] == "127.0.0.1"
    assert seen["status"] == 101


def test_ping_latency_and_pong(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.latency == 0.0
                pong_waiter = await ws.ping()
                latency = await pong_waiter
                assert 0 <= latency < 5
                assert ws.latency == latency
                assert await (await ws.ping(b"abc")) >= 0
                assert await (await ws.ping("text")) >= 0
                assert await (await ws.ping(bytearray(b"ba"))) >= 0
                waiters = [await ws.ping() for _ in range(5)]
                results = await asyncio.gather(*waiters)
                assert len(results) == 5
                await ws.pong(b"unsolicited")
                await ws.pong("text")
                with pytest.raises(ValueError):
                    await ws.ping(b"x" * 126)
                with pytest.raises(TypeError):
                    await ws.ping(42)  # type: ignore[arg-type]
                # A payload still waiting for its pong cannot be reused.
                first = await ws.ping(b"same")
                with pytest.raises(ConcurrencyError):
                    await ws.ping(b"same")
                await first
                # The connection still works.
                await ws.send("ok")
                assert await ws.recv() == "ok"

    run(main())


def test_ping_fails_when_connection_closes(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.05)
        ws.abort()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                # The server does not answer pings once aborted.
                await ws.wait_closed()
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.ping()
                assert info.value.code == 1006

    run(main())


def test_recv_streaming(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send([b"a" * 1000, b"b" * 1000, b"c" * 1000])
        await ws.send("after")
        await ws.recv()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                chunks = [chunk async for chunk in ws.recv_streaming()]
                assert b"".join(chunks) == b"a" * 1000 + b"b" * 1000 + b"c" * 1000  # type: ignore[arg-type]
                assert len(chunks) >= 3
                assert await ws.recv() == "after"
                await ws.send("done")

    run(main())


def test_recv_streaming_abandoned_skips_rest(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(["x", "y", "z"])
        await ws.send("next")
        await ws.recv()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                stream = ws.recv_streaming()
                assert await stream.__anext__() == "x"
                await stream.aclose()
                assert await ws.recv() == "next"
                await ws.send("done")

    run(main())


def test_concurrent_recv_is_an_error(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                first = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0.01)
                with pytest.raises(ConcurrencyError):
                    await ws.recv()
                await ws.send("x")
                assert await first == "x"

    run(main())


def test_recv_cancellation_keeps_message(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                task = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await ws.send("still here")
                assert await ws.recv() == "still here"

    run(main())


def test_awaitable_serve_and_connect(run: Any) -> None:
    async def main() -> None:
        server = await serve(echo_handler, "127.0.0.1", 0)
        assert server.is_serving()
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        await ws.send("x")
        assert await ws.recv() == "x"
        await ws.close()
        server.close()
        await server.wait_closed()
        assert not server.is_serving()

    run(main())


def test_serve_forever_until_close(run: Any) -> None:
    async def main() -> None:
        server = await serve(echo_handler, "127.0.0.1", 0)
        task = asyncio.ensure_future(server.serve_forever())
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            server.close()
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1001
        await task
        await server.wait_closed()

    run(main())


def test_serve_forever_cancelled(run: Any) -> None:
    async def main() -> None:
        server = await serve(echo_handler, "127.0.0.1", 0)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()

    run(main())


def test_many_messages_both_ways(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, max_queue=4) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", max_queue=4) as ws:

                async def sender() -> None:
                    for i in range(500):
                        await ws.send(f"m{i}")

                task = asyncio.ensure_future(sender())
                for i in range(500):
                    assert await ws.recv() == f"m{i}"
                await task

    run(main())


def test_connection_closed_carries_code_and_reason() -> None:
    import pickle

    exc = ConnectionClosedError(1011, "boom", received_code=None, sent_code=1011)
    assert (exc.code, exc.reason, exc.received_code, exc.sent_code) == (1011, "boom", None, 1011)
    assert "1011" in str(exc) and "boom" in str(exc)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is ConnectionClosedError
    assert (copy.code, copy.reason, copy.sent_code) == (1011, "boom", 1011)
    ok = ConnectionClosedOK(1000)
    assert ok.reason == "" and "1000" in str(ok)


class _Recorder(asyncio.WriteTransport):
    """A transport that keeps asyncio's joining writelines() and records write()."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Any] = []

    def write(self, data: Any) -> None:
        self.writes.append(data)


class _OwnWritelines(_Recorder):
    """A transport with a writelines() of its own (uvloop's, or Python 3.12's)."""

    def writelines(self, list_of_data: Any) -> None:
        self.writes.append(list(list_of_data))


def test_large_chunks_are_not_joined_by_the_transport() -> None:
    from fastws.asyncio.connection import _LARGE_WRITE, _write

    big1, big2 = b"a" * _LARGE_WRITE, b"b" * (3 * _LARGE_WRITE)
    chunks = [b"h1", big1, b"h2", b"h3", big2, b"t"]
    joining = _Recorder()
    _write(joining, chunks)
    # Large chunks go on their own as views of the very same objects (no copy);
    # the small ones between them are joined; the order is kept.
    assert [bytes(w) for w in joining.writes] == [b"h1", big1, b"h2h3", big2, b"t"]
    assert all(isinstance(w, memoryview) for w in joining.writes)
    assert joining.writes[1].obj is big1 and joining.writes[3].obj is big2
    assert b"".join(joining.writes) == b"".join(chunks)

    own = _OwnWritelines()
    _write(own, chunks)
    assert own.writes == [chunks]  # one call, left to the transport


def test_large_echo_on_every_loop(run: Any) -> None:
    """Frames of every size around the large-write bound, many at once, come back whole."""
    from fastws.asyncio.connection import _LARGE_WRITE

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=None) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                sizes = [_LARGE_WRITE - 20, _LARGE_WRITE, 5, 1 << 20, 3 * _LARGE_WRITE + 7, 0]
                messages = [bytes([i]) * n for i, n in enumerate(sizes)]
                for message in messages:
                    await ws.send(message)
                assert [await ws.recv() for _ in messages] == messages

    run(main())


class _CountingTransport:
    """Stands in for a connection's transport and records the bytes of each write call."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.calls: list[int] = []

    def write(self, data: Any) -> None:
        self.calls.append(len(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        self.calls.append(sum(len(c) for c in chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def test_replies_to_queued_messages_are_written_together(run: Any) -> None:
    """send() coalesces while received messages wait, up to the bound, then writes."""
    from aio_helpers import close_writer, masked_frame, raw_open

    from fastws import decode_header
    from fastws.asyncio.connection import _COALESCE_LIMIT

    size = 16384
    count = 4 * _COALESCE_LIMIT // size  # replies for several writes at the bound
    payloads = [bytes([i % 251]) * size for i in range(count)]
    recorder: list[_CountingTransport] = []
    arrived = asyncio.Event()

    async def handler(ws: Any) -> None:
        counting = _CountingTransport(ws._transport)
        recorder.append(counting)
        await arrived.wait()
        while len(ws._queue) < count:  # every message is queued before the first reply
            await asyncio.sleep(0.01)
        ws._transport = counting
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        # A write limit that is never reached: replies are flushed at once while
        # writing is paused, which is not what this test is about.
        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_queue=count, write_limit=1 << 24
        ) as server:
            reader, writer = await raw_open(server.port)
            try:
                writer.write(b"".join(masked_frame(2, p) for p in payloads))
                arrived.set()
                got = []
                data = b""
                while len(got) < count:
                    data += await reader.read(1 << 20)
                    while (hdr := decode_header(data)) is not None and len(data) >= hdr[5] + hdr[3]:
                        got.append(data[hdr[5] : hdr[5] + hdr[3]])
                        data = data[hdr[5] + hdr[3] :]
                assert got == payloads
            finally:
                await close_writer(writer)

    run(main())
    frame = size + 4  # 16 KiB payloads have a 4-byte header
    calls = [n for n in recorder[0].calls if n >= frame]  # not the closing handshake
    assert sum(calls) == count * frame
    # Bounded: a write holds what crossed the bound, at most one frame beyond it.
    assert max(calls) <= _COALESCE_LIMIT + frame
    # Together: as few writes as the bound allows (the last one is the reply
    # to the last queued message, written at once), not one per message.
    assert len(calls) <= count * frame // _COALESCE_LIMIT + 1, calls

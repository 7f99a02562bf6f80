"""Receiving with the on_message() callback, and send_nowait()."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aio_helpers import callback_echo_handler, close_writer, echo_handler, masked_frame, raw_open

from fastws import InvalidState, encode_frame
from fastws.asyncio import (
    ClientConnection,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ServerConnection,
    connect,
    serve,
)


def burst(*messages: str | bytes) -> bytes:
    """Client frames for ``messages``, to be written in one call (one read on the server)."""
    return b"".join(
        masked_frame(1, m.encode()) if isinstance(m, str) else masked_frame(2, m) for m in messages
    )


def test_callback_echo(run: Any) -> None:
    async def main() -> None:
        async with serve(callback_echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for message in ["héllo", b"\x00\xff", "", b"", "x" * 200_000, b"y" * 70_000]:
                    await ws.send(message)
                    assert await ws.recv() == message
                # A fragmented message reaches the callback joined.
                await ws.send(["ab", "", "cd"])
                assert await ws.recv() == "abcd"
                await ws.send([b"a" * 100_000, b"b"])
                assert await ws.recv() == b"a" * 100_000 + b"b"
                # Many messages arriving in one read are all answered, in order.
                sent = [f"m{i}" if i % 2 else f"m{i}".encode() for i in range(200)]
                assert ws.transport is not None
                ws.transport.write(burst(*sent))
                assert [await ws.recv() for _ in sent] == sent
            assert ws.close_code == 1000

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_callback_echo_compression(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with serve(callback_echo_handler, "127.0.0.1", 0, compression=compression) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", compression=compression) as ws:
                await ws.send("z" * 10_000)
                assert await ws.recv() == "z" * 10_000
                await ws.send(b"q" * 3000 for _ in range(3))
                assert await ws.recv() == b"q" * 9000

    run(main())


def test_queued_messages_are_delivered_first_and_in_order(run: Any) -> None:
    got: list[Any] = []
    ready = asyncio.Event

    async def main() -> None:
        arrived = ready()

        async def handler(ws: ServerConnection) -> None:
            await arrived.wait()
            ws.on_message(got.append)
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for message in ("one", b"two", ["thr", "ee"]):
                    await ws.send(message)
                await (await ws.ping())  # the server has read everything sent before
                arrived.set()
                await asyncio.sleep(0.05)
                assert got == ["one", b"two", "three"]
                await ws.send("four")
                await (await ws.ping())
                assert got[-1] == "four"

    run(main())


def test_receiving_methods_refuse_while_callback_is_set(run: Any) -> None:
    errors: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        ws.on_message(lambda message: None)
        for attempt in (ws.recv, ws.__anext__):
            try:
                await attempt()
            except ConcurrencyError as exc:
                errors.append(str(exc))
        try:
            async for _ in ws.recv_streaming():
                pass
        except ConcurrencyError as exc:
            errors.append(str(exc))
        # Back to recv().
        ws.on_message(None)
        await ws.send(await ws.recv())

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("back")
                assert await ws.recv() == "back"

    run(main())
    assert len(errors) == 3
    assert all("on_message" in e for e in errors)


def test_callback_refused_while_recv_waits_and_bad_callbacks(run: Any) -> None:
    async def main() -> None:
        async with serve(callback_echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                pending = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0.01)
                with pytest.raises(ConcurrencyError, match="already receiving"):
                    ws.on_message(print)
                await ws.send("x")
                assert await pending == "x"

                async def coroutine_function(message: Any) -> None:
                    pass

                with pytest.raises(TypeError, match="plain function"):
                    ws.on_message(coroutine_function)
                with pytest.raises(TypeError):
                    ws.on_message("not callable")  # type: ignore[arg-type]
                # Nothing changed: recv() still works.
                await ws.send("y")
                assert await ws.recv() == "y"

    run(main())


def test_callback_error_closes_1011_and_stops_delivery(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Any] = []

    def callback(message: Any) -> None:
        got.append(message)
        if message == "bad":
            raise ValueError("boom")

    async def handler(ws: ServerConnection) -> None:
        ws.on_message(callback)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.transport is not None
                ws.transport.write(burst("ok", "bad", "after"))
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1011

    with caplog.at_level(logging.ERROR, logger="fastws"):
        run(main())
    assert got == ["ok", "bad"]
    failed = [r for r in caplog.records if r.getMessage() == "on_message callback failed"]
    assert failed and failed[0].name == "fastws.server" and failed[0].exc_info is not None


def test_callback_can_return_to_recv_within_a_batch(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        switched = asyncio.Event()

        def first_only(message: Any) -> None:
            ws.send_nowait(f"callback:{message}")
            ws.on_message(None)
            switched.set()

        ws.on_message(first_only)
        await switched.wait()
        async for message in ws:
            await ws.send(f"recv:{message}")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.transport is not None
                ws.transport.write(burst("a", "b", "c"))
                assert [await ws.recv() for _ in range(3)] == ["callback:a", "recv:b", "recv:c"]

    run(main())


def test_fragment_in_progress_moves_between_modes(run: Any) -> None:
    """A message half-received by the callback is finished by recv(), and the reverse."""
    conns: list[ServerConnection] = []
    got: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.transport is not None
                await (await ws.ping())
                (srv,) = conns
                srv.on_message(got.append)
                ws.transport.write(masked_frame(1, b"ab", fin=False))
                await (await ws.ping())
                srv.on_message(None)  # the first piece goes back to the queue
                ws.transport.write(masked_frame(0, b"cd"))
                assert await asyncio.wait_for(srv.recv(), 5) == "abcd"
                # recv_streaming() abandoned in the middle: the callback skips the rest.
                ws.transport.write(masked_frame(2, b"x", fin=False))
                stream = srv.recv_streaming()
                assert await stream.__anext__() == b"x"
                await stream.aclose()
                srv.on_message(got.append)
                ws.transport.write(masked_frame(0, b"y") + masked_frame(1, b"next"))
                await (await ws.ping())
                assert got == ["next"]

    run(main())


def test_send_nowait(run: Any) -> None:
    async def main() -> None:
        async with serve(callback_echo_handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            received: list[Any] = []
            ws.on_message(received.append)
            ws.send_nowait("a")
            ws.send_nowait(b"b")
            ws.send_nowait(bytearray(b"c"))
            ws.send_nowait(memoryview(b"d"))
            for bad in ({"a": 1}, 3, None):
                with pytest.raises(TypeError):
                    ws.send_nowait(bad)  # type: ignore[arg-type]
            for _ in range(100):
                if len(received) == 4:
                    break
                await asyncio.sleep(0.01)
            assert received == ["a", b"b", b"c", b"d"]

            # Not in the middle of a fragmented message sent by send().
            gate = asyncio.Event()

            async def pieces() -> Any:
                yield "p1"
                await gate.wait()
                yield "p2"

            sending = asyncio.ensure_future(ws.send(pieces()))
            await asyncio.sleep(0.01)
            with pytest.raises(ConcurrencyError, match="fragmented"):
                ws.send_nowait("interleaved")
            gate.set()
            await sending
            for _ in range(100):
                if len(received) == 5:
                    break
                await asyncio.sleep(0.01)
            assert received[-1] == "p1p2"

            await ws.close()
            with pytest.raises(ConnectionClosed):
                ws.send_nowait("late")
            with pytest.raises(TypeError):  # a bad type is a TypeError, even once closed
                ws.send_nowait(3)  # type: ignore[arg-type]

    run(main())


def test_sends_refused_by_the_state_machine(run: Any) -> None:
    """send() and send_nowait() report why a message cannot go out, in every state."""

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            # A fragmented message begun on the state machine itself: its own
            # error, and the connection stays usable.
            ws.protocol.send_text("part ", fin=False)
            with pytest.raises(InvalidState, match="fragmented"):
                ws.send_nowait("whole")
            with pytest.raises(InvalidState, match="fragmented"):
                await ws.send(b"whole")
            ws.protocol.send_text("end", fin=True)
            await ws.send("next")
            assert [await ws.recv(), await ws.recv()] == ["part end", "next"]

            # A lost connection: ConnectionClosed for messages, TypeError for bad types.
            assert ws.transport is not None
            ws.transport.abort()
            await ws.wait_closed()
            for message in ("x", b"x", bytearray(b"x"), memoryview(b"x")):
                with pytest.raises(ConnectionClosed):
                    ws.send_nowait(message)
                with pytest.raises(ConnectionClosed):
                    await ws.send(message)
            with pytest.raises(ConnectionClosed):
                await ws.send(["a", "b"])  # an iterable: refused when its frames would go out
            with pytest.raises(TypeError):
                ws.send_nowait(3)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await ws.send(3)  # type: ignore[arg-type]

    run(main())


@pytest.mark.parametrize("handler", [echo_handler, callback_echo_handler], ids=["recv", "callback"])
def test_data_received_is_a_read(run: Any, handler: Any) -> None:
    """A transport that calls data_received() instead of get_buffer() gets the same service."""

    async def main() -> None:
        conns: list[ServerConnection] = []

        async def keep(ws: ServerConnection) -> None:
            conns.append(ws)
            await handler(ws)

        async with serve(keep, "127.0.0.1", 0) as server:
            reader, writer = await raw_open(server.port)
            for _ in range(100):
                if conns:
                    break
                await asyncio.sleep(0.01)
            sent = [b"a", "b" * 300, b"c" * 70_000, "d"]
            data = burst(*sent)
            # Whole messages, then the same bytes split mid-frame (the buffered path).
            conns[0].data_received(data)
            conns[0].data_received(memoryview(data)[:5])
            conns[0].data_received(data[5:1000])
            conns[0].data_received(bytearray(data[1000:]))
            expected = b"".join(
                encode_frame(
                    True,
                    1 if isinstance(m, str) else 2,
                    m.encode() if isinstance(m, str) else m,
                    None,
                )
                for m in sent
            )
            got = await asyncio.wait_for(reader.readexactly(2 * len(expected)), 10)
            assert got == expected * 2
            await close_writer(writer)

    run(main())


def test_messages_before_a_close_frame_reach_the_callback(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        def callback(message: Any) -> None:
            got.append(message)
            ws.send_nowait(message)  # the close came in the same read: ConnectionClosed

        ws.on_message(callback)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            ws: ClientConnection = await connect(f"ws://127.0.0.1:{server.port}/")
            assert ws.transport is not None
            ws.transport.write(burst("x", "y") + masked_frame(8, b"\x03\xe8"))
            await ws.wait_closed()

    with caplog.at_level(logging.ERROR, logger="fastws"):
        run(main())
    assert got == ["x", "y"]
    assert "failed" not in caplog.text


def test_messages_before_a_violation_are_answered_first(run: Any) -> None:
    # The answers to the messages that came in the same read as a broken
    # frame go out before the close frame that fails the connection.
    async def main() -> None:
        async with serve(callback_echo_handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.transport is not None
                ws.transport.write(burst("a", b"b") + masked_frame(1, b"\xff") + burst("c"))
                assert [await ws.recv(), await ws.recv()] == ["a", b"b"]
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1007

    run(main())

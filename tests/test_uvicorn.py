"""fastws.uvicorn: Starlette's and FastAPI's WebSocket examples under uvicorn, with real clients.

Each test serves an application with ``uvicorn.Server`` in-process (``ws=
FastWSProtocol``, on a socket bound to a free port of 127.0.0.1) and talks to
it with fastws's client and with websockets' client, on the asyncio event
loop and on uvloop. Skipped where uvicorn is not installed (it needs Python
3.11 or later); uvicorn's own WebSocket test suite runs against the class in
tools/test_uvicorn.sh.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (Python 3.11+)")
pytest.importorskip("starlette", reason="starlette is not installed")

import websockets.asyncio.client as ws_client  # noqa: E402
import websockets.exceptions as ws_exceptions  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402

import fastws  # noqa: E402
from fastws.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from fastws.uvicorn import FastWSProtocol  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not on Windows
    uvloop = None  # type: ignore[assignment]

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
Runner = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ["fastws", "websockets"]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a coroutine on the event loop under test, within ``timeout`` seconds."""
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        async def main() -> T:
            return await asyncio.wait_for(coro, timeout)

        with asyncio.Runner(loop_factory=factory) as loop_runner:
            return loop_runner.run(main())

    return runner


@asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[tuple[str, Any]]:
    """Serve ``app`` with uvicorn and fastws; yield ``(url, server)``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options.setdefault("lifespan", "off")
    options.setdefault("log_level", "warning")
    server = uvicorn.Server(uvicorn.Config(app, ws=FastWSProtocol, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task
        sock.close()


class Client:
    """The little that the tests need, over fastws's client or websockets' client."""

    def __init__(self, kind: str, conn: Any) -> None:
        self.kind = kind
        self.conn = conn

    async def send(self, message: str | bytes) -> None:
        await self.conn.send(message)

    async def recv(self) -> str | bytes:
        return await self.conn.recv()  # type: ignore[no-any-return]

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.conn.close(code, reason)

    async def closed(self) -> tuple[int | None, str | None]:
        """Wait for the end of the connection; the close code and reason received."""
        if self.kind == "fastws":
            with pytest.raises(ConnectionClosed):
                while True:
                    await self.conn.recv()
            return self.conn.close_code, self.conn.close_reason
        with pytest.raises(ws_exceptions.ConnectionClosed):
            while True:
                await self.conn.recv()
        rcvd = self.conn.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)


@asynccontextmanager
async def connect(kind: str, url: str, **options: Any) -> AsyncIterator[Client]:
    if kind == "fastws":
        async with fastws.connect(url, **options) as conn:
            yield Client(kind, conn)
    else:
        async with ws_client.connect(url, **options) as conn:
            yield Client(kind, conn)


async def denied(kind: str, url: str) -> tuple[int, bytes]:
    """Open ``url``, expecting a refusal; the status and body of the answer."""
    if kind == "fastws":
        with pytest.raises(InvalidStatus) as fastws_info:
            async with fastws.connect(url):
                pass
        response = fastws_info.value.response
        assert response is not None
        return response.status, response.body
    with pytest.raises(ws_exceptions.InvalidStatus) as ws_info:
        async with ws_client.connect(url):
            pass
    return ws_info.value.response.status_code, ws_info.value.response.body or b""


# ---------------------------------------------------------------- Starlette


async def starlette_echo(websocket: WebSocket) -> None:
    """Starlette's documented endpoint shape: accept, receive, send, until the client leaves."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


async def starlette_json(websocket: WebSocket) -> None:
    await websocket.accept()
    data = await websocket.receive_json()
    await websocket.send_json({"got": data})
    text = await websocket.receive_text()
    await websocket.send_text(text.upper())
    data_bytes = await websocket.receive_bytes()
    await websocket.send_bytes(data_bytes[::-1])
    await websocket.close(code=4000, reason="done here")


@pytest.mark.parametrize("client", CLIENTS)
def test_starlette_echo_text_and_bytes(run: Runner, client: str) -> None:
    app = Starlette(routes=[WebSocketRoute("/echo", starlette_echo)])

    async def main() -> None:
        async with serve(app) as (url, _), connect(client, url + "/echo") as ws:
            for message in ["hello", b"\x00\x01", "é" * 1000, b"x" * 100_000, ""]:
                await ws.send(message)
                assert await ws.recv() == message

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_starlette_json_text_bytes_and_close_with_reason(run: Runner, client: str) -> None:
    app = Starlette(routes=[WebSocketRoute("/", starlette_json)])

    async def main() -> None:
        async with serve(app) as (url, _), connect(client, url) as ws:
            await ws.send(json.dumps({"a": 1}))
            assert json.loads(await ws.recv()) == {"got": {"a": 1}}
            await ws.send("shout")
            assert await ws.recv() == "SHOUT"
            await ws.send(b"abc")
            assert await ws.recv() == b"cba"
            assert await ws.closed() == (4000, "done here")

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_starlette_websocket_disconnect_carries_code_and_reason(run: Runner, client: str) -> None:
    seen: list[tuple[int, str | None]] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app) as (url, _):
            async with connect(client, url) as ws:
                await ws.send("one")
                await ws.close(1001, "going away")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)

    run(main())
    assert seen == [(1001, "going away")]


@pytest.mark.parametrize("client", CLIENTS)
def test_starlette_denial_response(run: Runner, client: str) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("no entry", status_code=401))

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app) as (url, _):
            assert await denied(client, url) == (401, b"no entry")

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_starlette_close_before_accept_is_403(run: Runner, client: str) -> None:
    from starlette.exceptions import WebSocketException

    async def endpoint(websocket: WebSocket) -> None:
        raise WebSocketException(code=1008, reason="policy")

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app) as (url, _):
            status, _ = await denied(client, url)
            assert status == 403

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_error_before_accept_is_500(run: Runner, client: str) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise ValueError("boom")

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app, log_level="critical") as (url, _):
            assert await denied(client, url) == (500, b"Internal Server Error")

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_subprotocol_and_headers(run: Runner, client: str) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        assert websocket.scope["subprotocols"] == ["a", "b"]
        await websocket.accept(subprotocol="b", headers=[(b"x-extra", b"yes")])
        await websocket.send_text(websocket.headers["x-token"] + websocket.url.path)
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/p/{name}", endpoint)])

    async def main() -> None:
        header = {"fastws": "additional_headers", "websockets": "additional_headers"}[client]
        async with (
            serve(app) as (url, _),
            connect(
                client, url + "/p/x%20y?q=1", subprotocols=["a", "b"], **{header: {"X-Token": "t"}}
            ) as ws,
        ):
            assert await ws.recv() == "t/p/x y"
            assert ws.conn.subprotocol == "b"
            headers = ws.conn.response.headers
            assert headers["x-extra"] == "yes"
            assert headers["server"] == "uvicorn"

    run(main())


# ---------------------------------------------------------------- FastAPI


try:
    from fastapi import Depends, FastAPI, HTTPException, WebSocketException, status
except ImportError:  # pragma: no cover - FastAPI is optional
    FastAPI = None


async def get_token(token: str | None = None) -> str:
    """A dependency: the ``token`` query parameter, or a policy violation."""
    if token is None:
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION)
    return token


def fastapi_app() -> Any:
    """FastAPI's documented WebSocket example, with a query parameter and a dependency."""
    if FastAPI is None:
        pytest.skip("FastAPI is not installed")
    app = FastAPI()

    @app.websocket("/items/{item_id}/ws")
    async def websocket_endpoint(
        websocket: WebSocket, item_id: str, token: str = Depends(get_token)
    ) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_text()
                await websocket.send_text(f"Session token is: {token}")
                await websocket.send_text(f"Message text was: {data}, for item ID: {item_id}")
        except WebSocketDisconnect:
            pass

    @app.websocket("/missing")
    async def missing(websocket: WebSocket) -> None:
        raise HTTPException(status_code=404, detail="nope")

    return app


@pytest.mark.parametrize("client", CLIENTS)
def test_fastapi_example(run: Runner, client: str) -> None:
    app = fastapi_app()

    async def main() -> None:
        async with serve(app) as (url, _):
            async with connect(client, url + "/items/foo/ws?token=some-token") as ws:
                await ws.send("hi")
                assert await ws.recv() == "Session token is: some-token"
                assert await ws.recv() == "Message text was: hi, for item ID: foo"
            status, _ = await denied(client, url + "/items/foo/ws")
            assert status == 403  # WebSocketException before accept: a close, so 403
            status, body = await denied(client, url + "/missing")
            assert (status, json.loads(body)) == (404, {"detail": "nope"})

    run(main())


# ---------------------------------------------------------------- the protocol


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.usefixtures("backend_module")  # compressed by zlib, then by ISA-L
def test_compression_and_large_messages(run: Runner, client: str) -> None:
    app = Starlette(routes=[WebSocketRoute("/", starlette_echo)])

    async def main() -> None:
        async with serve(app) as (url, _), connect(client, url, max_size=None) as ws:
            extensions = (
                ws.conn.extensions
                if client == "fastws"
                else [e.name for e in ws.conn.protocol.extensions]
            )
            assert extensions == ["permessage-deflate"]
            big = os.urandom(1 << 20).hex()  # 2 MiB of text
            await ws.send(big)
            assert await ws.recv() == big

    run(main())


@pytest.mark.parametrize("client", CLIENTS)
def test_message_too_big_is_1009(run: Runner, client: str) -> None:
    seen: list[int] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_bytes(await websocket.receive_bytes())
        except WebSocketDisconnect as exc:
            seen.append(exc.code)

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with (
            serve(app, ws_max_size=1000) as (url, _),
            connect(client, url, compression=None) as ws,
        ):
            await ws.send(b"x" * 1000)
            assert await ws.recv() == b"x" * 1000
            await ws.send(b"x" * 1001)
            code, _ = await ws.closed()
            assert code == 1009
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)

    run(main())
    assert seen == [1009]


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame, masked with a zero key."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return head + b"\0\0\0\0" + payload


async def raw_open(url: str, path: str = "/") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (masked(0x1, b"\xff"), 1007),  # invalid UTF-8
        (masked(0x3, b""), 1002),  # reserved opcode
        (b"\x81\x01a", 1002),  # unmasked
        (masked(0x0, b"a"), 1002),  # continuation with nothing to continue
    ],
    ids=["utf8", "opcode", "unmasked", "continuation"],
)
def test_protocol_errors_close_with_their_code(run: Runner, frames: bytes, code: int) -> None:
    seen: list[int] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect as exc:
            seen.append(exc.code)

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app) as (url, _):
            reader, writer = await raw_open(url)
            # A message before the bad frame, in the same write: it is answered first.
            writer.write(masked(0x1, b"ok") + frames)
            data = await asyncio.wait_for(reader.read(), 5)  # until the server closes
            writer.close()
            assert data[:4] == b"\x81\x02ok"
            assert data[4] == 0x88
            assert struct.unpack("!H", data[6:8])[0] == code
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)

    run(main())
    assert seen == [code]


def test_invalid_upgrade_requests_get_an_http_error(run: Runner) -> None:
    app = Starlette(routes=[WebSocketRoute("/", starlette_echo)])

    async def exchange(port: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data

    async def main() -> None:
        async with serve(app) as (url, _):
            port = int(url.rsplit(":", 1)[1])
            base = (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: {version}\r\n{key}{extra}\r\n"
            )
            key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            bad_version = base.format(version="8", key=key, extra="").encode()
            assert (await exchange(port, bad_version)).startswith(b"HTTP/1.1 426 ")
            no_key = base.format(version="13", key="", extra="").encode()
            assert (await exchange(port, no_key)).startswith(b"HTTP/1.1 400 ")
            body = base.format(version="13", key=key, extra="Content-Length: 3\r\n").encode()
            assert (await exchange(port, body + b"abc")).startswith(b"HTTP/1.1 400 ")

    run(main())


def test_receive_backpressure_pauses_reading(run: Runner) -> None:
    """Messages the application does not take stop the reading; taking them resumes it."""

    async def main() -> None:
        release = asyncio.Event()
        received: list[bytes] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await release.wait()
            while len(received) < 200:
                message = await receive()
                received.append(message["bytes"])
            await send({"type": "websocket.send", "text": "done"})
            await receive()

        async with serve(app, ws_max_queue=4) as (url, server):
            async with fastws.connect(url, compression=None) as ws:
                for i in range(200):
                    await ws.send(i.to_bytes(2, "big") * 512)
                await asyncio.sleep(0.3)
                [protocol] = server.server_state.connections
                assert isinstance(protocol, FastWSProtocol)
                assert not protocol.transport.is_reading()
                release.set()
                assert await ws.recv() == "done"
                assert protocol.transport.is_reading()
        assert received == [i.to_bytes(2, "big") * 512 for i in range(200)]

    run(main())


def test_wrong_asgi_messages_raise_runtime_error(run: Runner) -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for message in (
            {"type": "websocket.send", "text": "too early"},
            {"type": "websocket.http.response.start", "status": 700, "headers": []},
        ):
            try:
                await send(message)
            except RuntimeError as exc:
                errors.append(str(exc))
        await send({"type": "websocket.accept"})
        for message in (
            {"type": "websocket.accept"},
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": b"bytes as text"},
            {"type": "websocket.close", "code": 999},
        ):
            try:
                await send(message)
            except RuntimeError as exc:
                errors.append(str(exc))
        await send({"type": "websocket.close", "code": 4001})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main() -> None:
        async with serve(app) as (url, _), connect("fastws", url) as ws:
            assert await ws.closed() == (4001, "")

    run(main())
    assert len(errors) == 7, errors
    assert "websocket.accept" in errors[0]
    assert "700" in errors[1]


def test_shutdown_closes_with_1012(run: Runner) -> None:
    seen: list[int] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append(exc.code)

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def main() -> None:
        async with serve(app) as (url, server), connect("fastws", url) as ws:
            await server.shutdown()
            assert await ws.closed() == (1012, "")

    run(main())
    assert seen == [1012]


def test_imports_without_uvicorn_and_says_what_is_missing() -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "import fastws.uvicorn as m\n"
        "try:\n"
        "    m.FastWSProtocol(config=None, server_state=None, app_state={})\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    ).stdout
    assert "uvicorn" in out and "pip install" in out


class RecordingTransport(asyncio.Transport):
    """A transport that records what is written, one entry per write call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.writes.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def test_answers_to_a_batch_go_out_in_one_write(run: Runner) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    async def main() -> None:
        config = uvicorn.Config(app, ws=FastWSProtocol, lifespan="off")
        config.load()
        state = uvicorn.server.ServerState()
        protocol = FastWSProtocol(config=config, server_state=state, app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        for _ in range(5):
            await asyncio.sleep(0)
        assert transport.writes[0].startswith(b"HTTP/1.1 101 ")
        del transport.writes[:]
        # Ten messages in one read: ten answers in one write.
        protocol.data_received(b"".join(masked(0x1, b"m%d" % i) for i in range(10)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert transport.writes == [b"".join(b"\x81\x02m%d" % i for i in range(10))]
        assert transport.reading
        # One message: answered at once.
        protocol.data_received(masked(0x1, b"xx"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert transport.writes[1:] == [b"\x81\x02xx"]
        protocol.connection_lost(None)
        await asyncio.gather(*state.tasks)

    run(main())


def test_an_application_that_never_yields_still_writes_as_it_sends(run: Runner) -> None:
    """Answers wait for one write only up to a bound: flow control sees the rest."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # one message; another one stays in the queue
        for i in range(1000):
            await send({"type": "websocket.send", "bytes": i.to_bytes(2, "big")})
        await receive()

    async def main() -> None:
        config = uvicorn.Config(app, ws=FastWSProtocol, lifespan="off")
        config.load()
        state = uvicorn.server.ServerState()
        protocol = FastWSProtocol(config=config, server_state=state, app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        for _ in range(5):
            await asyncio.sleep(0)
        del transport.writes[:]
        protocol.data_received(masked(0x2, b"a") + masked(0x2, b"b"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert b"".join(transport.writes) == b"".join(
            b"\x82\x02" + i.to_bytes(2, "big") for i in range(1000)
        )
        assert len(transport.writes) >= 1000 // 65
        assert max(len(w) for w in transport.writes) <= 65 * 4
        protocol.connection_lost(None)
        await asyncio.gather(*state.tasks)

    run(main())


def test_the_transport_reads_into_the_shared_buffer(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the upgrade, both event loops read straight into the receive buffer."""
    calls: list[int] = []
    original = FastWSProtocol.buffer_updated

    def counting(self: FastWSProtocol, nbytes: int) -> None:
        calls.append(nbytes)
        original(self, nbytes)

    monkeypatch.setattr(FastWSProtocol, "buffer_updated", counting)
    app = Starlette(routes=[WebSocketRoute("/", starlette_echo)])

    async def main() -> None:
        async with serve(app) as (url, _), connect("fastws", url, compression=None) as ws:
            for size in (10, 100_000, 1_000_000):
                await ws.send(b"x" * size)
                assert await ws.recv() == b"x" * size

    run(main())
    assert sum(calls) >= 1_100_010

"""The threaded (sync) server and client, over 127.0.0.1.

Every test runs with both kernel implementations (the suite runs twice).
The ``no_leaks`` fixture checks that no thread and no file descriptor is
left behind by a test.
"""

from __future__ import annotations

import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sync_helpers import Running

from fastws.events import Request, Response
from fastws.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from fastws.handshake import accept_key
from fastws.sync import ServerConnection, connect, serve, unix_connect, unix_serve

pytestmark = pytest.mark.usefixtures("no_leaks")


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def test_echo_text_binary_large_and_fragmented() -> None:
    with Running(echo, max_size=8 << 20) as srv, connect(srv.uri, max_size=8 << 20) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
        big = os.urandom(3 << 20)
        ws.send(big)
        assert ws.recv() == big
        ws.send(["frag", "men", "ted"])
        assert ws.recv() == "fragmented"
        ws.send([b"a", bytearray(b"b"), memoryview(b"c")])
        assert ws.recv() == b"abc"
        ws.send(b"bytes as text", text=True)
        assert ws.recv() == "bytes as text"
        ws.send("text as bytes", text=False)
        assert ws.recv() == b"text as bytes"
        ws.send("decode me")
        assert ws.recv(decode=False) == b"decode me"
        ws.send(b"\xc3\xa9")
        assert ws.recv(decode=True) == "\u00e9"
    assert ws.close_code == 1000


def test_iteration_ends_on_a_normal_close_and_recv_raises_after() -> None:
    def hello(ws: ServerConnection) -> None:
        ws.send("one")
        ws.send("two")

    with Running(hello) as srv, connect(srv.uri) as ws:
        assert list(ws) == ["one", "two"]
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv()
        assert info.value.code == 1000


def test_recv_timeout_keeps_a_partial_message() -> None:
    release = threading.Event()

    def pieces() -> Iterator[str]:
        yield "first half, "
        release.wait(5)  # the first frame is out; the rest waits
        yield "second half"

    def slow(ws: ServerConnection) -> None:
        ws.send(pieces())
        ws.recv()

    with Running(slow) as srv, connect(srv.uri) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        release.set()
        assert ws.recv(timeout=5) == "first half, second half"


def test_recv_streaming() -> None:
    def chunks(ws: ServerConnection) -> None:
        ws.send(["a", "b", "c"])
        ws.send("whole")
        ws.recv()

    with Running(chunks) as srv, connect(srv.uri) as ws:
        assert list(ws.recv_streaming()) == ["a", "b", "c"]
        assert list(ws.recv_streaming(decode=False)) == [b"whole"]


def test_two_threads_in_recv_is_a_concurrency_error() -> None:
    with Running(echo) as srv, connect(srv.uri) as ws:

        def receive() -> None:
            with pytest.raises(ConnectionClosed):
                ws.recv()

        first = threading.Thread(target=receive)
        first.start()
        time.sleep(0.1)
        with pytest.raises(ConcurrencyError):
            ws.recv()
        ws.close()
        first.join(5)
        assert not first.is_alive()


def test_close_from_another_thread_wakes_recv() -> None:
    errors: list[BaseException] = []
    with Running(echo) as srv, connect(srv.uri) as ws:

        def receive() -> None:
            try:
                ws.recv()
            except BaseException as exc:
                errors.append(exc)

        waiter = threading.Thread(target=receive)
        waiter.start()
        time.sleep(0.1)
        ws.close()
        waiter.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosedOK)


def test_sends_from_many_threads_are_serialized() -> None:
    received: list[str | bytes] = []
    with Running(echo) as srv, connect(srv.uri) as ws:

        def sender(n: int) -> None:
            for i in range(200):
                ws.send(f"{n}:{i}:" + "x" * (i * 50))

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for _ in range(800):
            received.append(ws.recv(timeout=10))
        for t in threads:
            t.join()
    assert len(received) == 800
    for n in range(4):
        mine = [m for m in received if isinstance(m, str) and m.startswith(f"{n}:")]
        assert [int(m.split(":")[1]) for m in mine] == list(range(200))


def test_a_full_queue_stops_reading() -> None:
    sent = threading.Event()

    def flood(ws: ServerConnection) -> None:
        for i in range(2000):
            ws.send(f"{i}" + "y" * 1000)
        sent.set()
        ws.recv()

    with Running(flood) as srv, connect(srv.uri, max_queue=8) as ws:
        time.sleep(0.5)
        assert ws._items.qsize() <= 8
        assert [ws.recv(timeout=10)[:2] for _ in range(3)] == ["0y", "1y", "2y"]
        for _ in range(1997):
            ws.recv(timeout=10)
        assert sent.wait(5)


def test_server_shutdown_closes_with_1001_and_joins() -> None:
    opened = threading.Event()

    def wait(ws: ServerConnection) -> None:
        opened.set()
        ws.recv()

    srv = Running(wait)
    with srv:
        ws = connect(srv.uri)
        assert opened.wait(5)
    with pytest.raises(ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1001
    ws.close()


def test_a_peer_that_vanishes_is_a_1006() -> None:
    seen: list[BaseException] = []
    done = threading.Event()

    def handler(ws: ServerConnection) -> None:
        try:
            ws.recv()
        except ConnectionClosed as exc:
            seen.append(exc)
        done.set()

    with Running(handler) as srv:
        ws = connect(srv.uri)
        ws.socket.shutdown(socket.SHUT_RDWR)  # no closing handshake
        assert done.wait(5)
        ws.close()
    assert isinstance(seen[0], ConnectionClosedError) and seen[0].code == 1006


def _accept_upgrade(conn: socket.socket) -> None:
    """Answer a client's opening handshake by hand on a raw socket."""
    request = conn.recv(65536).decode()
    key = next(
        line.split(":", 1)[1].strip()
        for line in request.split("\r\n")
        if line.lower().startswith("sec-websocket-key")
    )
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


def test_keepalive_measures_latency_and_fails_a_silent_peer() -> None:
    with Running(echo) as srv, connect(srv.uri, ping_interval=0.05, ping_timeout=2) as ws:
        deadline = time.monotonic() + 5
        while ws.latency == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 0 < ws.latency < 2

    # A "server" that completes the handshake and then never answers.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def silent() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        _accept_upgrade(conn)

    thread = threading.Thread(target=silent)
    thread.start()
    try:
        ws = connect(
            f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.2, close_timeout=0.5
        )
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=10)
        assert info.value.code == 1011
        ws.close()
    finally:
        thread.join()
        for s in (*held, listener):
            s.close()


def test_process_request_process_response_and_max_connections() -> None:
    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/private":
            return ws.respond(401, "who are you?\n", {"WWW-Authenticate": "Bearer"})
        return None

    def process_response(ws: ServerConnection, request: Request, response: Response) -> None:
        assert response.status == 101

    gate = threading.Event()

    def hold(ws: ServerConnection) -> None:
        gate.wait(5)

    with Running(
        hold,
        process_request=process_request,
        process_response=process_response,
        max_connections=1,
        extra_headers={"X-Server": "sync"},
    ) as srv:
        with pytest.raises(InvalidStatus) as info:
            connect(srv.uri + "private")
        assert info.value.response is not None and info.value.response.status == 401
        deadline = time.monotonic() + 5
        while srv.server._threads and time.monotonic() < deadline:
            time.sleep(0.01)  # the refused connection's thread ends
        ws = connect(srv.uri)
        assert ws.response is not None and ws.response.headers["X-Server"] == "sync"
        with pytest.raises(InvalidStatus) as info:
            connect(srv.uri)  # the one connection is taken
        assert info.value.response is not None and info.value.response.status == 503
        gate.set()
        ws.close()


def test_tls_and_unix_sockets(tmp_path: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with Running(echo, ssl=server_ctx) as srv:
        with connect(f"wss://localhost:{srv.server.port}/", ssl=client_ctx) as ws:
            ws.send("secret")
            assert ws.recv() == "secret"
            big = os.urandom(900_000)
            ws.send(big)
            assert ws.recv() == big

    path = str(tmp_path / "ws.sock")
    server = unix_serve(echo, path)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with unix_connect(path, "ws://localhost/chat") as ws:
            ws.send("over unix")
            assert ws.recv() == "over unix"
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_queue": 0}, ValueError),
        ({"max_queue": "16"}, TypeError),
        ({"ping_interval": "20"}, TypeError),
        ({"close_timeout": -1}, ValueError),
        ({"subprotocols": "chat"}, TypeError),
        ({"additional_headers": {"X": "a\r\nb"}}, ValueError),
        ({"compression": "gzip"}, ValueError),
    ],
)
def test_client_options_are_checked_at_the_call(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(options)).split("_")[0]):
        connect("ws://127.0.0.1:9/", **options)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_connections": 0}, ValueError),
        ({"max_queue": 0}, ValueError),
        ({"origins": "https://x"}, TypeError),
        ({"process_request": 1}, TypeError),
        ({"extra_headers": {"Bad Name": "v"}}, ValueError),
    ],
)
def test_server_options_are_checked_at_the_call(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(options)).split("_")[0]):
        serve(echo, "127.0.0.1", 0, **options)


def test_connect_refused_and_timeouts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(f"ws://127.0.0.1:{port}/")
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", open_timeout=0.3)
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_many_connections_leave_nothing_behind() -> None:
    with Running(echo) as srv:
        for i in range(50):
            with connect(srv.uri) as ws:
                ws.send(str(i))
                assert ws.recv() == str(i)


def _check_echo_before_close(
    items: queue.SimpleQueue[Any], send: Callable[[socket.socket], None]
) -> None:
    """A peer sends "hello" and a reserved opcode (by ``send``); the client,
    whose receive queue is ``items``, echoes the message: the echo must go
    out before the close frame (1002)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def peer() -> None:
        conn, _ = listener.accept()
        with conn:
            _accept_upgrade(conn)
            send(conn)
            conn.settimeout(5)
            data = b""
            while len(data) < 2 + 4 + 5 + 2 + 4 + 2:  # the masked echo, then a close
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=peer)
    thread.start()
    try:
        with connect(f"ws://127.0.0.1:{port}/", close_timeout=1) as ws:
            ws._items = items
            message = ws.recv(timeout=5)
            ws.send(message)
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=5)
            assert info.value.code == 1002
    finally:
        thread.join(10)
        listener.close()
    data = received[0]
    assert data[:2] == b"\x81\x85", data  # the echo came first
    mask = data[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(data[6:11])) == b"hello"
    assert data[11] == 0x88, data  # then the close frame


class _SlowHandOver(queue.SimpleQueue):  # type: ignore[type-arg]
    """A receive queue that widens the window between recv() taking a
    message and the reader's check for unanswered messages."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item)
        time.sleep(0.05)  # recv() takes the message meanwhile

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        time.sleep(0.1)  # recv() has not returned yet when the reader looks
        return item


def test_a_protocol_error_after_a_message_waits_for_its_answer() -> None:
    # Autobahn 4.2.5: a text message, then a reserved opcode in the same
    # read. recv() was already waiting and takes the message before the
    # reader sees the error: the echo must still go out before the close.
    def send(conn: socket.socket) -> None:
        time.sleep(0.2)  # the client waits in recv()
        conn.sendall(b"\x81\x05hello" + b"\x8f\x02xy")

    _check_echo_before_close(_SlowHandOver(), send)


class _RaceAfterTake(queue.SimpleQueue):  # type: ignore[type-arg]
    """A receive queue that lets the peer's next bytes be parsed while
    recv() is between finding nothing to take and returning what it took.

    The test's peer sends a message once recv() waits, and a protocol error
    once recv() holds the message but has not returned it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()  # recv() waits for a message
        self.queued = threading.Event()  # the reader queued it
        self.taken = threading.Event()  # recv() holds it
        self.error_sent = threading.Event()  # the peer sent the error

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item)
        self.queued.set()

    def empty(self) -> bool:
        found = super().empty()
        if found and not self.queued.is_set():
            self.waiting.set()
            self.queued.wait(5)  # the message comes meanwhile
        return found

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self.queued.is_set():
            self.waiting.set()
        item = super().get(block, timeout)
        if item is not None and not self.taken.is_set():
            self.taken.set()
            self.error_sent.wait(5)
            time.sleep(0.1)  # the reader parses the error meanwhile
        return item


def test_a_protocol_error_while_recv_returns_a_message_waits_for_its_answer() -> None:
    # The message and the error in two reads: the error is parsed after
    # recv() took the message but before recv() returned it. The echo must
    # still go out before the close frame.
    hook = _RaceAfterTake()

    def send(conn: socket.socket) -> None:
        assert hook.waiting.wait(5)
        conn.sendall(b"\x81\x05hello")
        assert hook.taken.wait(5)
        conn.sendall(b"\x8f\x02xy")
        hook.error_sent.set()

    try:
        _check_echo_before_close(hook, send)
    finally:
        hook.error_sent.set()


def test_close_with_a_full_queue_reads_on_to_the_peers_close_frame() -> None:
    # The handler closes while its queue is full and more messages wait
    # unread: close() drops them to reach the client's close frame, instead
    # of leaving the reader waiting for room until close_timeout.
    sent = threading.Event()
    took: list[float] = []
    codes: list[int | None] = []

    def handler(ws: ServerConnection) -> None:
        sent.wait(10)
        start = time.monotonic()
        ws.close()
        took.append(time.monotonic() - start)
        codes.append(ws.close_code)

    with Running(handler, max_queue=4, close_timeout=5) as srv, connect(srv.uri) as ws:
        for _ in range(2000):
            ws.send(b"x" * 1024)
        sent.set()
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=10)
    assert took and took[0] < 2, took
    assert codes == [1000]  # the client answered: no timeout

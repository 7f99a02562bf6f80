"""Tests for :mod:`fastws.patch`.

For every target library, the library's own client and server (or, for the
sans-IO wsproto, its own frame encoder and decoder) exchange messages with
the patch applied, and counting spies prove that the fastws kernels were
really called. Sockets listen on 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import os
import socket
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

import fastws
import fastws.patch as fp

pytestmark = [
    pytest.mark.timeout(60),
    # With the pure-Python kernels (no C extension), patching warns that it
    # may not pay; the behaviour under test is the same.
    pytest.mark.filterwarnings("ignore:patched .* pure-Python kernels:UserWarning"),
]

T = TypeVar("T")

# The targets whose installed version is in the tested range. The test extra
# installs every target; a release in range may not exist for every Python
# (autobahn 25.6 needs Python 3.11), and patch() refuses the others.
PATCHABLE = sorted(
    name
    for name, target in fp.TARGETS.items()
    if fp._version_problem(target, fp._installed_version(target)) is None
)
needs_autobahn = pytest.mark.skipif(
    "autobahn" not in PATCHABLE, reason="no autobahn in the tested range on this Python"
)

TEXT_SMALL = "héllo wörld ✓"
TEXT_LARGE = ("ascii and ünïcödé ✓ 🎉 " * 4000)[:70_000]  # > 64 KiB once encoded
BIN_SMALL = b"\x00\x01\x02\xfe\xff"
BIN_LARGE = bytes(range(256)) * 400 + b"xyz"  # 102,403 bytes: not a multiple of 4
MESSAGES: list[str | bytes] = [TEXT_SMALL, BIN_SMALL, TEXT_LARGE, BIN_LARGE, "", b""]
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 10.0


# --------------------------------------------------------------------------
# Helpers: spies, raw frames, a raw server and a raw client
# --------------------------------------------------------------------------


class Spies:
    """Counting wrappers around the kernels :mod:`fastws.patch` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {
            "apply_mask": 0,
            "mask_inplace": 0,
            "validate_utf8": 0,
            "utf8_feed": 0,
        }
        apply_mask = fp._apply_mask
        mask_inplace = fp._mask_inplace
        validate_utf8 = fp._validate_utf8
        validator_class = fp._Utf8Validator
        calls = self.calls

        def spy_apply_mask(data: Any, mask: Any) -> bytes:
            calls["apply_mask"] += 1
            return apply_mask(data, mask)

        def spy_mask_inplace(buffer: Any, mask: Any, phase: int = 0) -> None:
            calls["mask_inplace"] += 1
            mask_inplace(buffer, mask, phase)

        def spy_validate_utf8(data: Any) -> bool:
            calls["validate_utf8"] += 1
            return validate_utf8(data)

        class SpyValidator:
            def __init__(self) -> None:
                self._inner = validator_class()

            def feed(self, data: Any, final: bool = False) -> None:
                calls["utf8_feed"] += 1
                self._inner.feed(data, final)

            def reset(self) -> None:
                self._inner.reset()

            @property
            def complete(self) -> bool:
                return bool(self._inner.complete)

            @property
            def position(self) -> int:
                return int(self._inner.position)

        self.apply_mask = spy_apply_mask
        monkeypatch.setattr(fp, "_apply_mask", spy_apply_mask)
        monkeypatch.setattr(fp, "_mask_inplace", spy_mask_inplace)
        monkeypatch.setattr(fp, "_validate_utf8", spy_validate_utf8)
        monkeypatch.setattr(fp, "_Utf8Validator", SpyValidator)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Spies:
    return Spies(monkeypatch)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    fp.unpatch_all()
    yield
    fp.unpatch_all()


def mod(name: str) -> Any:
    """Import a module as ``Any``: the tests reach into library internals."""
    return importlib.import_module(name)


def ref_mask(data: bytes, key: bytes) -> bytes:
    """Reference masking, independent of fastws."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(opcode: int, payload: bytes, *, fin: bool = True, key: bytes | None = None) -> bytes:
    """Build one frame by hand (masked when ``key`` is given)."""
    first = (0x80 if fin else 0) | opcode
    maskbit = 0x80 if key is not None else 0
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, maskbit | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, maskbit | 126, n)
    else:
        header = struct.pack("!BBQ", first, maskbit | 127, n)
    if key is None:
        return header + payload
    return header + key + ref_mask(payload, key)


def parse_frames(data: bytes) -> list[tuple[int, bool, bytes]]:
    """Parse complete frames (masked or not) into ``(opcode, fin, payload)``."""
    frames = []
    i = 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n = b1 & 0x7F
        j = i + 2
        if n == 126:
            if j + 2 > len(data):
                break
            n = struct.unpack_from("!H", data, j)[0]
            j += 2
        elif n == 127:
            if j + 8 > len(data):
                break
            n = struct.unpack_from("!Q", data, j)[0]
            j += 8
        key = None
        if b1 & 0x80:
            key = data[j : j + 4]
            j += 4
        if j + n > len(data):
            break
        payload = data[j : j + n]
        if key is not None:
            payload = ref_mask(payload, key)
        frames.append((b0 & 0x0F, bool(b0 & 0x80), payload))
        i = j + n
    return frames


def close_code(frames: list[tuple[int, bool, bytes]]) -> int | None:
    for opcode, _fin, payload in frames:
        if opcode == 8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None


def _read_until(sock: socket.socket, marker: bytes, limit: int = 65536) -> tuple[bytes, bytes]:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > limit:
            raise ConnectionError("handshake not received")
        data += chunk
    head, _, rest = data.partition(marker)
    return head, rest


def _read_all(sock: socket.socket, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            # Stop once a complete close frame was received.
            if close_code(parse_frames(b"".join(chunks))) is not None:
                break
    except (TimeoutError, ConnectionError):
        pass
    return b"".join(chunks)


class RawServer:
    """Accepts one WebSocket connection, sends ``script``, records what comes back."""

    def __init__(self, script: bytes) -> None:
        self.script = script
        self.received = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(TIMEOUT)
            head, rest = _read_until(conn, b"\r\n\r\n")
            key = ""
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            conn.sendall(self.script)
            self.received = rest + _read_all(conn)

    def join(self) -> list[tuple[int, bool, bytes]]:
        self.thread.join(TIMEOUT)
        self.listener.close()
        return parse_frames(self.received)


def raw_client(port: int, frames: bytes, path: str = "/") -> list[tuple[int, bool, bytes]]:
    """Open a WebSocket connection by hand, send ``frames``, return the frames received."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head, rest = _read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(frames)
        return parse_frames(rest + _read_all(sock))


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT * 2)

    return asyncio.run(bounded())


MASK_KEY = b"\x37\xfa\x21\x3d"
INVALID_TEXT = frame(0x1, b"caf\xc3\xa9 \xff\xfe")
INVALID_TEXT_MASKED = frame(0x1, b"caf\xc3\xa9 \xff\xfe", key=MASK_KEY)


# --------------------------------------------------------------------------
# Generic behaviour
# --------------------------------------------------------------------------


def test_unknown_target() -> None:
    with pytest.raises(ValueError, match="cannot patch"):
        fp.patch("no-such-library")


def test_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = fp._import

    def fake_import(name: str) -> Any:
        if name.split(".")[0] == "tornado":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name)

    monkeypatch.setattr(fp, "_import", fake_import)
    with pytest.raises(ImportError, match="tornado"):
        fp.patch("tornado")
    with pytest.raises(fp.TargetNotInstalledError):
        fp.patch("tornado")
    assert fp.patched() == []


def test_patch_all_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_is_importable", lambda module: module != "tornado")
    with pytest.warns(fp.PatchWarning, match="tornado"):
        result = fp.patch_all(missing="warn", names=["tornado", "wsproto"])
    assert list(result) == ["wsproto"]
    assert fp.patch_all(names=["tornado"]) == {}  # skipped quietly by default


@pytest.mark.parametrize("version", ["0.1", "999.0", None, "not-a-version"])
def test_untested_version_refused(monkeypatch: pytest.MonkeyPatch, version: str | None) -> None:
    tornado_websocket = mod("tornado.websocket")
    original = tornado_websocket._websocket_mask
    monkeypatch.setattr(fp, "_installed_version", lambda target: version)
    with pytest.warns(fp.PatchWarning, match="did not patch tornado"):
        assert fp.patch("tornado") == {}
    assert tornado_websocket._websocket_mask is original
    assert fp.patched() == []
    with pytest.warns(fp.PatchWarning, match="did not patch tornado"):
        assert fp.patch_all(names=["tornado"]) == {}
    assert tornado_websocket._websocket_mask is original
    # The escape hatch.
    replaced = fp.patch("tornado", force=True)
    assert replaced == {"tornado.websocket._websocket_mask": original}
    assert tornado_websocket._websocket_mask is fp.tornado_websocket_mask


def test_changed_internals_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(mod("tornado.websocket"), "_websocket_mask")
    with pytest.raises(fp.PatchError, match="_websocket_mask does not exist"):
        fp.patch("tornado")
    assert fp.patched() == []


def test_idempotent_and_exact_restore() -> None:
    abnf, utils = mod("websocket._abnf"), mod("websocket._utils")
    originals = {
        "websocket._abnf._mask": abnf._mask,
        "websocket._abnf.ABNF.mask": abnf.ABNF.__dict__["mask"],
        "websocket._abnf.validate_utf8": abnf.validate_utf8,
        "websocket._utils._validate_utf8": utils._validate_utf8,
    }
    first = fp.patch("websocket-client")
    assert first == originals
    assert all(first[name] is originals[name] for name in originals)
    second = fp.patch("websocket_client")  # alias, already patched: no change
    assert second == first
    assert fp.patched() == ["websocket-client"]
    assert abnf.ABNF.mask is fp.websocket_client_mask
    restored = fp.unpatch("websocket-client")
    assert restored == originals
    assert abnf._mask is originals["websocket._abnf._mask"]
    assert abnf.ABNF.__dict__["mask"] is originals["websocket._abnf.ABNF.mask"]
    assert abnf.validate_utf8 is originals["websocket._abnf.validate_utf8"]
    assert utils._validate_utf8 is originals["websocket._utils._validate_utf8"]
    assert fp.unpatch("websocket-client") == {}
    assert fp.patched() == []


def test_every_target_is_tested_from_python_3_11() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("older releases of some targets on this Python")
    assert PATCHABLE == sorted(fp.TARGETS)


def test_patch_all_and_unpatch_all() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fp.patch_all()
    refused = sorted(set(fp.TARGETS) - set(PATCHABLE))
    # A target outside its tested range is refused, with a warning that says so.
    notes = [str(w.message) for w in caught if issubclass(w.category, fp.PatchWarning)]
    named = [n.split()[4].rstrip(":") for n in notes if n.startswith("fastws did not patch")]
    assert sorted(named) == refused
    assert set(result) == set(PATCHABLE)
    assert fp.patched() == PATCHABLE
    restored = fp.unpatch_all()
    assert restored == result
    for replaced in restored.values():
        assert replaced
    assert fp.patched() == []


def test_status_and_main(capsys: pytest.CaptureFixture[str]) -> None:
    rows = fp.status()
    assert {row["name"] for row in rows} == set(fp.TARGETS)
    for row in rows:
        expected = "would patch" if row["name"] in PATCHABLE else "untested version"
        assert row["state"] == expected, row
    fp.patch("wsproto")
    assert {row["name"]: row["state"] for row in fp.status()}["wsproto"] == "patched"
    assert fp._main([]) == 0
    out = capsys.readouterr().out
    assert fastws.implementation in out
    assert "wsproto" in out


@pytest.mark.parametrize(
    ("argv", "status", "out"),
    [
        (["--version"], 0, f"fastws {fastws.__version__}"),
        (["--help"], 0, "usage:"),
        (["--bogus"], 2, "unknown option: --bogus"),
        (["no/such/script.py"], 2, "no such script"),
        (["-m"], 2, "-m needs a module name"),
    ],
)
def test_main_answers_options_without_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, out: str
) -> None:
    assert fp._main(argv) == status
    captured = capsys.readouterr()
    assert out in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err


# --------------------------------------------------------------------------
# wsproto (sans-IO: its own encoder and decoder)
# --------------------------------------------------------------------------


def _wsproto_pair() -> tuple[Any, Any]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


def _wsproto_receive(conn: Any, data: bytes, chunk: int) -> list[Any]:
    events = []
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk])
        events.extend(conn.events())
    return events


def _reassemble(events: list[Any]) -> list[str | bytes]:
    from wsproto.events import Message

    messages: list[str | bytes] = []
    parts: list[Any] = []
    for event in events:
        assert isinstance(event, Message)
        parts.append(event.data)
        if event.message_finished:
            messages.append(type(parts[0])().join(parts))
            parts = []
    assert not parts
    return messages


@pytest.mark.parametrize("chunk", [1 << 30, 1_001])
def test_wsproto_round_trip(spies: Spies, chunk: int) -> None:
    from wsproto.events import BytesMessage, CloseConnection, TextMessage

    assert fp.patch("wsproto")
    client, server = _wsproto_pair()
    for direction in ("client->server", "server->client"):
        sender, receiver = (client, server) if direction == "client->server" else (server, client)
        wire = b"".join(
            sender.send(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m))
            for m in MESSAGES
        )
        # Fragmented messages, with a code point split between fragments.
        wire += sender.send(TextMessage(data="caf\u00e9"[:3], message_finished=False))
        wire += sender.send(TextMessage(data="\u00e9 ✓", message_finished=True))
        wire += sender.send(BytesMessage(data=BIN_LARGE[:70_001], message_finished=False))
        wire += sender.send(BytesMessage(data=BIN_LARGE[70_001:], message_finished=True))
        received = _reassemble(_wsproto_receive(receiver, wire, chunk))
        assert received == [*MESSAGES, "café ✓", BIN_LARGE]
    assert spies.calls["mask_inplace"] > 0
    # Closing handshake.
    server.receive_data(client.send(CloseConnection(code=1000, reason="bye ✓")))
    (event,) = list(server.events())
    assert isinstance(event, CloseConnection)
    assert (event.code, event.reason) == (1000, "bye ✓")


def test_wsproto_invalid_utf8_closes_1007(spies: Spies) -> None:
    from wsproto.events import CloseConnection, TextMessage

    assert fp.patch("wsproto")
    _client, server = _wsproto_pair()
    server.receive_data(INVALID_TEXT_MASKED)
    events = list(server.events())
    assert isinstance(events[-1], CloseConnection)
    assert events[-1].code == 1007
    assert not any(isinstance(e, TextMessage) for e in events)
    assert spies.calls["mask_inplace"] > 0


def test_wsproto_masker_matches_original() -> None:
    frame_protocol = mod("wsproto.frame_protocol")

    original = frame_protocol.XorMaskerSimple
    replaced = fp.patch("wsproto")
    assert replaced == {"wsproto.frame_protocol.XorMaskerSimple": original}
    assert frame_protocol.XorMaskerSimple is fp.WsprotoXorMasker
    data = os.urandom(5_000)
    for key in (b"\x00\x00\x00\x00", b"\x01\x02\x03\x04", os.urandom(4)):
        for sizes in ([5_000], [1, 2, 3, 4, 5, 4_985], [7] * 700 + [100]):
            ours, theirs = fp.WsprotoXorMasker(key), original(bytearray(key))
            pos = 0
            for size in sizes:
                piece = data[pos : pos + size]
                out = ours.process(piece)
                assert isinstance(out, bytearray)
                assert out == theirs.process(bytearray(piece))
                pos += size
    assert fp.WsprotoXorMasker(b"abcd").process(b"") == bytearray()
    fp.unpatch("wsproto")
    assert frame_protocol.XorMaskerSimple is original


# --------------------------------------------------------------------------
# websocket-client (its client against a websockets server and a raw server)
# --------------------------------------------------------------------------


def _websockets_sync_server() -> tuple[Any, int, threading.Thread]:
    from websockets.sync.server import serve

    def echo(ws: Any) -> None:
        for message in ws:
            if message == "please fragment":
                ws.send(["frag", "ménted ", "✓"])
            else:
                ws.send(message)

    server = serve(echo, "127.0.0.1", 0, max_size=1 << 22)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, port, thread


def test_websocket_client_round_trip(spies: Spies) -> None:
    websocket = mod("websocket")
    assert fp.patch("websocket-client")
    server, port, thread = _websockets_sync_server()
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=TIMEOUT)
        try:
            for message in MESSAGES:
                if isinstance(message, str):
                    ws.send(message)
                else:
                    ws.send_binary(message)
                assert ws.recv() == message
            # Sending fragments.
            abnf = websocket.ABNF
            ws.send_frame(abnf.create_frame("caf\u00e9 ", abnf.OPCODE_TEXT, 0))
            ws.send_frame(abnf.create_frame(TEXT_LARGE.encode(), abnf.OPCODE_CONT, 0))
            ws.send_frame(abnf.create_frame("✓".encode(), abnf.OPCODE_CONT, 1))
            assert ws.recv() == "café " + TEXT_LARGE + "✓"
            # Receiving fragments.
            ws.send("please fragment")
            assert ws.recv() == "fragménted ✓"
        finally:
            ws.close()
        assert ws.status == 1000 or not ws.connected
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
    assert spies.calls["apply_mask"] > 0
    assert spies.calls["validate_utf8"] > 0


@pytest.mark.parametrize(
    "script",
    [
        INVALID_TEXT,
        frame(0x1, b"caf\xc3", fin=False) + frame(0x0, b"\xa9 \xed\xa0\x80"),  # surrogate
        frame(0x1, b"truncated \xe2\x9c"),  # ends inside a code point
    ],
    ids=["invalid", "fragmented-surrogate", "truncated"],
)
def test_websocket_client_invalid_utf8(spies: Spies, script: bytes) -> None:
    websocket = mod("websocket")
    assert fp.patch("websocket-client")
    server = RawServer(script)
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/", timeout=TIMEOUT)
    try:
        with pytest.raises(websocket.WebSocketException):
            ws.recv()
    finally:
        ws.shutdown()
        server.join()
    assert spies.calls["validate_utf8"] > 0


def test_websocket_client_validate_utf8_functions() -> None:
    abnf, utils = mod("websocket._abnf"), mod("websocket._utils")
    fp.patch("websocket-client")
    assert utils.validate_utf8("héllo ✓")
    assert utils.validate_utf8(b"h\xc3\xa9llo")
    assert not utils.validate_utf8(b"\xff")
    assert not abnf.validate_utf8("lone \ud800 surrogate")
    assert abnf.ABNF.mask("abcd", "hello") == ref_mask(b"hello", b"abcd")
    assert abnf.ABNF.mask(b"abcd", None) == b""


# --------------------------------------------------------------------------
# tornado (its server and its client)
# --------------------------------------------------------------------------


def test_tornado_round_trip(spies: Spies) -> None:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket
    import websockets.asyncio.client

    assert fp.patch("tornado")
    closed: list[int | None] = []

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

        def on_close(self) -> None:
            closed.append(self.close_code)

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Echo)]))
        server.add_sockets(sockets)
        try:
            conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/")
            for message in MESSAGES:
                await conn.write_message(message, binary=isinstance(message, bytes))
                assert await conn.read_message() == message
            conn.close(1000)
            # Fragments sent by another client to the tornado server.
            async with websockets.asyncio.client.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send(["caf", "é ", TEXT_LARGE])
                assert await ws.recv() == "café " + TEXT_LARGE
            for _ in range(100):
                if len(closed) == 2:
                    break
                await asyncio.sleep(0.02)
        finally:
            server.stop()
            await server.close_all_connections()

    run(main())
    assert closed == [1000, 1000]
    assert spies.calls["apply_mask"] > 0


def test_tornado_invalid_utf8(spies: Spies) -> None:
    import tornado.websocket

    assert fp.patch("tornado")
    server = RawServer(INVALID_TEXT)

    async def main() -> None:
        conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/")
        assert await conn.read_message() is None  # tornado aborts the connection
        conn.close()

    run(main())
    server.join()


def test_tornado_server_rejects_invalid_utf8(spies: Spies) -> None:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket

    assert fp.patch("tornado")
    received: list[str | bytes] = []

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            received.append(message)
            self.write_message(message, binary=isinstance(message, bytes))

    async def main() -> list[tuple[int, bool, bytes]]:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Echo)]))
        server.add_sockets(sockets)
        try:
            valid = frame(0x1, "ok ✓".encode(), key=MASK_KEY)
            return await asyncio.to_thread(raw_client, port, valid + INVALID_TEXT_MASKED)
        finally:
            server.stop()
            await server.close_all_connections()

    frames = run(main())
    # The valid message was unmasked (by fastws) and echoed; the invalid one
    # made tornado drop the connection without delivering it.
    assert received == ["ok ✓"]
    assert frames[0] == (0x1, True, "ok ✓".encode())
    assert all(opcode != 0x1 for opcode, _fin, _payload in frames[1:])
    assert spies.calls["apply_mask"] >= 2


# --------------------------------------------------------------------------
# autobahn (its asyncio server and client)
# --------------------------------------------------------------------------


def _autobahn_classes() -> tuple[type, type]:
    from autobahn.asyncio.websocket import WebSocketClientProtocol, WebSocketServerProtocol

    class Echo(WebSocketServerProtocol):
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)  # type: ignore[no-untyped-call]

    class Client(WebSocketClientProtocol):
        factory: Any

        def onOpen(self) -> None:
            self.factory.opened.set_result(self)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.factory.queue.put_nowait((payload, isBinary))

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            if not self.factory.closed.done():
                self.factory.closed.set_result(code)

    return Echo, Client


async def _autobahn_connect(port: int, client_class: type) -> tuple[Any, Any]:
    factory_class = mod("autobahn.asyncio.websocket").WebSocketClientFactory
    loop = asyncio.get_running_loop()
    factory = factory_class(f"ws://127.0.0.1:{port}")
    factory.protocol = client_class
    factory.opened = loop.create_future()
    factory.closed = loop.create_future()
    factory.queue = asyncio.Queue()
    await loop.create_connection(factory, "127.0.0.1", port)
    proto = await factory.opened
    return proto, factory


@needs_autobahn
def test_autobahn_round_trip(spies: Spies) -> None:
    server_factory_class = mod("autobahn.asyncio.websocket").WebSocketServerFactory
    assert fp.patch("autobahn")
    echo, client = _autobahn_classes()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        server_factory = server_factory_class("ws://127.0.0.1")
        server_factory.protocol = echo
        server = await loop.create_server(server_factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            proto, factory = await _autobahn_connect(port, client)
            for message in MESSAGES:
                is_binary = isinstance(message, bytes)
                payload = message if isinstance(message, bytes) else message.encode()
                proto.sendMessage(payload, is_binary)
                assert await factory.queue.get() == (payload, is_binary)
            # Fragmented (a code point is split between fragments).
            payload = ("café ✓ " + TEXT_LARGE).encode()
            proto.sendMessage(payload, False, fragmentSize=1_001)
            assert await factory.queue.get() == (payload, False)
            proto.sendClose(1000)
            return int(await factory.closed)
        finally:
            server.close()

    assert run(main()) == 1000
    assert spies.calls["apply_mask"] > 0
    assert spies.calls["utf8_feed"] > 0


@needs_autobahn
def test_autobahn_invalid_utf8_closes_1007(spies: Spies) -> None:
    server_factory_class = mod("autobahn.asyncio.websocket").WebSocketServerFactory
    assert fp.patch("autobahn")
    echo, client = _autobahn_classes()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        server_factory = server_factory_class("ws://127.0.0.1")
        server_factory.protocol = echo
        server_factory.setProtocolOptions(failByDrop=False)  # send the close frame
        server = await loop.create_server(server_factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            proto, factory = await _autobahn_connect(port, client)
            proto.sendMessage(b"caf\xc3\xa9 \xff\xfe", False)
            return int(await factory.closed)
        finally:
            server.close()

    assert run(main()) == 1007
    assert spies.calls["utf8_feed"] > 0


@needs_autobahn
def test_autobahn_adapters_match_original() -> None:
    protocol = mod("autobahn.websocket.protocol")

    original_validator: Any = protocol.Utf8Validator
    original_masker: Any = protocol.create_xor_masker
    replaced: dict[str, Any] = fp.patch("autobahn")
    assert replaced["autobahn.websocket.protocol.Utf8Validator"] is original_validator
    assert replaced["autobahn.websocket.protocol.create_xor_masker"] is original_masker
    valid = "ascii é ✓ 🎉".encode()
    for split in range(len(valid) + 1):
        ours: Any = fp.AutobahnUtf8Validator()
        theirs: Any = original_validator()
        for piece in (valid[:split], valid[split:]):
            assert ours.validate(piece) == theirs.validate(piece)
    for bad in (b"\xff", b"ok\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        ours = fp.AutobahnUtf8Validator()
        theirs = original_validator()
        assert ours.validate(bad)[:2] == theirs.validate(bad)[:2] == (False, False)
        ours.reset()
        assert ours.validate(b"fine") == (True, True, 4, 4)
    data = os.urandom(3_001)
    for length in (None, 10, 3_001):
        theirs = original_masker(MASK_KEY, length)
        ours = fp.autobahn_create_xor_masker(MASK_KEY)
        out_a = b"".join(ours.process(data[i : i + 7]) for i in range(0, 70, 7))
        out_b = b"".join(theirs.process(data[i : i + 7]) for i in range(0, 70, 7))
        assert out_a == out_b == ref_mask(data[:70], MASK_KEY)
        assert ours.pointer() == theirs.pointer() == 70
        theirs.reset()
        assert theirs.pointer() == 0


# --------------------------------------------------------------------------
# websockets (its asyncio server and client)
# --------------------------------------------------------------------------


def test_websockets_round_trip(spies: Spies) -> None:
    ws_frames = mod("websockets.frames")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    original = ws_frames.apply_mask
    assert fp.patch("websockets")["websockets.frames.apply_mask"] is original
    assert ws_frames.apply_mask is spies.apply_mask

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> tuple[int | None, list[tuple[int, bool, bytes]]]:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send(["caf", "é ", TEXT_LARGE])
                assert await ws.recv() == "café " + TEXT_LARGE
            code = ws.close_code
            frames = await asyncio.to_thread(raw_client, port, INVALID_TEXT_MASKED)
        return code, frames

    code, frames = run(main())
    assert code == 1000
    assert close_code(frames) == 1007
    assert spies.calls["apply_mask"] > 0
    fp.unpatch("websockets")
    assert ws_frames.apply_mask is original


# --------------------------------------------------------------------------
# aiohttp (its server and its client; the writer masks)
# --------------------------------------------------------------------------


def test_aiohttp_round_trip(spies: Spies) -> None:
    import aiohttp
    from aiohttp import web

    assert fp.patch("aiohttp")

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 22)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def main() -> int | None:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"ws://127.0.0.1:{port}/") as ws:
                    for message in MESSAGES:
                        if isinstance(message, str):
                            await ws.send_str(message)
                            assert (await ws.receive_str()) == message
                        else:
                            await ws.send_bytes(message)
                            assert (await ws.receive_bytes()) == message
                    await ws.close()
                    return ws.close_code
        finally:
            await runner.cleanup()

    assert run(main()) == 1000
    assert spies.calls["mask_inplace"] > 0


def test_aiohttp_invalid_utf8(spies: Spies) -> None:
    import aiohttp

    assert fp.patch("aiohttp")
    server = RawServer(INVALID_TEXT)

    async def main() -> aiohttp.WSMsgType:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                msg = await ws.receive()
                await ws.close()
                return msg.type

    assert run(main()) in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    # The client's close frame went through the patched (masking) writer.
    assert close_code(server.join()) == 1007
    assert spies.calls["mask_inplace"] > 0


def test_warnings_only_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_implementation", "c/test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fp.patch_all(names=PATCHABLE)
    fp.unpatch_all()
    monkeypatch.setattr(fp, "_implementation", "python")
    with pytest.warns(fp.PatchWarning, match="pure-Python kernels"):
        assert fp.patch("tornado")
    with pytest.warns(fp.PatchWarning, match="pure-Python kernels"):
        assert fp.patch_all(names=["wsproto"])


def test_websockets_legacy_patched_when_imported(spies: Spies) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy = mod("websockets.legacy.framing")
    original = legacy.apply_mask
    replaced = fp.patch("websockets")
    assert replaced["websockets.legacy.framing.apply_mask"] is original
    assert legacy.apply_mask is spies.apply_mask

    async def read() -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(frame(0x2, BIN_LARGE, key=MASK_KEY))
        reader.feed_eof()
        return await legacy.Frame.read(reader.readexactly, mask=True)

    assert run(read()).data == BIN_LARGE
    assert spies.calls["apply_mask"] == 1
    fp.unpatch("websockets")
    assert legacy.apply_mask is original


def test_command_line_runs_a_program_patched(tmp_path: Any) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import sys, fastws.patch, wsproto.frame_protocol as f\n"
        "print(sys.argv[1:], fastws.patch.patched(), f.XorMaskerSimple.__name__)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-m", "fastws.patch", str(script), "a", "b"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    ).stdout
    assert "['a', 'b']" in out
    assert "'wsproto'" in out
    assert "WsprotoXorMasker" in out
    status = subprocess.run(
        [sys.executable, "-m", "fastws.patch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    ).stdout
    assert "would patch" in status


def test_aiohttp_pure_python_reader_is_patched_when_in_use() -> None:
    # aiohttp chooses its reader at import time: check in a fresh interpreter.
    code = (
        "import fastws.patch as fp, aiohttp._websocket.reader as r, "
        "aiohttp._websocket.reader_py as py\n"
        "assert r.WebSocketReader is py.WebSocketReader\n"
        "replaced = fp.patch('aiohttp')\n"
        "assert 'aiohttp._websocket.reader_py.websocket_mask' in replaced, replaced\n"
        "assert py.websocket_mask is fp.aiohttp_websocket_mask\n"
        "data = bytearray(b'payload!')\n"
        "py.websocket_mask(b'abcd', data)\n"
        "print(bytes(data).hex())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": path}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ref_mask(b"payload!", b"abcd").hex()

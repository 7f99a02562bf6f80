"""What :mod:`fastws.patch` buys: each library's own code, unpatched and patched.

Run::

    python -m pytest bench/bench_patch.py --benchmark-only \\
        --benchmark-json=bench/results/patch.json

``group`` is the workload, ``extra_info`` is ``{"lib", "patched", "size",
"messages"}`` (``size`` = bytes per message, ``messages`` = messages per
round).

Each workload runs twice in one session, once with the library as installed
and once after ``fastws.patch.patch(lib)``, through the library's own entry
points, which look the patched names up at call time:

* wsproto: a client connection sends, a server connection receives (in
  memory), one 1 MiB binary message, or 10,000 small text messages;
* websocket-client: its frame reader (``frame_buffer`` and
  ``continuous_frame``, as ``WebSocket.recv`` drives them) receives 1 MiB of
  text from an in-memory socket; and its frame writer sends 1 MiB masked;
* autobahn: ``create_xor_masker(...).process`` and ``Utf8Validator().validate``
  on 1 MiB, as ``autobahn.websocket.protocol`` calls them;
* tornado, websockets, aiohttp: their masking functions on 1 MiB (and
  websockets also on 1 KiB, where call overhead dominates).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fastws.patch as fastws_patch

# ``python bench/report.py --quick`` sets FASTWS_BENCH_QUICK for shorter runs.
_QUICK = bool(os.environ.get("FASTWS_BENCH_QUICK"))
pytestmark = pytest.mark.benchmark(
    max_time=0.05 if _QUICK else 0.5, min_rounds=3 if _QUICK else 5, warmup=not _QUICK
)

MIB = 1 << 20
KEY = b"\x9a\x3c\x51\xe7"
# Mostly ASCII with some two-, three- and four-byte characters, like real chat
# or JSON text.
_SENTENCE = 'The quick brown fox — jumps over the lazy dog; naïve café ✓ 🎉 {"id": 42}\n'
TEXT_1MIB = (_SENTENCE * (MIB // len(_SENTENCE.encode()) + 1)).encode()[:MIB]
# Cut on a character boundary so that the text is valid UTF-8.
TEXT_1MIB = TEXT_1MIB.decode("utf-8", "ignore").encode()
BINARY_1MIB = os.urandom(MIB)
SMALL_TEXT = 'small message ✓ {"n": 1}'
SMALL_COUNT = 10_000


def _mod(name: str) -> Any:
    return importlib.import_module(name)


@pytest.fixture(params=[False, True], ids=["original", "patched"])
def patched(request: pytest.FixtureRequest) -> Iterator[Callable[[str], bool]]:
    """Return a function that patches a library when this run is the patched one."""
    done: list[str] = []

    def apply(lib: str) -> bool:
        if request.param:
            assert fastws_patch.patch(lib), f"{lib} was not patched"
            done.append(lib)
        return bool(request.param)

    yield apply
    for lib in done:
        fastws_patch.unpatch(lib)


def _tag(
    benchmark: Any, group: str, lib: str, is_patched: bool, size: int, messages: int = 1
) -> None:
    benchmark.group = group
    benchmark.extra_info.update(
        {"lib": lib, "patched": is_patched, "size": size, "messages": messages}
    )


# --------------------------------------------------------------------------
# wsproto
# --------------------------------------------------------------------------


def _wsproto_pair() -> tuple[Any, Any]:
    wsproto = _mod("wsproto")
    events = _mod("wsproto.events")
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    server.receive_data(client.send(events.Request(host="localhost", target="/")))
    list(server.events())
    client.receive_data(server.send(events.AcceptConnection()))
    list(client.events())
    return client, server


def test_wsproto_1mib(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("wsproto")
    _tag(benchmark, "wsproto: send + receive 1 MiB binary", "wsproto", is_patched, MIB)
    events = _mod("wsproto.events")
    client, server = _wsproto_pair()
    message = events.BytesMessage(data=BINARY_1MIB)

    def run() -> None:
        server.receive_data(client.send(message))
        (event,) = server.events()
        assert len(event.data) == MIB

    benchmark(run)


def test_wsproto_1mib_text(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("wsproto")
    _tag(benchmark, "wsproto: send + receive 1 MiB text", "wsproto", is_patched, len(TEXT_1MIB))
    events = _mod("wsproto.events")
    client, server = _wsproto_pair()
    message = events.TextMessage(data=TEXT_1MIB.decode())

    def run() -> None:
        server.receive_data(client.send(message))
        (event,) = server.events()
        assert event.message_finished

    benchmark(run)


def test_wsproto_small(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("wsproto")
    _tag(
        benchmark,
        "wsproto: send + receive 10,000 small text",
        "wsproto",
        is_patched,
        len(SMALL_TEXT.encode()),
        SMALL_COUNT,
    )
    events = _mod("wsproto.events")
    client, server = _wsproto_pair()
    message = events.TextMessage(data=SMALL_TEXT)

    def run() -> None:
        wire = b"".join([client.send(message) for _ in range(SMALL_COUNT)])
        server.receive_data(wire)
        received = sum(1 for _ in server.events())
        assert received == SMALL_COUNT

    benchmark.pedantic(run, rounds=3 if _QUICK else 5, warmup_rounds=1)


# --------------------------------------------------------------------------
# websocket-client
# --------------------------------------------------------------------------


class _MemorySocket:
    """Serves ``data`` in chunks of at most ``bufsize`` bytes, like ``socket.recv``."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.pos = 0

    def recv(self, bufsize: int) -> bytes:
        chunk = bytes(self.view[self.pos : self.pos + bufsize])
        self.pos += len(chunk)
        return chunk


def test_websocket_client_receive_text(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("websocket-client")
    _tag(
        benchmark,
        "websocket-client: receive 1 MiB text",
        "websocket-client",
        is_patched,
        len(TEXT_1MIB),
    )
    abnf = _mod("websocket._abnf")
    wire = abnf.ABNF.create_frame(TEXT_1MIB, abnf.ABNF.OPCODE_TEXT).format()  # unmasked

    def run() -> None:
        # What WebSocket.recv_data_frame does with each frame.
        reader = abnf.frame_buffer(_MemorySocket(wire).recv, False)
        cont = abnf.continuous_frame(False, False)
        frame = reader.recv_frame()
        cont.validate(frame)
        cont.add(frame)
        assert cont.is_fire(frame)
        _opcode, data = cont.extract(frame)
        assert len(data.data) == len(TEXT_1MIB)

    benchmark(run)


def test_websocket_client_send_masked(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("websocket-client")
    _tag(
        benchmark,
        "websocket-client: send 1 MiB binary (masked)",
        "websocket-client",
        is_patched,
        MIB,
    )
    abnf = _mod("websocket._abnf")

    def run() -> None:
        frame = abnf.ABNF.create_frame(BINARY_1MIB, abnf.ABNF.OPCODE_BINARY)
        assert len(frame.format()) == MIB + 14

    benchmark(run)


# --------------------------------------------------------------------------
# autobahn
# --------------------------------------------------------------------------


def test_autobahn_mask(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("autobahn")
    _tag(benchmark, "autobahn: mask 1 MiB", "autobahn", is_patched, MIB)
    protocol = _mod("autobahn.websocket.protocol")

    def run() -> None:
        masker = protocol.create_xor_masker(KEY, MIB)
        assert len(masker.process(BINARY_1MIB)) == MIB

    benchmark(run)


def test_autobahn_utf8(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("autobahn")
    _tag(benchmark, "autobahn: validate 1 MiB UTF-8", "autobahn", is_patched, len(TEXT_1MIB))
    protocol = _mod("autobahn.websocket.protocol")

    def run() -> None:
        validator = protocol.Utf8Validator()
        assert validator.validate(TEXT_1MIB)[:2] == (True, True)

    benchmark(run)


# --------------------------------------------------------------------------
# tornado, websockets, aiohttp: masking
# --------------------------------------------------------------------------


def test_tornado_mask(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("tornado")
    _tag(benchmark, "tornado: mask 1 MiB", "tornado", is_patched, MIB)
    websocket = _mod("tornado.websocket")

    def run() -> None:
        assert len(websocket._websocket_mask(KEY, BINARY_1MIB)) == MIB

    benchmark(run)


@pytest.mark.parametrize("size", [1 << 10, MIB], ids=["1KiB", "1MiB"])
def test_websockets_mask(benchmark: Any, patched: Callable[[str], bool], size: int) -> None:
    is_patched = patched("websockets")
    label = "1 KiB" if size < MIB else "1 MiB"
    _tag(benchmark, f"websockets: mask {label}", "websockets", is_patched, size)
    frames = _mod("websockets.frames")
    data = BINARY_1MIB[:size]

    def run() -> None:
        frames.apply_mask(data, KEY)

    benchmark(run)


def test_aiohttp_mask(benchmark: Any, patched: Callable[[str], bool]) -> None:
    is_patched = patched("aiohttp")
    _tag(benchmark, "aiohttp: mask 1 MiB (writer)", "aiohttp", is_patched, MIB)
    writer = _mod("aiohttp._websocket.writer")
    buffer = bytearray(BINARY_1MIB)

    def run() -> None:
        writer.websocket_mask(KEY, buffer)

    benchmark(run)

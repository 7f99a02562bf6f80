"""Fuzz the sans-IO protocol with atheris: random bytes into both roles.

Each input is split into a header byte (role, permessage-deflate, streaming,
auto-pong, limits) and chunk sizes plus data; the data is fed, after a valid
handshake, to a server or a client. The only acceptable outcomes are events
and errors deriving from :class:`fastws.exceptions.FastWSError` recorded as
``close_exc``; any exception escaping ``receive_data`` is a bug.

Run for a bounded time::

    python fuzz/fuzz_protocol.py -max_total_time=60
    FASTWS_NO_EXTENSIONS=1 python fuzz/fuzz_protocol.py -max_total_time=60

Also fuzzes the handshake itself when the header byte asks for it, and, when
it asks for the other path, feeds every read to a twin that takes its
messages through a message handler (``set_message_handler``, what the
asyncio front-end uses) which pauses receiving every few messages, and
resumes: both must produce the same messages, in the same order, and end in
the same state.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import atheris

with atheris.instrument_imports():
    from fastws.events import BinaryMessage, MessageChunk, Request, TextMessage
    from fastws.exceptions import FastWSError
    from fastws.extensions.permessage_deflate import DeflateOptions
    from fastws.protocol import ClientProtocol, ServerProtocol, State

__all__ = ["test_one_input"]

_OPTIONS = [
    None,
    DeflateOptions(),
    DeflateOptions(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        threshold=0,
    ),
]


def _open(
    server_role: bool, compression: DeflateOptions | None, **kwargs: object
) -> ServerProtocol | ClientProtocol:
    client = ClientProtocol("ws://fuzz/", compression=compression, **kwargs)  # type: ignore[arg-type]
    server = ServerProtocol(compression=compression, **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (request,) = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    return server if server_role else client


def _feed(proto: ServerProtocol | ClientProtocol, fdp: atheris.FuzzedDataProvider) -> None:
    while fdp.remaining_bytes():
        size = fdp.ConsumeIntInRange(1, 512)
        chunk = fdp.ConsumeBytes(size)
        proto.receive_data(chunk)
        for event in proto.events_received():
            if isinstance(event, Request) and isinstance(proto, ServerProtocol):
                proto.send_response(proto.accept(event))
        proto.data_to_send()
        if proto.state is State.OPEN and proto.close_exc is None and len(chunk) % 7 == 0:
            try:
                proto.send_text("echo", fin=len(chunk) % 2 == 0)
                proto.send_ping(b"x")
            except FastWSError:
                pass
    proto.receive_eof()
    proto.data_to_send()
    assert proto.state is State.CLOSED
    assert proto.close_exc is None or isinstance(proto.close_exc, FastWSError), proto.close_exc


def _messages(events: list[object], out: list[object]) -> None:
    for event in events:
        if isinstance(event, (TextMessage, BinaryMessage)):
            out.append((event.data, True))
        elif isinstance(event, MessageChunk):
            out.append((event.data, event.final))


def _feed_twins(
    plain: ServerProtocol | ClientProtocol,
    fast: ServerProtocol | ClientProtocol,
    fdp: atheris.FuzzedDataProvider,
) -> None:
    expected: list[object] = []
    got: list[object] = []
    every = fdp.ConsumeIntInRange(1, 4)

    def handler(data: object, final: bool) -> bool:
        got.append((data, final))
        return len(got) % every == 0  # full: pause

    fast.set_message_handler(handler)
    while fdp.remaining_bytes():
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 512))
        plain.receive_data(chunk)
        _messages(plain.events_received(), expected)
        fast.receive_data(chunk)
        while fast.receiving_paused:
            before = len(got)
            fast.resume_receiving()
            assert len(got) > before or not fast.receiving_paused
        assert not [
            e for e in fast.events_received() if isinstance(e, (TextMessage, BinaryMessage))
        ]
        assert got == expected, (got, expected)
        sent = plain.data_to_send(), fast.data_to_send()
        assert sent[0] == sent[1] or isinstance(plain, ClientProtocol)  # clients mask at random
    for proto in (plain, fast):
        proto.receive_eof()
        proto.data_to_send()
    assert (plain.state, plain.close_code, plain.close_exc is None) == (
        fast.state,
        fast.close_code,
        fast.close_exc is None,
    )


def test_one_input(data: bytes) -> None:
    """One fuzz iteration."""
    fdp = atheris.FuzzedDataProvider(data)
    flags = fdp.ConsumeInt(1)
    server_role = bool(flags & 1)
    compression = _OPTIONS[(flags >> 1) % 3]
    kwargs = {
        "stream_messages": bool(flags & 8),
        "auto_pong": bool(flags & 16),
        "max_message_size": 4096 if flags & 32 else 1 << 20,
    }
    if flags & 64:
        proto: ServerProtocol | ClientProtocol
        if server_role:
            proto = ServerProtocol(compression=compression, **kwargs)  # type: ignore[arg-type]
        else:
            proto = ClientProtocol("ws://fuzz/", compression=compression, **kwargs)  # type: ignore[arg-type]
            proto.send_request(proto.connect())
            proto.data_to_send()
    elif flags & 128:
        plain = _open(server_role, compression, **kwargs)
        _feed_twins(plain, _open(server_role, compression, **kwargs), fdp)
        return
    else:
        proto = _open(server_role, compression, **kwargs)
    _feed(proto, fdp)


def main() -> None:
    """Entry point: ``python fuzz/fuzz_protocol.py [libFuzzer options]``."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

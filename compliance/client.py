"""The Autobahn TestSuite client runner: fastws's sans-IO client over plain sockets.

Reads ``$AUTOBAHN_URL`` (default ``ws://127.0.0.1:9001``), asks for the case
count, runs every case as an echo client offering permessage-deflate, then
asks the server to write its reports::

    AUTOBAHN_URL=ws://127.0.0.1:9001 python compliance/client.py [--agent NAME]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastws
from fastws.events import BinaryMessage, TextMessage
from fastws.extensions.permessage_deflate import DeflateOptions
from fastws.handshake import parse_uri
from fastws.protocol import ClientProtocol, State

__all__ = ["main", "run"]


def run(uri: str, *, echo: bool = True, max_size: int = 16 << 20) -> str | None:
    """Open ``uri``, echo every message until the connection closes.

    Args:
        uri: the WebSocket URI.
        echo: send every message back.
        max_size: the largest message accepted.

    Returns:
        The first text message received (for ``getCaseCount``), or ``None``.
    """
    _, host, port, _ = parse_uri(uri)
    proto = ClientProtocol(
        uri,
        compression=DeflateOptions(server_max_window_bits=None),
        max_message_size=max_size,
        max_fragments=None,
        user_agent=f"fastws/{fastws.__version__}",
    )
    first: str | None = None
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        proto.send_request(proto.connect())
        write_closed = False
        while True:
            out = proto.data_to_send()
            if out:
                payload = b"".join(out)
                if payload and not write_closed:
                    sock.sendall(payload)
                if out[-1] == b"" and not write_closed:
                    write_closed = True
                    sock.shutdown(socket.SHUT_WR)
            if proto.state is State.CLOSED and write_closed:
                break
            if proto.close_expected():
                sock.settimeout(5)
            data = sock.recv(1 << 18)
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            for event in proto.events_received():
                if isinstance(event, TextMessage):
                    if first is None:
                        first = event.data
                    if echo and proto.state is State.OPEN:
                        proto.send_text(event.data)
                elif isinstance(event, BinaryMessage):
                    if echo and proto.state is State.OPEN:
                        proto.send_binary(event.data)
    except OSError:
        pass
    finally:
        sock.close()
    return first


def main(argv: list[str] | None = None) -> None:
    """Run every case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default=f"fastws-{fastws.__version__}-{fastws.implementation}")
    args = parser.parse_args(argv)
    base = os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001").rstrip("/")
    count = int(run(f"{base}/getCaseCount", echo=False) or 0)
    print(f"{count} cases ({fastws.implementation})", flush=True)
    for n in range(1, count + 1):
        run(f"{base}/runCase?case={n}&agent={args.agent}")
    run(f"{base}/updateReports?agent={args.agent}", echo=False)


if __name__ == "__main__":
    main()

"""An echo server on the sans-IO core over plain sockets (one thread per connection).

Used to run the Autobahn TestSuite against fastws in the server role::

    python compliance/echo_server.py --port 9001 [--max-size 16777216]

Every text and binary message is echoed back; permessage-deflate is accepted.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastws
from fastws.events import BinaryMessage, Request, TextMessage
from fastws.extensions.permessage_deflate import DeflateOptions
from fastws.protocol import ServerProtocol, State

__all__ = ["main", "serve_connection"]


def serve_connection(sock: socket.socket, max_size: int) -> None:
    """Run one echo connection to completion.

    Args:
        sock: the accepted socket.
        max_size: the largest message accepted.
    """
    proto = ServerProtocol(
        compression=DeflateOptions(),
        max_message_size=max_size,
        max_fragments=None,
        server_header=f"fastws/{fastws.__version__} ({fastws.implementation})",
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    write_closed = False
    try:
        while True:
            data = sock.recv(1 << 18)
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            events = proto.events_received()
            while events:
                for event in events:
                    if isinstance(event, Request):
                        proto.send_response(proto.accept(event))
                    elif proto.state is State.OPEN:
                        if isinstance(event, TextMessage):
                            proto.send_text(event.data)
                        elif isinstance(event, BinaryMessage):
                            proto.send_binary(event.data)
                events = proto.events_received()
            out = proto.data_to_send()
            if out:
                payload = b"".join(out)
                if payload and not write_closed:
                    sock.sendall(payload)
                if out[-1] == b"" and not write_closed:
                    write_closed = True
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(5)  # drain until the peer closes, bounded
            if not data:
                break
    except OSError:
        pass
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--max-size", type=int, default=16 << 20)
    args = parser.parse_args(argv)
    # A shell starts background jobs with SIGINT ignored, and Python then
    # installs no handler of its own: stop on SIGINT and SIGTERM regardless.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    listener = socket.create_server((args.host, args.port), backlog=128, reuse_port=False)
    print(f"echo server on ws://{args.host}:{args.port} ({fastws.implementation})", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            threading.Thread(
                target=serve_connection, args=(conn, args.max_size), daemon=True
            ).start()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main()

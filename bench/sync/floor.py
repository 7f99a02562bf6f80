"""The floor of the threaded model: what a reader thread and a queue cost alone.

A thread-per-connection WebSocket library (fastws.sync, websockets.sync)
reads each connection in a background thread, which parses frames and hands
the messages over a queue to the thread that calls ``recv()``; ``send()``
writes each message with one ``sendall()``. This module does exactly that
and nothing else: a hand-written parser that knows only unfragmented data
frames (no close handshake, no control frames, no UTF-8 check, no limits),
fastws's C masking kernel, a ``queue.SimpleQueue``. It is not a WebSocket
implementation; its CPU time per message in the sync benchmark is the cost
of the threads, the queue hand-over and the system calls, that no library
built this way can go below.
"""

from __future__ import annotations

import base64
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from fastws import apply_mask
from fastws.handshake import accept_key


def _head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read an HTTP head; return it and the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    n = len(payload)
    first = 0x80 | opcode
    bit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack("!BB", first, bit | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


def _reader(sock: socket.socket, rest: bytes, items: queue.SimpleQueue[Any]) -> None:
    """Parse data frames into ``items`` until the connection ends (then ``None``)."""
    buffer = bytearray(rest)
    try:
        while True:
            while len(buffer) >= 2:
                opcode = buffer[0] & 0x0F
                masked = buffer[1] & 0x80
                n = buffer[1] & 0x7F
                at = 2
                if n == 126:
                    if len(buffer) < 4:
                        break
                    (n,) = struct.unpack_from("!H", buffer, 2)
                    at = 4
                elif n == 127:
                    if len(buffer) < 10:
                        break
                    (n,) = struct.unpack_from("!Q", buffer, 2)
                    at = 10
                end = at + (4 if masked else 0) + n
                if len(buffer) < end:
                    break
                if masked:
                    payload = apply_mask(buffer[at + 4 : end], buffer[at : at + 4])
                else:
                    payload = bytes(buffer[at:end])
                del buffer[:end]
                if opcode == 8:
                    return
                items.put(payload.decode() if opcode == 1 else payload)
            data = sock.recv(1 << 16)
            if not data:
                return
            buffer += data
    except OSError:
        return
    finally:
        items.put(None)


class _Connection:
    def __init__(self, sock: socket.socket, rest: bytes, mask: bool) -> None:
        self.sock = sock
        self.mask = mask
        self.items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=_reader, args=(sock, rest, self.items), daemon=True)
        self.thread.start()

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.sock.sendall(_frame(1, message.encode(), self.mask))
        else:
            self.sock.sendall(_frame(2, message, self.mask))

    def recv(self) -> str | bytes:
        item = self.items.get()
        if item is None:
            self.items.put(None)
            raise ConnectionError("closed")
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self.sock.sendall(_frame(8, b"\x03\xe8", self.mask))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


def connect(url: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[[], None]]:
    """A client connection to ``ws://host:port/``: its send, recv and close."""
    hostport = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: " + hostport.encode() + b"\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    head, rest = _head(sock)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode("latin-1"))
    conn = _Connection(sock, rest, mask=True)
    return conn.send, conn.recv, conn.close


def _serve_one(sock: socket.socket) -> None:
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head, rest = _head(sock)
        except OSError:
            return
        key = b""
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = accept_key(key.decode("latin-1")).encode()
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        conn = _Connection(sock, rest, mask=False)
        try:
            while True:  # the handler: for message in ws: ws.send(message)
                conn.send(conn.recv())
        except (ConnectionError, OSError):
            pass
        conn.thread.join(5)


def serve_forever(port: int) -> None:
    """An echo server on 127.0.0.1:``port``: a thread per connection, plus its reader."""
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(sock,), daemon=True).start()

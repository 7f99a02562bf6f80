"""TLS inside TLS for the sync client: ``wss://`` through an ``https://`` proxy.

:meth:`ssl.SSLContext.wrap_socket` cannot wrap a socket that already speaks
TLS (the tunnel to an ``https://`` proxy), so the inner TLS session runs in
an :class:`ssl.SSLObject` over memory buffers, and this class moves its
records through the outer :class:`ssl.SSLSocket`. It offers the socket
methods the sync connection uses, with their blocking behaviour.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

__all__ = ["TLSInTLS", "has_pending"]

_READ = 1 << 16


class TLSInTLS:
    """A TLS session over an ``ssl.SSLSocket``; the handshake runs in the constructor.

    Raises:
        ssl.SSLError: the handshake failed.
        OSError: the connection failed during the handshake.
    """

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._outer = outer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        # The SSLObject and its buffers: held briefly, never during socket I/O.
        self._lock = threading.Lock()
        # Held while the records of one write go out, so that they keep their order.
        self._send_lock = threading.Lock()
        self.family = outer.family
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _fill(self) -> bool:
        """Read from the outer socket into the session (blocking); ``False`` at its end."""
        data = self._outer.recv(_READ)
        with self._lock:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
        return bool(data)

    def _flush(self, block: bool = True) -> None:
        """Send the records the session wrote; ``block=False``: not if a write is under way
        (that write sends them with its own)."""
        if not self._send_lock.acquire(block):
            return
        try:
            with self._lock:
                data = self._outgoing.read()
            if data:
                self._outer.sendall(data)
        finally:
            self._send_lock.release()

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes of plain text; waits for at least one; ``b""`` at the end."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLZeroReturnError:
                    data = b""
                unsent = self._outgoing.pending
            if unsent:  # records the session wrote while reading (a key update...)
                self._flush(block=False)
            if data is not None:
                return data
            if not self._fill():
                with self._lock:
                    try:
                        return self._tls.read(size)
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return b""

    def sendall(self, data: bytes) -> None:
        """Send all of ``data``."""
        with self._send_lock:
            with self._lock:
                self._tls.write(data)
                out = self._outgoing.read()
            self._outer.sendall(out)

    def pending(self) -> int:
        """Bytes that can be read without waiting for the socket (0 if none)."""
        with self._lock:
            return self._tls.pending() + self._incoming.pending + self._outer.pending()

    def fileno(self) -> int:
        return self._outer.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._outer.settimeout(timeout)

    def setsockopt(self, *args: Any) -> None:
        self._outer.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self._outer.shutdown(how)

    def close(self) -> None:
        self._outer.close()

    def getsockname(self) -> Any:
        return self._outer.getsockname()

    def getpeername(self) -> Any:
        return self._outer.getpeername()

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The WebSocket server's certificate (not the proxy's)."""
        return self._tls.getpeercert(binary_form)

    def version(self) -> str | None:
        """The inner session's TLS version."""
        return self._tls.version()


def has_pending(sock: socket.socket | TLSInTLS) -> bool:
    """Whether a TLS socket holds bytes that polling its descriptor would not show."""
    return isinstance(sock, (ssl.SSLSocket, TLSInTLS)) and sock.pending() > 0

"""Exceptions raised by fastws.

Every error fastws raises on purpose derives from :class:`FastWSError`.

Hierarchy::

    FastWSError
    ├── Utf8Error            (also a ValueError; raised by the UTF-8 kernels)
    ├── ProtocolError        the peer broke RFC 6455 / RFC 7692; carries the close code
    │   └── PayloadTooBig    a size limit was exceeded (close code 1009)
    ├── InvalidHandshake     the HTTP upgrade failed; carries the status / response
    │   ├── InvalidMessage   (client) the server's answer is not a valid HTTP/1.1 response
    │   ├── InvalidStatus    (client) the server answered with a status other than 101
    │   ├── SecurityError    (client) a redirect that must not be followed (too many, wss -> ws)
    │   └── ProxyError       (client) the connection through a proxy failed
    │       ├── InvalidProxyMessage  the proxy's answer is not a valid HTTP/1.1 response
    │       └── InvalidProxyStatus   the proxy refused the tunnel (407, 403, 502, ...)
    ├── InvalidURI           (also a ValueError) not a valid ws:// or wss:// URI
    ├── InvalidProxy         (also a ValueError) not a valid proxy URL
    ├── InvalidState         an operation is not allowed in the connection's state
    ├── ConnectionClosed     the connection is closed (asyncio front-end)
    │   ├── ConnectionClosedOK     ... with 1000 or 1001 both ways
    │   └── ConnectionClosedError  ... otherwise
    └── ConcurrencyError     (also a RuntimeError) two coroutines read or write at once

The names a program written for the websockets library catches are here,
with the same meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastws.events import Request, Response

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "FastWSError",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "SecurityError",
    "Utf8Error",
]


class FastWSError(Exception):
    """Base class of every exception fastws raises on purpose."""


class Utf8Error(FastWSError, ValueError):
    """Bytes are not valid UTF-8.

    Attributes:
        position: absolute offset of the first byte that cannot start or
            continue valid UTF-8, counted from the first byte fed to the
            validator (the length of the longest valid prefix, like
            :attr:`UnicodeDecodeError.start`).
        incomplete: ``True`` when the input ended in the middle of a
            multi-byte sequence rather than containing an invalid byte.
    """

    def __init__(self, position: int, incomplete: bool = False) -> None:
        self.position = position
        self.incomplete = incomplete
        if incomplete:
            msg = f"incomplete UTF-8 sequence at end of input (starts at byte {position})"
        else:
            msg = f"invalid UTF-8 at byte {position}"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type[Utf8Error], tuple[int, bool]]:
        return (type(self), (self.position, self.incomplete))


class ProtocolError(FastWSError):
    """The peer violated the WebSocket protocol; the connection was failed.

    Attributes:
        code: the close code sent to the peer (1002, 1007, 1009, ...).
        message: a human-readable explanation (also used as the close reason).
    """

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{message} (close code {code})")

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[int, str]]:
        return (type(self), (self.code, self.message))


class PayloadTooBig(ProtocolError):
    """A message, frame, fragment count or decompressed size exceeded a limit (1009)."""

    def __init__(self, message: str, code: int = 1009) -> None:
        super().__init__(code, message)

    def __reduce__(self) -> tuple[type[PayloadTooBig], tuple[str, int]]:  # type: ignore[override]
        return (type(self), (self.message, self.code))


class InvalidHandshake(FastWSError):
    """The HTTP upgrade handshake failed.

    Attributes:
        message: what was wrong.
        response: client side: the server's HTTP response, if one was parsed.
        status: server side: the HTTP status we answered with (e.g. 400, 426);
            client side: the response status if known.
        request: server side: the refused request, when it was well-formed
            HTTP (e.g. a plain ``GET`` without an upgrade, which a server may
            still answer itself: health checks, pages).
    """

    def __init__(
        self,
        message: str,
        response: Response | None = None,
        status: int | None = None,
        request: Request | None = None,
    ) -> None:
        self.message = message
        self.response = response
        self.request = request
        if status is None and response is not None:
            status = response.status
        self.status = status
        super().__init__(message)


class InvalidMessage(InvalidHandshake):
    """Client side: the server's answer to the upgrade request is not valid HTTP/1.1."""


class InvalidStatus(InvalidHandshake):
    """Client side: the server answered the upgrade with a status other than 101.

    ``response`` holds its status, headers and body.
    """


class SecurityError(InvalidHandshake):
    """Client side: a redirect was not followed because it would be unsafe.

    Raised for a redirect from ``wss://`` to ``ws://`` (a TLS downgrade) and
    after too many redirects.
    """


class ProxyError(InvalidHandshake):
    """Client side: the connection through the proxy could not be set up.

    Also raised, with the cause chained, when a SOCKS proxy refuses the
    connection or answers with something that is not SOCKS.
    """


class InvalidProxyMessage(ProxyError):
    """Client side: the HTTP proxy's answer to ``CONNECT`` is not valid HTTP/1.1."""


class InvalidProxyStatus(ProxyError):
    """Client side: the HTTP proxy answered ``CONNECT`` with a status other than 2xx.

    ``response`` holds its status and headers (407: authentication required
    or refused; 403: the destination is not allowed; 502/503: the proxy could
    not reach the server).
    """


class InvalidURI(FastWSError, ValueError):
    """A URI that is not a valid ``ws://`` or ``wss://`` URI.

    Attributes:
        uri: the URI.
        msg: what is wrong with it.
    """

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(f"{uri!r} is not a valid WebSocket URI: {msg}")

    def __reduce__(self) -> tuple[type[InvalidURI], tuple[str, str]]:
        return (type(self), (self.uri, self.msg))


class InvalidProxy(FastWSError, ValueError):
    """A proxy URL that fastws cannot use.

    Attributes:
        proxy: the proxy URL (its password, if any, replaced by ``***``).
        msg: what is wrong with it.
    """

    def __init__(self, proxy: str, msg: str) -> None:
        self.proxy = proxy
        self.msg = msg
        super().__init__(f"{proxy!r} is not a valid proxy: {msg}")

    def __reduce__(self) -> tuple[type[InvalidProxy], tuple[str, str]]:
        return (type(self), (self.proxy, self.msg))


class InvalidState(FastWSError):
    """The operation is not allowed in the connection's current state."""


class ConnectionClosed(FastWSError):
    """The WebSocket connection is closed.

    Attributes:
        code: the close code that describes the closure: the peer's code when
            it sent a close frame, else the code we sent, else 1006 (the
            connection was lost without a closing handshake).
        reason: the close reason that goes with :attr:`code`.
        received_code: the code of the peer's close frame (1005 when it had
            none), or ``None`` when no close frame was received.
        sent_code: the code of the close frame we sent, or ``None``.
    """

    def __init__(
        self,
        code: int,
        reason: str = "",
        *,
        received_code: int | None = None,
        sent_code: int | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.received_code = received_code
        self.sent_code = sent_code
        text = f"connection closed with code {code}"
        if reason:
            text += f" ({reason})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (type(self), self.code, self.reason, self.received_code, self.sent_code),
        )


def _rebuild(
    cls: type[ConnectionClosed],
    code: int,
    reason: str,
    received_code: int | None,
    sent_code: int | None,
) -> ConnectionClosed:
    return cls(code, reason, received_code=received_code, sent_code=sent_code)


class ConnectionClosedOK(ConnectionClosed):
    """The connection was closed normally (1000 or 1001, no error on our side)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection was closed abnormally: an error code, or no closing handshake."""


class ConcurrencyError(FastWSError, RuntimeError):
    """Two coroutines tried to receive from the same connection at the same time."""

"""Exceptions raised by the asyncio front-end.

:class:`ConnectionClosed` is raised by :meth:`~fastws.asyncio.Connection.recv`,
:meth:`~fastws.asyncio.Connection.send` and friends once the connection is
closed. It has two subclasses that tell a normal closure from an abnormal one.
"""

from __future__ import annotations

from fastws.exceptions import FastWSError

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
]


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

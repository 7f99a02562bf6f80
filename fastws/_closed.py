"""The exception that tells how a connection ended, for every front-end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastws.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from fastws.frames import CLOSE_ABNORMAL, CLOSE_GOING_AWAY, CLOSE_NO_STATUS, CLOSE_NORMAL

if TYPE_CHECKING:
    from fastws.protocol import ClientProtocol, ServerProtocol

__all__ = ["closed_exception"]

_OK_CODES = frozenset((CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_NO_STATUS))


def closed_exception(
    proto: ServerProtocol | ClientProtocol, sent_reason: str = ""
) -> ConnectionClosed:
    """:class:`ConnectionClosedOK` or :class:`ConnectionClosedError` for a closed connection.

    The code and reason are the peer's when it sent a close frame, else ours
    (with ``sent_reason``, or what failed), else 1006. It is "OK" when both
    sides closed with 1000, 1001 or no code and nothing failed.

    Args:
        proto: the connection's state machine.
        sent_reason: the reason of the close frame we sent, if any.
    """
    received = proto.close_code
    sent = proto.close_code_sent
    exc = proto.close_exc
    if received is not None and received != CLOSE_ABNORMAL:
        code, reason = received, proto.close_reason
    elif sent is not None:
        code, reason = sent, sent_reason
        if exc is not None and not reason:
            reason = getattr(exc, "message", str(exc))
        received = None
    else:
        code, reason, received = CLOSE_ABNORMAL, "", None
    ok = (
        received is not None
        and received in _OK_CODES
        and (sent is None or sent in _OK_CODES)
        and exc is None
    )
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(code, reason, received_code=received, sent_code=sent)

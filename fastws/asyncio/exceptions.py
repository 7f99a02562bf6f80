"""Exceptions raised by the asyncio front-end.

:class:`ConnectionClosed` is raised by :meth:`~fastws.asyncio.Connection.recv`,
:meth:`~fastws.asyncio.Connection.send` and friends once the connection is
closed. It has two subclasses that tell a normal closure from an abnormal one.
They are defined in :mod:`fastws.exceptions` (so that ``import fastws`` has
them without importing asyncio) and are the same classes here.
"""

from __future__ import annotations

from fastws.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
]

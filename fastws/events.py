"""Events produced by the sans-IO protocol (:mod:`fastws.protocol`).

Events are small, immutable, slotted objects. The message events
(:class:`TextMessage`, :class:`BinaryMessage`, :class:`MessageChunk`) are
made by the frame reader (:mod:`fastws._reader_py`; extension types in the C
build, whose attributes are read-only); the others are frozen dataclasses.
:class:`Headers` is a case-insensitive multi-dict that keeps the original
order and spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias, overload

from fastws._impl import BinaryMessage, MessageChunk, TextMessage

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "Event",
    "Headers",
    "MessageChunk",
    "Ping",
    "Pong",
    "Request",
    "Response",
    "TextMessage",
]


class Headers:
    """A case-insensitive multi-dict of HTTP headers.

    Built from ``(name, value)`` pairs; keeps their order and spelling.
    ``headers[name] = value`` adds a header (an existing one of the same name
    stays, as in websockets) and ``del headers[name]`` removes every header of
    that name: a ``process_response`` callback may edit the response's
    headers before it is sent. The hash follows the contents: do not edit
    headers used as a key.

    Args:
        items: the header pairs.
    """

    __slots__ = ("_flat",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        # One flat tuple (name, value, name, value, ...), replaced on the
        # rare edit: every open connection keeps its handshake's headers, so
        # this is about 60 bytes per header smaller than a list of pairs.
        flat: list[str] = []
        for k, v in items:
            flat.append(str(k))
            flat.append(str(v))
        self._flat: tuple[str, ...] = tuple(flat)

    def _pairs(self) -> Iterator[tuple[str, str]]:
        flat = self._flat
        return zip(flat[::2], flat[1::2], strict=True)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value for ``name`` (case-insensitive), or ``default``."""
        lname = name.lower()
        flat = self._flat
        for i in range(0, len(flat), 2):
            if flat[i].lower() == lname:
                return flat[i + 1]
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value for ``name`` (case-insensitive), in order."""
        lname = name.lower()
        return [v for k, v in self._pairs() if k.lower() == lname]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        """Return the ``(name, value)`` pairs in order."""
        return list(self._pairs())

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat[::2])

    def __len__(self) -> int:
        return len(self._flat) // 2

    def __setitem__(self, name: str, value: str) -> None:
        """Add the header ``name: value`` after the others.

        Raises:
            TypeError: ``name`` or ``value`` is not a ``str``.
            ValueError: the header cannot be sent as is (see
                :func:`fastws.handshake.check_header`).
        """
        from fastws.handshake import check_header

        check_header(name, value, "Headers")
        self._flat = (*self._flat, name, value)

    def __delitem__(self, name: str) -> None:
        """Remove every header called ``name`` (case-insensitive).

        Raises:
            KeyError: there is none.
        """
        lname = name.lower()
        kept = [(k, v) for k, v in self._pairs() if k.lower() != lname]
        if len(kept) == len(self):
            raise KeyError(name)
        self._flat = tuple(item for pair in kept for item in pair)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return [(k.lower(), v) for k, v in self._pairs()] == [
                (k.lower(), v) for k, v in other._pairs()
            ]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((k.lower(), v) for k, v in self._pairs()))

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP upgrade request (received by a server, or built by a client).

    Attributes:
        method: the HTTP method (``"GET"``).
        path: the request target (path and query).
        headers: the request headers.
    """

    method: str
    path: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response (built by a server, or received by a client).

    Attributes:
        status: the status code (101 on success).
        reason: the reason phrase.
        headers: the response headers.
        body: the body (empty for 101).
    """

    status: int
    reason: str
    headers: Headers
    body: bytes = field(default=b"")

    @property
    def status_code(self) -> int:
        """:attr:`status`, under the name websockets gives it."""
        return self.status

    @property
    def reason_phrase(self) -> str:
        """:attr:`reason`, under the name websockets gives it."""
        return self.reason


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping frame was received (a pong is sent automatically unless ``auto_pong=False``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong frame was received."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame.

    Attributes:
        code: the close code; 1005 when the frame had no payload.
        reason: the close reason.
    """

    code: int
    reason: str


Event: TypeAlias = (
    Request | Response | TextMessage | BinaryMessage | MessageChunk | Ping | Pong | CloseReceived
)

"""Option helpers shared by the server and the client."""

from __future__ import annotations

import os
import socket
import ssl as ssl_module
from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from fastws import _check
from fastws.extensions.permessage_deflate import DeflateOptions

__all__ = [
    "Opener",
    "check_endpoint",
    "compression_options",
    "connections_limit",
    "fragments_limit",
]

_T = TypeVar("_T")


class Opener(Generic[_T]):
    """What ``serve()`` and ``connect()`` share: awaitable, or an async context manager.

    ``await opener`` returns the opened object; ``async with opener as obj``
    also closes it on exit. Subclasses implement :meth:`_open` and :meth:`_shut`.
    """

    _opened: _T | None = None

    async def _open(self) -> _T:
        raise NotImplementedError

    async def _shut(self, opened: _T) -> None:
        raise NotImplementedError

    async def _open_once(self) -> _T:
        self._opened = opened = await self._open()
        return opened

    def __await__(self) -> Generator[Any, None, _T]:
        return self._open_once().__await__()

    async def __aenter__(self) -> _T:
        return await self._open_once()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._opened is not None:
            await self._shut(self._opened)


def compression_options(compression: str | Any | None, *, server: bool) -> Any:
    """Map the ``compression`` option to what the state machine takes.

    Args:
        compression: ``"deflate"``, a ``DeflateOptions`` or ``None``.
        server: whether the options are for a server.

    Returns:
        A ``DeflateOptions`` or ``None``.

    Raises:
        ValueError: unknown compression.
    """
    if compression is None:
        return None
    if not isinstance(compression, (str, DeflateOptions)):
        raise TypeError(
            f"compression must be 'deflate', a DeflateOptions or None, not {compression!r}"
        )
    if isinstance(compression, DeflateOptions):
        return compression
    if compression == "deflate":
        return DeflateOptions()
    raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")


def fragments_limit(max_size: int | None, max_fragments: int | str | None) -> int | None:
    """The ``max_fragments`` for the state machine.

    Args:
        max_size: the message size limit.
        max_fragments: an explicit limit, ``None`` (unlimited) or ``"auto"``.

    Returns:
        ``"auto"`` becomes ``max_size // 64``, at least 65,536 (``None`` when
        ``max_size`` is ``None``); other values are returned unchanged.

    Raises:
        ValueError: an invalid value.
    """
    _check.integer("max_size", max_size, minimum=1, none=True)
    if isinstance(max_fragments, bool) or not isinstance(max_fragments, (int, str, type(None))):
        raise TypeError(f"max_fragments must be an int, None or 'auto', not {max_fragments!r}")
    if max_fragments == "auto":
        return None if max_size is None else max(1 << 16, max_size // 64)
    if max_fragments is None or (isinstance(max_fragments, int) and max_fragments > 0):
        return max_fragments
    raise ValueError(f"invalid max_fragments {max_fragments!r}: a positive int, None or 'auto'")


def check_endpoint(
    *,
    path: object,
    sock: object,
    ssl: object,
) -> None:
    """Check the options that say where to listen or connect, shared by both roles.

    Raises:
        TypeError: ``path`` is not a str or path, ``sock`` not a socket, or
            ``ssl`` not an :class:`ssl.SSLContext`.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {path!r}")
    if sock is not None and not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a socket.socket, not {sock!r}")
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext or None, not {ssl!r}")
    if path is not None and sock is not None:
        raise ValueError("path and sock cannot be given together")


def connections_limit(max_connections: int | str | None) -> int | None:
    """The ``max_connections`` of a server as a number (``None``: no limit).

    ``"auto"`` is the file-descriptor limit of the process less an eighth (at
    least 32) for everything else; no limit where the platform has none.

    Raises:
        TypeError, ValueError: anything but a positive int, ``None`` or ``"auto"``.
    """
    if max_connections == "auto":
        try:
            import resource
        except ImportError:  # pragma: no cover - Windows
            return None
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return None
        return max(1, soft - max(32, soft // 8))
    if isinstance(max_connections, str):
        raise ValueError(f"max_connections must be an int, None or 'auto', not {max_connections!r}")
    result: int | None = _check.integer("max_connections", max_connections, minimum=1, none=True)
    return result

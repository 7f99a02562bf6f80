"""permessage-deflate (RFC 7692) on zlib, for both roles.

Negotiation:

- :func:`client_offer` builds the client's ``Sec-WebSocket-Extensions`` offer
  from :class:`DeflateOptions`; :func:`client_accept` validates the server's
  answer and returns the configured :class:`PerMessageDeflate`.
- :func:`server_accept` picks the first acceptable offer, returns the
  response parameters and the configured :class:`PerMessageDeflate`.

Window bits of 8: zlib refuses a 256-byte window for raw deflate streams, so
when the peer asks us to compress with ``max_window_bits=8`` we compress with
9. This is safe: with a 512-byte window zlib never emits a match distance
above 250 (the window minus its 262-byte lookahead), so every stream it
produces only refers back 256 bytes or less and a peer inflating with an
8-bit window decodes it. Inflating always uses a 15-bit window, which decodes
any stream made with a smaller one, including streams from peers that ignore a
``client_max_window_bits`` they agreed to (some do).

Compressing without context takeover, each message is compressed by a zlib
stream taken from a small pool shared by every connection with the same
settings and ended with ``Z_FULL_FLUSH`` (which empties the stream's history,
so the next message never refers back to this one), instead of a stream
created and freed for each message: the connection holds no compressor
between messages and no message pays for setting one up.

Compression is done by the standard library's :mod:`zlib` unless
:func:`set_deflate_backend` names another module with its API, such as
ISA-L's (``isal.isal_zlib``, from the ``isal`` package): at level 1, about
1.4x faster than zlib for 1 KiB messages and 2.3x for 16 KiB, with output
5-10% smaller. Any backend produces standard deflate streams: peers see no
difference. Each connection keeps the backend it started with.
Decompression always uses :mod:`zlib`: a new ISA-L decompressor costs more
to set up than it saves on messages of a few KiB, and without context
takeover each message needs a new one.

Decompression is bounded: the output of each frame is produced with
``decompressobj.decompress(data, max_length)`` where ``max_length`` is what
is left of the message size limit plus one, so a decompression bomb is
detected after at most ``max_message_size + 1`` bytes were produced, never
more.
"""

from __future__ import annotations

import importlib
import os
import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fastws import limits
from fastws.exceptions import InvalidHandshake, PayloadTooBig, ProtocolError
from fastws.frames import CLOSE_INVALID_DATA

__all__ = [
    "EXTENSION_NAME",
    "DeflateOptions",
    "PerMessageDeflate",
    "client_accept",
    "client_offer",
    "deflate_backend",
    "server_accept",
    "set_deflate_backend",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
# Below this many compressed bytes, a final frame is inflated in one call with
# the tail appended (a copy is cheaper than a second call).
_JOIN_TAIL_BELOW = 4096
# Idle compressors for messages without context takeover, per (backend, level,
# window bits, memLevel). list.pop() and list.append() are atomic: threads
# share them.
_POOLS: dict[tuple[str, int, int, int], list[Any]] = {}
# What the backend's compressobj() must accept, and what a backend must have.
_LEVELS = range(-1, 10)
_NEEDED = ("compressobj", "DEFLATED", "Z_SYNC_FLUSH", "Z_FULL_FLUSH")


class _Backend:
    """A compressor implementation with zlib's API, and the levels it takes."""

    __slots__ = ("compressobj", "default", "full", "levels", "module", "name", "sync")

    def __init__(self, module: ModuleType) -> None:
        missing = [name for name in _NEEDED if not hasattr(module, name)]
        if missing:
            raise TypeError(
                f"deflate backend {module!r} lacks zlib's {', '.join(missing)}: "
                "pass a module with zlib's API, such as isal.isal_zlib"
            )
        self.module = module
        self.name = getattr(module, "__name__", repr(module))
        self.compressobj = module.compressobj
        self.sync = module.Z_SYNC_FLUSH
        self.full = module.Z_FULL_FLUSH
        # zlib takes every level; another backend is asked for each.
        levels = [level for level in _LEVELS if module is zlib or _takes(module, level)]
        if not [level for level in levels if level >= 0]:
            raise TypeError(f"deflate backend {module!r} refuses every compression level")
        self.levels = levels
        default = getattr(module, "Z_DEFAULT_COMPRESSION", None)
        self.default = default if default in levels else max(levels)

    def level(self, level: int) -> int:
        """The backend's level for ``level``: the same, else its nearest below, or its default."""
        if level in self.levels:
            return level
        below = [known for known in self.levels if 0 <= known <= level]
        if level == -1 or not below:
            return self.default
        return max(below)


def _takes(module: ModuleType, level: int) -> bool:
    """Whether ``module.compressobj()`` accepts ``level``."""
    try:
        module.compressobj(level, module.DEFLATED, -15, limits.DEFLATE_MEM_LEVEL)
    except Exception:  # the backend's own error class: a level it does not have
        return False
    return True


#: The backends FASTWS_DEFLATE_BACKEND names.
_NAMED = {"zlib": "zlib", "isal": "isal.isal_zlib"}


def _from_environment() -> _Backend:
    """The backend named by ``FASTWS_DEFLATE_BACKEND`` (``zlib``, the default, or ``isal``)."""
    value = os.environ.get("FASTWS_DEFLATE_BACKEND", "") or "zlib"
    if value not in _NAMED:
        raise ValueError(f"FASTWS_DEFLATE_BACKEND must be 'zlib' or 'isal', not {value!r}")
    try:
        return _Backend(importlib.import_module(_NAMED[value]))
    except ImportError as exc:
        raise ImportError(
            f"FASTWS_DEFLATE_BACKEND={value} needs the isal package: pip install pyfastws[isal]"
        ) from exc


_BACKEND = _from_environment()


def set_deflate_backend(module: ModuleType | None) -> None:
    """Compress with ``module`` instead of :mod:`zlib` (``None``: zlib again).

    ``module`` must have zlib's API (``compressobj``, ``DEFLATED`` and the
    flush constants): ``isal.isal_zlib`` (``pip install pyfastws[isal]``) is
    the fast one. Decompression always uses :mod:`zlib`. The environment
    variable ``FASTWS_DEFLATE_BACKEND=isal`` does the same when fastws is
    imported, without code (``zlib``, or unset: zlib).

    A compression level the backend does not have is replaced by its nearest
    level below (ISA-L has 0-3: 9 becomes 3), and ``-1`` by the backend's
    ``Z_DEFAULT_COMPRESSION``; ``mem_level`` is passed on (a backend may
    ignore it). Connections opened before the call keep the backend they
    started with.

    Raises:
        TypeError: ``module`` does not have zlib's API.
    """
    global _BACKEND
    _BACKEND = _Backend(zlib if module is None else module)


def deflate_backend() -> ModuleType:
    """The module that compresses for connections opened from now on (:mod:`zlib` by default).

    ``FASTWS_DEFLATE_BACKEND=isal`` in the environment makes it ISA-L's from
    the start; :func:`set_deflate_backend` changes it.
    """
    return _BACKEND.module


_PARAMS = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)


@dataclass(frozen=True, slots=True)
class DeflateOptions:
    """Settings for permessage-deflate.

    The defaults favour CPU and keep memory modest: level 1 (zlib's fastest,
    as aiohttp and gorilla/websocket use), ``mem_level=5``; a server keeping
    its compressor between messages uses a 4 KiB window (about 32 KiB of
    compressor state per connection instead of about 256 KiB with zlib's
    defaults), one without context takeover shares compressors with a 32 KiB
    window between connections. Decompression always uses a 32 KiB window
    (about 40 KiB of state).

    Attributes:
        server_no_context_takeover: server role: reset our compressor after
            every message and say so; client role: ask the server to do so.
        client_no_context_takeover: server role: require the client to reset
            its compressor after every message; client role: reset ours and say so.
        server_max_window_bits: 8-15 or ``None``. Server role: the largest
            window our compressor uses (announced in the response); ``None``:
            2^12 (``limits.DEFLATE_KEPT_WINDOW_BITS``, announced) when the
            compressor keeps its context, 2^15 with
            ``server_no_context_takeover``, lowered to what the client asks.
            Client role: the largest window we ask the server to use (sent in
            the offer; ``None``: no limit asked).
        client_max_window_bits: 8-15 or ``None``. Server role: the largest window
            we ask the client to use, when the client offers to honour it.
            Client role: the largest window our compressor uses; ``None`` still
            announces that we honour the parameter.
        compress_level: zlib compression level, 0-9 (1 fastest, 9 smallest).
        mem_level: zlib memLevel, 1-9 (memory of the compressor's hash tables).
        threshold: messages shorter than this many bytes are sent
            uncompressed unless ``compress=True`` is passed when sending.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    compress_level: int = limits.DEFLATE_LEVEL
    mem_level: int = limits.DEFLATE_MEM_LEVEL
    threshold: int = limits.DEFLATE_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            value = getattr(self, name)
            if value is not None and not 8 <= value <= 15:
                raise ValueError(f"{name} must be between 8 and 15, got {value}")
        if not 0 <= self.compress_level <= 9 and self.compress_level != -1:
            raise ValueError("compress_level must be between 0 and 9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")
        if self.threshold < 0:
            raise ValueError("threshold must be >= 0")


class PerMessageDeflate:
    """A negotiated permessage-deflate instance: compresses and decompresses messages.

    Args:
        local_no_context_takeover: reset our compressor after each message.
        remote_no_context_takeover: the peer resets its compressor after each
            message (we then reset our decompressor too, freeing memory).
        local_max_window_bits: our compressor's window (8 means 9, see module doc).
        remote_max_window_bits: the peer's window (informational: our
            decompressor always uses 15).
        compress_level: zlib level.
        mem_level: zlib memLevel.
        threshold: smallest message compressed by default.
    """

    __slots__ = (
        "_backend",
        "_compressor",
        "_decompressor",
        "_pool",
        "compress_level",
        "local_max_window_bits",
        "local_no_context_takeover",
        "mem_level",
        "remote_max_window_bits",
        "remote_no_context_takeover",
        "threshold",
    )

    name = EXTENSION_NAME

    def __init__(
        self,
        *,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
        remote_max_window_bits: int = 15,
        compress_level: int = limits.DEFLATE_LEVEL,
        mem_level: int = limits.DEFLATE_MEM_LEVEL,
        threshold: int = limits.DEFLATE_THRESHOLD,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.threshold = threshold
        self._backend = backend = _BACKEND
        self._compressor: Any = None
        self._decompressor: Any = None
        # Without context takeover: the idle compressors with our settings.
        self._pool: list[Any] | None = None
        if local_no_context_takeover:
            key = (backend.name, compress_level, max(local_max_window_bits, 9), mem_level)
            self._pool = _POOLS.setdefault(key, [])

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"remote_max_window_bits={self.remote_max_window_bits})"
        )

    def compress(self, data: bytes | bytearray | memoryview, fin: bool = True) -> bytes:
        """Compress one frame's worth of a message.

        Args:
            data: the payload to compress.
            fin: whether it ends the message (the trailing ``00 00 ff ff`` is
                then removed, RFC 7692 section 7.2.1).

        Returns:
            The compressed bytes to put in the frame.
        """
        c = self._compressor
        pool = self._pool
        if c is None:
            if pool:
                try:
                    c = pool.pop()
                except IndexError:  # another thread took the last one
                    pass
            if c is None:
                backend = self._backend
                c = backend.compressobj(
                    backend.level(self.compress_level),
                    backend.module.DEFLATED,
                    -max(self.local_max_window_bits, 9),
                    self.mem_level,
                )
            self._compressor = c
        if not fin:
            part: bytes = c.compress(data) + c.flush(self._backend.sync)
            return part
        out: bytes
        if pool is None:
            out = c.compress(data) + c.flush(self._backend.sync)
        else:
            # The stream forgets this message: ready for the next one, of any connection.
            out = c.compress(data) + c.flush(self._backend.full)
            self._compressor = None
            if len(pool) < limits.DEFLATE_POOL:
                pool.append(c)
        if out.endswith(_TAIL):
            return out[:-4]
        return out

    def decompress(
        self, data: bytes | bytearray | memoryview, fin: bool, max_size: int | None
    ) -> bytes:
        """Decompress one frame of a compressed message.

        Args:
            data: the frame's payload.
            fin: whether the frame ends the message.
            max_size: the most bytes the output may hold (what is left of the
                message size limit), or ``None`` for no limit.

        Returns:
            The decompressed bytes.

        Raises:
            PayloadTooBig: the output would exceed ``max_size`` (never more than
                ``max_size + 1`` bytes are produced).
            ProtocolError: 1007 when the data is not a valid deflate stream.
        """
        d = self._decompressor
        if d is None:
            # Always a full window: it inflates any stream, also from peers
            # that ignore a client_max_window_bits they agreed to.
            d = self._decompressor = zlib.decompressobj(-15)
        out: bytes
        try:
            if fin and len(data) < _JOIN_TAIL_BELOW:
                # One call: the tail copied after the data is cheaper than a second call.
                out = d.decompress(bytes(data) + _TAIL, 0 if max_size is None else max_size + 1)
                if max_size is not None and (len(out) > max_size or d.unconsumed_tail):
                    raise PayloadTooBig("decompressed message exceeds the size limit")
            elif max_size is None:
                out = d.decompress(data)
                if fin:
                    out += d.decompress(_TAIL)
            else:
                out = d.decompress(data, max_size + 1)
                if len(out) > max_size or d.unconsumed_tail:
                    raise PayloadTooBig("decompressed message exceeds the size limit")
                if fin:
                    more = d.decompress(_TAIL, max_size - len(out) + 1)
                    if more:
                        out += more
                        if len(out) > max_size or d.unconsumed_tail:
                            raise PayloadTooBig("decompressed message exceeds the size limit")
        except zlib.error as exc:
            self._decompressor = None
            raise ProtocolError(CLOSE_INVALID_DATA, f"invalid compressed data: {exc}") from None
        except PayloadTooBig:
            self._decompressor = None
            raise
        if fin and (self.remote_no_context_takeover or d.eof):
            self._decompressor = None
        return out


def _parse_bits(name: str, value: str | None, *, optional: bool) -> int | None:
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} needs a value")
    if not value.isdigit() or len(value) > 2 or value.startswith("0"):
        raise ValueError(f"invalid {name} value {value!r}")
    bits = int(value)
    if not 8 <= bits <= 15:
        raise ValueError(f"{name} must be between 8 and 15")
    return bits


def _params_dict(params: list[tuple[str, str | None]]) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name not in _PARAMS:
            raise ValueError(f"unknown permessage-deflate parameter {name}")
        if name in seen:
            raise ValueError(f"repeated permessage-deflate parameter {name}")
        if name.endswith("no_context_takeover") and value is not None:
            raise ValueError(f"{name} takes no value")
        seen[name] = value
    return seen


def client_offer(options: DeflateOptions) -> list[tuple[str, str | None]]:
    """Return the client's offer parameters for ``options``."""
    params: list[tuple[str, str | None]] = []
    if options.server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if options.client_no_context_takeover:
        params.append(("client_no_context_takeover", None))
    if options.server_max_window_bits is not None:
        params.append(("server_max_window_bits", str(options.server_max_window_bits)))
    if options.client_max_window_bits is not None:
        params.append(("client_max_window_bits", str(options.client_max_window_bits)))
    else:
        params.append(("client_max_window_bits", None))
    return params


def client_accept(
    params: list[tuple[str, str | None]], options: DeflateOptions
) -> PerMessageDeflate:
    """Validate the server's permessage-deflate response (client side).

    Args:
        params: the response's parameters.
        options: what we offered.

    Returns:
        The configured extension.

    Raises:
        InvalidHandshake: the response is malformed or does not fit the offer.
    """
    try:
        p = _params_dict(params)
        server_bits = (
            _parse_bits("server_max_window_bits", p["server_max_window_bits"], optional=False)
            if "server_max_window_bits" in p
            else None
        )
        client_bits = (
            _parse_bits("client_max_window_bits", p["client_max_window_bits"], optional=False)
            if "client_max_window_bits" in p
            else None
        )
    except ValueError as exc:
        raise InvalidHandshake(f"invalid permessage-deflate response: {exc}") from None
    # A server that leaves out a parameter we asked for is tolerated: our
    # decompressor then keeps its context and uses a full window, which
    # decodes any stream. A value above what we asked for is an error.
    if (
        options.server_max_window_bits is not None
        and server_bits is not None
        and server_bits > options.server_max_window_bits
    ):
        raise InvalidHandshake("server_max_window_bits larger than requested")
    if client_bits is None:
        client_bits = options.client_max_window_bits or 15
    elif (
        options.client_max_window_bits is not None and client_bits > options.client_max_window_bits
    ):
        raise InvalidHandshake("client_max_window_bits larger than offered")
    return PerMessageDeflate(
        local_no_context_takeover=(
            options.client_no_context_takeover or "client_no_context_takeover" in p
        ),
        remote_no_context_takeover="server_no_context_takeover" in p,
        local_max_window_bits=client_bits,
        remote_max_window_bits=server_bits or 15,
        compress_level=options.compress_level,
        mem_level=options.mem_level,
        threshold=options.threshold,
    )


def server_accept(
    params: list[tuple[str, str | None]], options: DeflateOptions
) -> tuple[list[tuple[str, str | None]], PerMessageDeflate] | None:
    """Accept a client's permessage-deflate offer (server side).

    Args:
        params: the offer's parameters.
        options: our settings.

    Returns:
        ``(response parameters, extension)``, or ``None`` when this offer is
        invalid and must be declined.
    """
    try:
        p = _params_dict(params)
        server_req = (
            _parse_bits("server_max_window_bits", p["server_max_window_bits"], optional=False)
            if "server_max_window_bits" in p
            else None
        )
        client_req = (
            _parse_bits("client_max_window_bits", p["client_max_window_bits"], optional=True)
            if "client_max_window_bits" in p
            else None
        )
    except ValueError:
        return None
    response: list[tuple[str, str | None]] = []
    server_nct = options.server_no_context_takeover or "server_no_context_takeover" in p
    if server_nct:
        response.append(("server_no_context_takeover", None))
    # Repeated when the client offered it (RFC 7692 section 7.1.1.2 allows
    # it; some clients, gorilla/websocket among them, reject a response
    # without it), or required when we ask for it.
    client_nct = options.client_no_context_takeover
    if client_nct or "client_no_context_takeover" in p:
        response.append(("client_no_context_takeover", None))
    server_bits = 15
    if options.server_max_window_bits is not None:
        server_bits = options.server_max_window_bits
    elif not server_nct:
        # A compressor kept for the connection's life: a small window.
        server_bits = limits.DEFLATE_KEPT_WINDOW_BITS
    if server_req is not None:
        server_bits = min(server_bits, server_req)
    if server_bits < 15 or server_req is not None:
        response.append(("server_max_window_bits", str(server_bits)))
    client_bits = 15
    if "client_max_window_bits" in p:
        if client_req is not None:
            client_bits = client_req
        if options.client_max_window_bits is not None:
            client_bits = min(client_bits, options.client_max_window_bits)
            response.append(("client_max_window_bits", str(client_bits)))
    ext = PerMessageDeflate(
        local_no_context_takeover=server_nct,
        # Some clients keep their context after offering client_no_context_takeover:
        # our decompressor relies on it only when we required it.
        remote_no_context_takeover=client_nct,
        local_max_window_bits=server_bits,
        remote_max_window_bits=client_bits,
        compress_level=options.compress_level,
        mem_level=options.mem_level,
        threshold=options.threshold,
    )
    return response, ext

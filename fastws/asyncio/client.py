"""The asyncio WebSocket client: :func:`connect` and :class:`ClientConnection`.

``connect()`` opens one connection (``await connect(uri)``, ``async with
connect(uri) as ws``) or, iterated (``async for ws in connect(uri)``), a new
one each time the previous one is closed or fails to open, waiting longer
and longer between failed attempts. It follows HTTP redirects and goes
through HTTP and SOCKS proxies (see :mod:`fastws.asyncio._proxy`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import socket
import ssl as ssl_module
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from fastws import _check, limits
from fastws._client import USER_AGENT, Redirects, server_tls_error, user_agent_option
from fastws._proxy import Proxy, ProxyOptions
from fastws.asyncio._options import Opener, check_endpoint, compression_options, fragments_limit
from fastws.asyncio._proxy import connect_http_proxy, connect_socks_proxy, is_tls_in_tls_error
from fastws.asyncio.connection import CLIENT_LOGGER, Connection, LoggerLike, check_options
from fastws.events import Response
from fastws.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    ProxyError,
)
from fastws.handshake import header_pairs, header_value, parse_uri
from fastws.protocol import ClientProtocol

__all__ = ["ClientConnection", "backoff", "connect", "process_exception", "unix_connect"]

#: Statuses that :func:`process_exception` takes for a passing server or proxy failure.
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class ClientConnection(Connection):
    """The client side of a WebSocket connection, returned by :func:`connect`.

    See :class:`~fastws.asyncio.Connection` for receiving, sending and closing.
    """

    __slots__ = ("_opened",)

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._opened: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the HTTP upgrade request."""
        super().connection_made(transport)
        proto = self._proto
        assert isinstance(proto, ClientProtocol)
        proto.send_request(proto.connect())
        self._flush()

    def _on_failure(self) -> None:
        # During the handshake: report a failed upgrade at once.
        if not self._opened.done() and self._proto.close_exc is not None:
            self._fail_open(self._proto.close_exc)

    def _on_response(self, response: Response) -> None:
        # The event means a valid 101; the state may already be past OPEN when
        # the server's first frames (even its close) came in the same read.
        self._on_open()
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            error = self._proto.close_exc
            if error is None:
                error = InvalidHandshake("connection closed during the opening handshake")
                if exc is not None:
                    error.__cause__ = exc
            self._fail_open(error)

    def _on_open_timeout(self) -> None:
        super()._on_open_timeout()
        if not self._opened.done():
            self._opened.set_exception(TimeoutError("timed out during the opening handshake"))

    def _fail_open(self, error: BaseException) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)
        self._abort()


def process_exception(exc: Exception) -> Exception | None:
    """Tell whether a failed connection attempt is worth retrying (the default).

    ``async for ws in connect(uri)`` calls the ``process_exception`` option
    with each error that made a connection attempt fail. Returning ``None``
    means "transient: wait and try again"; returning an exception (``exc``
    itself or another one) means "fatal": it is raised and the loop ends.

    Transient here: network errors (:class:`OSError`, except TLS errors such
    as a certificate that does not verify), timeouts, a server or proxy that
    closed the connection before answering, and HTTP statuses 500, 502, 503
    and 504 from the server or the proxy. Everything else is fatal: an
    invalid URI, a 4xx answer, a TLS failure, a refused redirect.

    Args:
        exc: the error.

    Returns:
        ``None`` to retry, or the exception to raise.
    """
    if isinstance(exc, ssl_module.SSLError):
        return exc
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)):
        return None
    if isinstance(exc, (InvalidMessage, InvalidProxyMessage)) and isinstance(
        exc.__cause__, (EOFError, OSError)
    ):
        return None
    if isinstance(exc, (InvalidStatus, InvalidProxyStatus)) and exc.status in _TRANSIENT_STATUSES:
        return None
    return exc


def backoff(
    initial_delay: float = limits.BACKOFF_INITIAL_DELAY,
    min_delay: float = limits.BACKOFF_MIN_DELAY,
    max_delay: float = limits.BACKOFF_MAX_DELAY,
    factor: float = limits.BACKOFF_FACTOR,
) -> Iterator[float]:
    """The delays, in seconds, between reconnection attempts (exponential backoff).

    The first is a random fraction of ``initial_delay``, so that the clients
    of a restarted server do not all come back at once; then ``min_delay``,
    multiplied by ``factor`` each time up to ``max_delay``, which repeats.
    :class:`connect` uses it with the defaults of :mod:`fastws.limits` or the
    ``FASTWS_BACKOFF_*`` (else ``WEBSOCKETS_BACKOFF_*``) environment variables.

    Yields:
        How long to wait before the next attempt.
    """
    yield random.random() * initial_delay
    delay = min_delay
    while delay < max_delay:
        yield delay
        delay *= factor
    while True:
        yield max_delay


def _environment_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    for prefix in ("FASTWS_", "WEBSOCKETS_"):
        variable = prefix + name
        text = os.environ.get(variable)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{variable} must be a number, got {text!r}") from None
        _check.seconds(variable, value)
        if value < minimum:
            raise ValueError(f"{variable} must be at least {minimum}, got {text!r}")
        return value
    return default


def _default_delays() -> Callable[[], Iterator[float]]:
    """:func:`backoff` with the settings of the environment (read at the call)."""
    return functools.partial(
        backoff,
        _environment_number("BACKOFF_INITIAL_DELAY", limits.BACKOFF_INITIAL_DELAY),
        _environment_number("BACKOFF_MIN_DELAY", limits.BACKOFF_MIN_DELAY),
        _environment_number("BACKOFF_MAX_DELAY", limits.BACKOFF_MAX_DELAY),
        _environment_number("BACKOFF_FACTOR", limits.BACKOFF_FACTOR, minimum=1.0),
    )


class connect(Opener["ClientConnection"]):
    """Open a WebSocket client connection, or keep one open.

    Use as ``async with connect(uri) as ws:`` (closed on exit),
    ``ws = await connect(uri)``, or ``async for ws in connect(uri):`` to get
    a new connection each time the previous one is closed or fails to open
    (see :func:`process_exception` and :func:`backoff`).

    Redirects (300, 301, 302, 303, 307, 308 with a ``Location``) are
    followed, up to :data:`fastws.limits.MAX_REDIRECTS` times, within
    ``open_timeout``; ``http``/``https`` locations become ``ws``/``wss``;
    a redirect from ``wss`` to ``ws`` is refused (:class:`SecurityError`);
    ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` headers are
    not sent on to another host, port or scheme.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        path: connect to this unix socket instead of the URI's host and port
            (the URI still provides the ``Host`` header and the path).
        sock: an already connected socket.
        ssl: client :class:`ssl.SSLContext` for ``wss://`` (default:
            :func:`ssl.create_default_context`).
        server_hostname: the host name for TLS verification (default: the URI's host).
        origin: value of the ``Origin`` header.
        additional_headers: extra request headers: a mapping or ``(name, value)`` pairs.
        user_agent_header: ``User-Agent`` header (default ``fastws/<version>``);
            ``None`` to send none. Also sent to an HTTP proxy.
        user_agent: the same as ``user_agent_header`` (give one of them).
        subprotocols: subprotocols to offer, in order of preference.
        compression: ``"deflate"``, a ``DeflateOptions``, or ``None``.
        proxy: ``True`` (default): the proxy the environment gives for the
            URI (``https_proxy``, ``no_proxy``, ...); a proxy URL
            (``http://``, ``https://``, ``socks5h://``, ``socks5://``,
            ``socks4a://``, ``socks4://``; SOCKS needs ``python-socks``);
            ``None``: connect directly. Not used with ``path`` or ``sock``.
        proxy_ssl: :class:`ssl.SSLContext` for an ``https://`` proxy.
        proxy_server_hostname: host name to verify the ``https://`` proxy's
            certificate for (default: the proxy's host).
        proxy_headers: extra headers of the ``CONNECT`` request to an HTTP proxy.
        process_exception: ``(exc) -> exception or None``: when iterating,
            whether an error is retried (``None``) or raised (see
            :func:`process_exception`, the default).
        reconnect_delays: when iterating, a callable returning the delays
            between attempts (default: :func:`backoff`).
        max_size: largest accepted message in bytes; larger ones close with 1009.
        max_fragments: most frames in one message; see :class:`fastws.asyncio.serve`.
        max_queue: see :class:`fastws.asyncio.serve`.
        write_limit: see :class:`fastws.asyncio.serve`.
        ping_interval: seconds between keepalive pings (``None``: off).
        ping_timeout: seconds to wait for a keepalive pong before closing with 1011.
        open_timeout: seconds allowed for opening: proxy, TCP connect, TLS,
            redirects and the handshake.
        close_timeout: seconds allowed for the closing handshake.
        stream_messages: deliver frames as they arrive (see ``serve``).
        logger: the connection's logger (default ``fastws.client``); a
            reconnecting loop logs its failed attempts there.
        create_connection: the class of the connection (a
            :class:`ClientConnection` subclass, or a callable that takes the
            same arguments and returns one).

    Raises:
        InvalidStatus: the server refused the upgrade (``.response`` has
            its answer).
        InvalidHandshake: the opening handshake failed.
        ProxyError: the proxy refused the connection (:class:`InvalidProxyStatus`)
            or did not answer as one (:class:`InvalidProxyMessage`).
        SecurityError: a redirect that is not followed.
        TimeoutError: the connection did not open within ``open_timeout``.
        OSError: the TCP connection failed.
    """

    def __init__(
        self,
        uri: str,
        *,
        path: str | os.PathLike[str] | None = None,
        sock: socket.socket | None = None,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        user_agent_header: str | None = USER_AGENT,
        user_agent: str | None = USER_AGENT,
        subprotocols: Sequence[str] | None = None,
        compression: str | Any | None = "deflate",
        proxy: str | Literal[True] | None = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        proxy_server_hostname: str | None = None,
        proxy_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        reconnect_delays: Callable[[], Iterable[float]] | None = None,
        max_size: int | None = limits.MAX_MESSAGE_SIZE,
        max_fragments: int | Literal["auto"] | None = "auto",
        max_queue: int = limits.MAX_QUEUE,
        write_limit: int | tuple[int, int] = limits.WRITE_LIMIT,
        ping_interval: float | None = limits.PING_INTERVAL,
        ping_timeout: float | None = limits.PING_TIMEOUT,
        open_timeout: float | None = limits.OPEN_TIMEOUT,
        close_timeout: float = limits.CLOSE_TIMEOUT,
        stream_messages: bool = True,
        logger: LoggerLike | None = None,
        create_connection: Callable[..., ClientConnection] | None = None,
    ) -> None:
        if not isinstance(uri, str):
            raise TypeError(f"uri must be a str, not {uri!r}")
        check_endpoint(path=path, sock=sock, ssl=ssl)
        header_value("server_hostname", server_hostname)
        self._secure, self._host, self._port, _ = parse_uri(uri)
        if ssl is not None and not self._secure:
            raise ValueError("ssl= was given for a ws:// URI; use wss://")
        user_agent_kwargs = user_agent_option(user_agent_header, user_agent)
        self._proxy = ProxyOptions(
            proxy,
            proxy_ssl,
            proxy_server_hostname,
            proxy_headers,
            direct=path is not None or sock is not None,
        )
        # Reconnection.
        if not callable(process_exception):
            raise TypeError(f"process_exception must be callable, not {process_exception!r}")
        _check.callable_or_none("reconnect_delays", reconnect_delays)
        self._process_exception: Callable[[Exception], Exception | None] = process_exception
        self._reconnect_delays: Callable[[], Iterable[float]] = (
            reconnect_delays or _default_delays()
        )

        self._uri: str = uri
        self._path: str | os.PathLike[str] | None = path
        self._sock: socket.socket | None = sock
        self._ssl: ssl_module.SSLContext | None = ssl
        self._server_hostname: str | None = server_hostname
        self._headers: list[tuple[str, str]] = header_pairs(
            "additional_headers", additional_headers
        )
        self._protocol_kwargs: dict[str, Any] = {
            "origin": origin,
            "subprotocols": subprotocols,
            "compression": compression_options(compression, server=False),
            "max_message_size": max_size,
            "max_fragments": fragments_limit(max_size, max_fragments),
            "stream_messages": stream_messages,
        }
        self._protocol_kwargs.update(user_agent_kwargs)
        self._connection_options: dict[str, Any] = {
            "max_queue": max_queue,
            "write_limit": write_limit,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "open_timeout": open_timeout,
            "close_timeout": close_timeout,
            "logger": logger if logger is not None else CLIENT_LOGGER,
        }
        self._logger: LoggerLike = self._connection_options["logger"]
        _check.callable_or_none("create_connection", create_connection)
        if isinstance(create_connection, type) and not issubclass(
            create_connection, ClientConnection
        ):
            raise TypeError(
                f"create_connection must be a ClientConnection subclass, not {create_connection!r}"
            )
        self._create_connection: Callable[..., ClientConnection] = (
            create_connection or ClientConnection
        )
        # Every option is checked now, not once the TCP connection is up.
        check_options(**self._connection_options)
        probe = ClientProtocol(uri, additional_headers=self._headers, **self._protocol_kwargs)
        self._user_agent: str | None = probe.user_agent
        self._open_timeout: float | None = open_timeout
        self._default_ssl: ssl_module.SSLContext | None = None

    # -- opening one connection -------------------------------------------

    async def _open(self) -> ClientConnection:
        if self._open_timeout is None:
            return await self._follow_redirects()
        try:
            return await asyncio.wait_for(self._follow_redirects(), self._open_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("timed out while opening the connection") from None

    async def _follow_redirects(self) -> ClientConnection:
        redirects = Redirects(
            self._uri, self._headers, path=self._path is not None, sock=self._sock is not None
        )
        while True:
            try:
                return await self._open_one(redirects.uri, redirects.headers)
            except InvalidStatus as exc:
                redirects.follow(exc)  # or raises

    def _tls(self, secure: bool, host: str) -> dict[str, Any]:
        if not secure:
            return {"ssl": None, "server_hostname": None}
        context = self._ssl
        if context is None:
            if self._default_ssl is None:
                self._default_ssl = ssl_module.create_default_context()
            context = self._default_ssl
        return {"ssl": context, "server_hostname": self._server_hostname or host}

    async def _open_one(self, uri: str, headers: list[tuple[str, str]]) -> ClientConnection:
        secure, host, port, _ = parse_uri(uri)
        proto = ClientProtocol(uri, additional_headers=headers, **self._protocol_kwargs)
        conn = self._create_connection(proto, **self._connection_options)
        tls = self._tls(secure, host)
        proxy = self._proxy.for_uri(secure, host, port)
        loop = asyncio.get_running_loop()
        try:
            if self._path is not None:
                await loop.create_unix_connection(lambda: conn, os.fspath(self._path), **tls)
            elif self._sock is not None:
                if self._sock.family == getattr(socket, "AF_UNIX", None):
                    await loop.create_unix_connection(lambda: conn, sock=self._sock, **tls)
                else:
                    await loop.create_connection(lambda: conn, sock=self._sock, **tls)
            elif proxy is None:
                await loop.create_connection(lambda: conn, host, port, **tls)
            elif proxy.is_socks:
                tunnel = await connect_socks_proxy(proxy, host, port)
                try:
                    await loop.create_connection(lambda: conn, sock=tunnel, **tls)
                except BaseException:
                    tunnel.close()
                    raise
            else:
                await self._through_http_proxy(conn, proxy, host, port, tls)
        except ssl_module.SSLCertVerificationError:
            raise
        except ssl_module.SSLError as exc:
            raise server_tls_error(host, port, exc) from exc
        try:
            await conn._opened
        except BaseException:
            conn._abort()
            raise
        return conn

    async def _through_http_proxy(
        self, conn: ClientConnection, proxy: Proxy, host: str, port: int, tls: dict[str, Any]
    ) -> None:
        transport, rest = await connect_http_proxy(
            proxy,
            host,
            port,
            ssl=self._proxy.ssl_for(proxy),
            server_hostname=self._proxy.server_hostname,
            user_agent=self._user_agent,
            headers=self._proxy.headers,
        )
        try:
            if tls["ssl"] is None:
                transport.set_protocol(conn)
                conn.connection_made(transport)
                transport.resume_reading()
                if rest:
                    conn.data_received(rest)
                return
            if rest:
                raise InvalidProxyMessage(f"the proxy {proxy.url} sent data before TLS started")
            loop = asyncio.get_running_loop()
            try:
                secured = await loop.start_tls(
                    transport, conn, tls["ssl"], server_hostname=tls["server_hostname"]
                )
            except TypeError as exc:
                if not is_tls_in_tls_error(exc):
                    raise
                raise ProxyError(
                    "wss:// through an https:// proxy (TLS in TLS) needs Python 3.11 or later "
                    "on this event loop"
                ) from exc
            assert secured is not None
            conn.connection_made(secured)
        except BaseException:
            transport.abort()
            raise

    async def _shut(self, opened: ClientConnection) -> None:
        await opened.close()

    # -- reconnecting -----------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """A new connection each time the previous one is closed or fails to open.

        Errors that :func:`process_exception` (the option) calls transient
        are retried after the next of ``reconnect_delays``; the delays
        start again after a connection opened. Others are raised. Each
        connection is closed when the loop moves on to the next one (or
        ends: ``break`` closes it once the iterator is dropped).
        """
        delays: Iterator[float] | None = None
        while True:
            try:
                conn = await self._open()
            except Exception as exc:
                try:
                    decision = self._process_exception(exc)
                except Exception as raised:  # raising instead of returning is forgiven
                    decision = raised
                if decision is exc:
                    raise
                if decision is not None:
                    if not isinstance(decision, BaseException):
                        raise TypeError(
                            f"process_exception must return None or an exception, not {decision!r}"
                        ) from exc
                    raise decision from exc
                if delays is None:
                    delays = iter(self._reconnect_delays())
                delay = _check.seconds("a delay of reconnect_delays", next(delays))
                self._logger.info(
                    "could not connect to %s (%s); next attempt in %.2f s",
                    self._uri,
                    traceback.format_exception_only(type(exc), exc)[-1].strip(),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            delays = None
            try:
                yield conn
            finally:
                await conn.close()


def unix_connect(
    path: str | os.PathLike[str] | None = None, uri: str = "ws://localhost/", **options: Any
) -> connect:
    """Open a WebSocket client connection over a unix socket; options as :class:`connect`.

    Args:
        path: the socket path (or pass a connected unix ``sock=``).
        uri: the URI for the ``Host`` header and request path.
        **options: any option of :class:`connect`.
    """
    return connect(uri, path=path, **options)

"""The threaded WebSocket client: :func:`connect` and :class:`ClientConnection`."""

from __future__ import annotations

import os
import selectors
import socket
import ssl as ssl_module
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from fastws import _check, limits
from fastws._client import USER_AGENT, Redirects, server_tls_error, user_agent_option
from fastws._proxy import (
    ConnectAnswer,
    Proxy,
    ProxyOptions,
    connect_request,
    proxy_tls_error,
    socks_arguments,
    socks_refused,
)
from fastws.asyncio._options import check_endpoint, compression_options, fragments_limit
from fastws.events import Response
from fastws.exceptions import InvalidMessage, InvalidProxyMessage, InvalidStatus
from fastws.handshake import header_pairs, header_value, parse_uri
from fastws.protocol import ClientProtocol, State
from fastws.sync._tls import TLSInTLS, has_pending
from fastws.sync.connection import Connection

__all__ = ["ClientConnection", "connect", "unix_connect"]


class ClientConnection(Connection):
    """The client side of a WebSocket connection, returned by :func:`connect`.

    See :class:`~fastws.sync.connection.Connection` for receiving, sending
    and closing. Use it as a context manager to close it on exit.
    """


def connect(
    uri: str,
    *,
    sock: socket.socket | None = None,
    path: str | os.PathLike[str] | None = None,
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
    max_size: int | None = limits.MAX_MESSAGE_SIZE,
    max_fragments: int | Literal["auto"] | None = "auto",
    max_queue: int = limits.MAX_QUEUE,
    ping_interval: float | None = limits.PING_INTERVAL,
    ping_timeout: float | None = limits.PING_TIMEOUT,
    open_timeout: float | None = limits.OPEN_TIMEOUT,
    close_timeout: float = limits.CLOSE_TIMEOUT,
) -> ClientConnection:
    """Open a WebSocket connection; returns once the opening handshake is done.

    Use as ``with connect(uri) as ws:`` (closed on exit) or ``ws = connect(uri)``.
    The options mean what they mean for :class:`fastws.asyncio.connect`, and
    are checked at the call in the same way. Like it, ``connect()`` goes
    through the proxy the environment gives (``proxy=True``, the default) or
    the one given (``http://``, ``https://``, ``socks5h://``, ... ; SOCKS
    needs ``python-socks``), and follows redirects (up to
    :data:`fastws.limits.MAX_REDIRECTS`, all within ``open_timeout``).

    Raises:
        TypeError, ValueError: an option has a wrong type or value.
        InvalidURI: ``uri`` is not a ``ws://`` or ``wss://`` URI.
        InvalidHandshake: the server refused the upgrade (``InvalidStatus``)
            or did not answer with HTTP (``InvalidMessage``).
        ProxyError: the proxy refused the connection (``InvalidProxyStatus``)
            or did not answer as one (``InvalidProxyMessage``).
        SecurityError: a redirect that is not followed.
        TimeoutError: the connection did not open within ``open_timeout``.
        OSError: the TCP connection failed.
    """
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {uri!r}")
    check_endpoint(path=path, sock=sock, ssl=ssl)
    header_value("server_hostname", server_hostname)
    secure, _, _, _ = parse_uri(uri)
    if ssl is not None and not secure:
        raise ValueError("ssl= was given for a ws:// URI; use wss://")
    proxies = ProxyOptions(
        proxy,
        proxy_ssl,
        proxy_server_hostname,
        proxy_headers,
        direct=path is not None or sock is not None,
    )
    _check.integer("max_queue", max_queue, minimum=1)
    _check.seconds("ping_interval", ping_interval, none=True, zero=False)
    _check.seconds("ping_timeout", ping_timeout, none=True)
    _check.seconds("open_timeout", open_timeout, none=True)
    _check.seconds("close_timeout", close_timeout)
    options: dict[str, Any] = {
        "origin": origin,
        "subprotocols": subprotocols,
        "compression": compression_options(compression, server=False),
        "max_message_size": max_size,
        "max_fragments": fragments_limit(max_size, max_fragments),
        "stream_messages": True,
        **user_agent_option(user_agent_header, user_agent),
    }
    headers = header_pairs("additional_headers", additional_headers)
    protocol = ClientProtocol(uri, additional_headers=headers, **options)  # checks the rest
    opener = _Opener(
        sock=sock,
        path=path,
        ssl=ssl,
        server_hostname=server_hostname,
        proxies=proxies,
        user_agent=protocol.user_agent,
        connection_options={
            "max_queue": max_queue,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
        },
        deadline=None if open_timeout is None else time.monotonic() + open_timeout,
    )
    redirects = Redirects(uri, headers, path=path is not None, sock=sock is not None)
    while True:
        try:
            connection = opener.open(protocol)
        except InvalidStatus as exc:
            redirects.follow(exc)  # or raises
            protocol = ClientProtocol(
                redirects.uri, additional_headers=redirects.headers, **options
            )
            continue
        connection._start(f"fastws-client-{connection.id.hex[:8]}")
        return connection


class _Opener:
    """Opens one connection: directly, over a unix socket, or through a proxy; then TLS."""

    def __init__(
        self,
        *,
        sock: socket.socket | None,
        path: str | os.PathLike[str] | None,
        ssl: ssl_module.SSLContext | None,
        server_hostname: str | None,
        proxies: ProxyOptions,
        user_agent: str | None,
        connection_options: dict[str, Any],
        deadline: float | None,
    ) -> None:
        self._sock = sock
        self._path = path
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._proxies = proxies
        self._user_agent = user_agent
        self._connection_options = connection_options
        self._deadline = deadline

    def open(self, protocol: ClientProtocol) -> ClientConnection:
        """Connect, run the opening handshake; the reader thread is not started yet."""
        secure, host, port, _ = parse_uri(protocol.uri)
        rest = b""
        sock: socket.socket | TLSInTLS
        if self._sock is not None:
            sock = self._sock
        elif self._path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(self._deadline))
                sock.connect(os.fspath(self._path))
            except BaseException:
                sock.close()
                raise
        else:
            proxy = self._proxies.for_uri(secure, host, port)
            if proxy is None:
                sock = socket.create_connection((host, port), _remaining(self._deadline))
            elif proxy.is_socks:
                sock = self._through_socks(proxy, host, port)
            else:
                sock, rest = self._through_http_proxy(proxy, host, port)
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                if rest:
                    raise InvalidProxyMessage("the proxy sent data before TLS started")
                sock = self._tls(sock, host, port)
            sock.settimeout(None)
            connection = ClientConnection(
                cast(socket.socket, sock), protocol, **self._connection_options
            )
            _handshake(connection, protocol, self._deadline, rest)
        except BaseException:
            sock.close()
            raise
        return connection

    def _tls(
        self, sock: socket.socket | TLSInTLS, host: str, port: int
    ) -> socket.socket | TLSInTLS:
        context = self._ssl
        if context is None:
            context = self._ssl = ssl_module.create_default_context()
        name = self._server_hostname or host
        sock.settimeout(_remaining(self._deadline))
        try:
            if isinstance(sock, ssl_module.SSLSocket):  # through an https:// proxy
                return TLSInTLS(sock, context, name)
            assert isinstance(sock, socket.socket)
            return context.wrap_socket(sock, server_hostname=name)
        except ssl_module.SSLCertVerificationError:
            raise
        except ssl_module.SSLError as exc:
            raise server_tls_error(host, port, exc) from exc

    def _through_http_proxy(
        self, proxy: Proxy, host: str, port: int
    ) -> tuple[socket.socket, bytes]:
        """A socket tunnelled to ``host:port`` and the bytes after the proxy's answer."""
        sock = socket.create_connection((proxy.host, proxy.port), _remaining(self._deadline))
        try:
            context = self._proxies.ssl_for(proxy)
            if context is not None:
                name = self._proxies.server_hostname or proxy.host
                try:
                    sock = context.wrap_socket(sock, server_hostname=name)
                except ssl_module.SSLCertVerificationError:
                    raise
                except ssl_module.SSLError as exc:
                    raise proxy_tls_error(proxy, exc) from exc
            request = connect_request(proxy, host, port, self._user_agent, self._proxies.headers)
            sock.sendall(request)
            answer = ConnectAnswer(proxy)
            while True:
                sock.settimeout(_remaining(self._deadline))
                try:
                    data = sock.recv(1 << 16)
                except ConnectionError as exc:
                    raise answer.closed(exc) from exc
                if not data:
                    raise answer.closed()
                rest = answer.feed(data)
                if rest is not None:
                    return sock, rest
        except BaseException:
            sock.close()
            raise

    def _through_socks(self, proxy: Proxy, host: str, port: int) -> socket.socket:
        kind, arguments = socks_arguments(proxy)
        from python_socks import ProxyError as SocksError
        from python_socks.sync import Proxy as SocksProxy

        try:
            return SocksProxy(kind, **arguments).connect(
                host, port, timeout=_remaining(self._deadline)
            )
        except (OSError, TimeoutError):  # python-socks's own errors derive from these too
            raise
        except SocksError as exc:
            raise socks_refused(proxy, exc) from exc


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out during the opening handshake")
    return remaining


def _handshake(
    connection: ClientConnection, protocol: ClientProtocol, deadline: float | None, rest: bytes
) -> None:
    """Send the request and read until the response is complete."""
    sock = connection.socket
    protocol.send_request(protocol.connect())
    for chunk in protocol.data_to_send():
        sock.sendall(chunk)
    if rest:  # what a proxy sent after opening the tunnel
        protocol.receive_data(rest)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        while True:
            for event in protocol.events_received():
                if isinstance(event, Response):
                    return
            if protocol.close_exc is not None:
                raise protocol.close_exc
            if protocol.state is not State.CONNECTING:  # pragma: no cover - defensive
                raise InvalidMessage("the connection closed during the opening handshake")
            if not has_pending(sock) and not selector.select(_remaining(deadline)):
                raise TimeoutError("timed out during the opening handshake")
            try:
                data = sock.recv(1 << 16)
            except ssl_module.SSLWantReadError:
                continue
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
    finally:
        selector.close()


def unix_connect(
    path: str | os.PathLike[str] | None = None, uri: str = "ws://localhost/", **options: Any
) -> ClientConnection:
    """:func:`connect` over a unix socket; ``uri`` gives the ``Host`` header and the path."""
    return connect(uri, path=path, **options)

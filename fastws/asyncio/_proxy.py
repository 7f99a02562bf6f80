"""Reaching a WebSocket server through a proxy, for :class:`~fastws.asyncio.connect`.

The I/O on asyncio; the options, the ``CONNECT`` request and the reading of
the proxy's answer are shared with the sync client (:mod:`fastws._proxy`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections.abc import Sequence
from typing import Any, cast

from fastws._proxy import (
    ConnectAnswer,
    Proxy,
    connect_request,
    proxy_tls_error,
    socks_arguments,
    socks_refused,
)
from fastws.exceptions import ProxyError

__all__ = ["connect_http_proxy", "connect_socks_proxy", "is_tls_in_tls_error"]


class _Tunnel(asyncio.Protocol):
    """Sends ``CONNECT`` and reads the proxy's answer; then hands the transport over."""

    def __init__(self, request: bytes, proxy: Proxy) -> None:
        self._request = request
        self._reader = ConnectAnswer(proxy)
        self.transport: asyncio.Transport | None = None
        #: the bytes that followed the proxy's 2xx head in the same read
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        try:
            rest = self._reader.feed(data)
        except ProxyError as exc:  # refused, or not HTTP
            self.answer.set_exception(exc)
            return
        if rest is not None:
            # The transport is handed to the WebSocket connection next: stop
            # reading until it is in place.
            assert self.transport is not None
            self.transport.pause_reading()
            self.answer.set_result(rest)

    def eof_received(self) -> bool:
        self._closed(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def _closed(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(self._reader.closed(exc))


async def connect_http_proxy(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    ssl: ssl_module.SSLContext | None,
    server_hostname: str | None,
    user_agent: str | None,
    headers: Sequence[tuple[str, str]],
) -> tuple[asyncio.Transport, bytes]:
    """Open a tunnel to ``host:port`` through an HTTP proxy.

    Args:
        proxy: an ``http`` or ``https`` proxy.
        host: the WebSocket server's host.
        port: its port.
        ssl: the TLS context for an ``https`` proxy.
        server_hostname: the name to verify the ``https`` proxy's certificate for.
        user_agent: the ``User-Agent`` of the ``CONNECT`` request, if any.
        headers: more headers for the ``CONNECT`` request.

    Returns:
        The transport, reading paused, and the bytes that came after the
        proxy's answer.

    Raises:
        OSError: the proxy cannot be reached.
        ssl.SSLCertVerificationError: the https proxy's certificate does not verify.
        ProxyError: the TLS handshake with the https proxy failed.
        InvalidProxyStatus: the proxy refused the tunnel.
        InvalidProxyMessage: the proxy's answer is not valid HTTP.
    """
    loop = asyncio.get_running_loop()
    request = connect_request(proxy, host, port, user_agent, headers)
    tls: dict[str, Any] = {}
    if proxy.scheme == "https":
        tls = {"ssl": ssl, "server_hostname": server_hostname or proxy.host}
    try:
        transport, tunnel = await loop.create_connection(
            lambda: _Tunnel(request, proxy), proxy.host, proxy.port, **tls
        )
    except ssl_module.SSLCertVerificationError:
        raise
    except ssl_module.SSLError as exc:
        raise proxy_tls_error(proxy, exc) from exc
    try:
        rest = await tunnel.answer
    except BaseException:
        transport.abort()
        raise
    return transport, rest


async def connect_socks_proxy(proxy: Proxy, host: str, port: int) -> socket.socket:
    """Open a connection to ``host:port`` through a SOCKS proxy (python-socks).

    Raises:
        ImportError: python-socks is not installed.
        OSError: the proxy cannot be reached.
        TimeoutError: the proxy did not answer in time.
        ProxyError: the proxy refused the connection or does not speak SOCKS.
    """
    kind, arguments = socks_arguments(proxy)
    from python_socks import ProxyError as SocksError
    from python_socks.async_.asyncio import Proxy as SocksProxy

    socks = SocksProxy(kind, **arguments, loop=asyncio.get_running_loop())
    try:
        return await socks.connect(host, port)
    except (OSError, TimeoutError):  # python-socks's own errors derive from these too
        raise
    except SocksError as exc:
        raise socks_refused(proxy, exc) from exc


def is_tls_in_tls_error(exc: BaseException) -> bool:
    """Whether ``start_tls`` refused a TLS transport (TLS in TLS before Python 3.11)."""
    return isinstance(exc, TypeError) and "not supported by start_tls" in str(exc)

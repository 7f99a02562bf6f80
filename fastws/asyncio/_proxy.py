"""Reaching a WebSocket server through a proxy, for :class:`~fastws.asyncio.connect`.

Two kinds of proxies:

- HTTP proxies (``http://`` and ``https://`` proxy URLs) are built in: the
  client opens a TCP connection to the proxy (TLS for ``https://``), asks
  for a tunnel with ``CONNECT host:port`` and, once the proxy answers 2xx,
  runs the WebSocket handshake (and TLS for ``wss://``) through the tunnel.
  Credentials in the proxy URL (``http://user:pass@proxy:3128``) are sent
  as ``Proxy-Authorization: Basic``.
- SOCKS proxies (``socks5h://``, ``socks5://``, ``socks4a://``,
  ``socks4://``) use the optional ``python-socks`` package.

``proxy=True`` takes the proxy from the environment, as ``urllib`` does
(``wss_proxy``/``ws_proxy``, ``socks_proxy``, ``https_proxy``,
``http_proxy`` and their upper-case forms; ``no_proxy`` names the hosts
reached directly).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import socket
import ssl as ssl_module
import urllib.request
from collections.abc import Sequence
from typing import Any, NamedTuple, cast
from urllib.parse import unquote, urlsplit

from fastws.events import Response
from fastws.exceptions import (
    InvalidHandshake,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyError,
)
from fastws.handshake import HttpHeadParser, parse_status_line

__all__ = [
    "Proxy",
    "check_socks_available",
    "connect_http_proxy",
    "connect_request",
    "connect_socks_proxy",
    "environment_proxy",
    "is_tls_in_tls_error",
    "parse_proxy",
]

_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "socks5h": 1080,
    "socks5": 1080,
    "socks4a": 1080,
    "socks4": 1080,
}

SOCKS_MISSING = (
    "connecting through a SOCKS proxy needs the python-socks package: "
    "pip install 'pyfastws[socks]' (or python-socks[asyncio])"
)


class Proxy(NamedTuple):
    """A parsed proxy URL."""

    #: the URL as given, its password replaced by ``***`` (for messages).
    url: str
    #: ``http``, ``https``, ``socks5h``, ``socks5``, ``socks4a`` or ``socks4``.
    scheme: str
    #: the host, lower-cased (IDNA-encoded when it was not ASCII).
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy (else an HTTP proxy)."""
        return self.scheme.startswith("socks")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


def parse_proxy(url: object) -> Proxy:
    """Parse and check a proxy URL.

    Raises:
        TypeError: ``url`` is not a ``str``.
        InvalidProxy: it is not a proxy URL fastws can use (a ``ValueError``).
    """
    if not isinstance(url, str):
        raise TypeError(f"proxy must be a str, True or None, not {url!r}")
    if any(c < " " or c == "\x7f" for c in url):
        raise InvalidProxy(_redact(url), "it contains control characters")
    shown = _redact(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidProxy(
            shown, f"the scheme {parts.scheme!r} is not one of {', '.join(_DEFAULT_PORTS)}"
        )
    if not parts.hostname:
        raise InvalidProxy(shown, "it has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidProxy(shown, "a proxy URL has no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise InvalidProxy(shown, "its port is not a number in 0..65535") from None
    username = parts.username
    password = parts.password
    if username is not None:
        if password is None:
            raise InvalidProxy(shown, "it has a user name but no password")
        try:
            username = unquote(username, errors="strict")
            password = unquote(password, errors="strict")
        except UnicodeDecodeError:
            raise InvalidProxy(shown, "its user name or password is not UTF-8") from None
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidProxy(shown, "its host name cannot be encoded (IDNA)") from None
    return Proxy(shown, scheme, host, port or _DEFAULT_PORTS[scheme], username, password)


def check_socks_available() -> None:
    """Raise a clear ``ImportError`` when python-socks is not installed."""
    if importlib.util.find_spec("python_socks") is None:
        raise ImportError(SOCKS_MISSING)


def environment_proxy(secure: bool, host: str, port: int) -> str | None:
    """The proxy the environment configures for a ``ws``/``wss`` URI, or ``None``.

    ``no_proxy`` (and the system's bypass list where ``urllib`` reads one)
    is honoured. A proxy for WebSocket (``wss_proxy``/``ws_proxy``) comes
    first, then a SOCKS proxy, then the proxy for HTTPS, then (``ws://``
    only) the proxy for HTTP.
    """
    if urllib.request.proxy_bypass(f"{host}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    schemes = ("wss", "socks", "https") if secure else ("ws", "socks", "https", "http")
    for scheme in schemes:
        url = proxies.get(scheme)
        if url:
            if scheme == "socks" and url.startswith("http://"):
                # Some systems give the SOCKS proxy as an http:// address.
                url = "socks5h://" + url[len("http://") :]
            return url
    return None


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_request(
    proxy: Proxy,
    host: str,
    port: int,
    user_agent: str | None,
    headers: Sequence[tuple[str, str]],
) -> bytes:
    """The ``CONNECT`` request that asks an HTTP proxy for a tunnel to ``host:port``."""
    target = _authority(host, port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if user_agent:
        lines.append(f"User-Agent: {user_agent}")
    if proxy.username is not None and proxy.password is not None:
        credentials = f"{proxy.username}:{proxy.password}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}")
    # The headers were checked at the call (handshake.header_pairs).
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Tunnel(asyncio.Protocol):
    """Sends ``CONNECT`` and reads the proxy's answer; then hands the transport over."""

    def __init__(self, request: bytes, proxy: Proxy) -> None:
        self._request = request
        self._proxy = proxy
        self._parser = HttpHeadParser(is_request=False)
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
            if not self._parser.feed(data):
                return
            status, reason = parse_status_line(self._parser.start_line)
        except InvalidHandshake as exc:
            error = InvalidProxyMessage(
                f"the proxy {self._proxy.url} did not answer CONNECT with valid HTTP: {exc}"
            )
            error.__cause__ = exc
            self.answer.set_exception(error)
            return
        if 200 <= status < 300:
            # The transport is handed to the WebSocket connection next: stop
            # reading until it is in place.
            assert self.transport is not None
            self.transport.pause_reading()
            self.answer.set_result(self._parser.rest())
            return
        response = Response(status, reason, self._parser.headers, b"")
        self.answer.set_exception(
            InvalidProxyStatus(
                f"the proxy {self._proxy.url} refused the connection: {status} {reason}".rstrip(),
                response,
            )
        )

    def eof_received(self) -> bool:
        self._closed(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def _closed(self, exc: Exception | None) -> None:
        if not self.answer.done():
            error = InvalidProxyMessage(
                f"the proxy {self._proxy.url} closed the connection before answering CONNECT"
            )
            error.__cause__ = exc if exc is not None else EOFError("connection closed")
            self.answer.set_exception(error)


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
        raise ProxyError(
            f"the TLS handshake with the proxy {proxy.url} failed ({exc.reason or exc}): "
            "it does not seem to speak TLS (an http:// proxy?)"
        ) from exc
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
    try:
        from python_socks import ProxyError as SocksError
        from python_socks import ProxyType
        from python_socks.async_.asyncio import Proxy as SocksProxy
    except ImportError as exc:
        raise ImportError(SOCKS_MISSING) from exc
    kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    # socks5h and socks4a let the proxy resolve the name; the others resolve it here.
    remote_dns = proxy.scheme in ("socks5h", "socks4a")
    socks = SocksProxy(
        kind,
        proxy.host,
        proxy.port,
        proxy.username,
        proxy.password,
        rdns=remote_dns,
        loop=asyncio.get_running_loop(),
    )
    try:
        return await socks.connect(host, port)
    except (OSError, TimeoutError):  # python-socks's own errors derive from these too
        raise
    except SocksError as exc:
        raise ProxyError(f"the SOCKS proxy {proxy.url} refused the connection: {exc}") from exc


def is_tls_in_tls_error(exc: BaseException) -> bool:
    """Whether ``start_tls`` refused a TLS transport (TLS in TLS before Python 3.11)."""
    return isinstance(exc, TypeError) and "not supported by start_tls" in str(exc)

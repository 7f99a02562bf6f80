"""Proxies for the WebSocket clients (asyncio and sync): the sans-IO parts.

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

This module parses and checks the options, builds the ``CONNECT`` request
and reads the proxy's answer; each front-end does the I/O.
"""

from __future__ import annotations

import base64
import importlib.util
import ssl as ssl_module
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from fastws.events import Response
from fastws.exceptions import (
    InvalidHandshake,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyError,
)
from fastws.handshake import (
    HttpHeadParser,
    ascii_host,
    header_pairs,
    header_value,
    parse_status_line,
)

__all__ = [
    "ConnectAnswer",
    "Proxy",
    "ProxyOptions",
    "check_socks_available",
    "connect_request",
    "environment_proxy",
    "parse_proxy",
    "proxy_tls_error",
    "socks_arguments",
    "socks_refused",
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
    host = ascii_host(parts.hostname)
    if host is None:
        raise InvalidProxy(shown, "its host name cannot be encoded (IDNA)")
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


class ConnectAnswer:
    """Reads an HTTP proxy's answer to ``CONNECT``, as bytes arrive."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy
        self._parser = HttpHeadParser(is_request=False)

    def feed(self, data: bytes) -> bytes | None:
        """Take bytes from the proxy.

        Returns:
            ``None`` while the answer is incomplete; once the proxy opened the
            tunnel (2xx), the bytes that followed its answer (often none).

        Raises:
            InvalidProxyStatus: the proxy refused the tunnel.
            InvalidProxyMessage: the answer is not valid HTTP.
        """
        try:
            if not self._parser.feed(data):
                return None
            status, reason = parse_status_line(self._parser.start_line)
        except InvalidHandshake as exc:
            raise InvalidProxyMessage(
                f"the proxy {self._proxy.url} did not answer CONNECT with valid HTTP: {exc}"
            ) from exc
        if 200 <= status < 300:
            return self._parser.rest()
        response = Response(status, reason, self._parser.headers, b"")
        raise InvalidProxyStatus(
            f"the proxy {self._proxy.url} refused the connection: {status} {reason}".rstrip(),
            response,
        )

    def closed(self, exc: BaseException | None = None) -> InvalidProxyMessage:
        """The error for a proxy that closed the connection before answering."""
        error = InvalidProxyMessage(
            f"the proxy {self._proxy.url} closed the connection before answering CONNECT"
        )
        error.__cause__ = exc if exc is not None else EOFError("connection closed")
        return error


def proxy_tls_error(proxy: Proxy, exc: ssl_module.SSLError) -> ProxyError:
    """The error for a failed TLS handshake with a proxy (raise it from ``exc``)."""
    return ProxyError(
        f"the TLS handshake with the proxy {proxy.url} failed ({exc.reason or exc}): "
        "it does not seem to speak TLS (an http:// proxy?)"
    )


def socks_arguments(proxy: Proxy) -> tuple[Any, dict[str, Any]]:
    """python-socks's ``Proxy`` arguments for a SOCKS proxy: its type and keywords.

    Raises:
        ImportError: python-socks is not installed.
    """
    try:
        from python_socks import ProxyType
    except ImportError as exc:
        raise ImportError(SOCKS_MISSING) from exc
    kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    # socks5h and socks4a let the proxy resolve the name; the others resolve it here.
    return kind, {
        "host": proxy.host,
        "port": proxy.port,
        "username": proxy.username,
        "password": proxy.password,
        "rdns": proxy.scheme in ("socks5h", "socks4a"),
    }


def socks_refused(proxy: Proxy, exc: Exception) -> ProxyError:
    """The error for a SOCKS proxy that refused the connection (raise it from ``exc``)."""
    return ProxyError(f"the SOCKS proxy {proxy.url} refused the connection: {exc}")


class ProxyOptions:
    """A client's proxy options, checked when the client is called.

    Args:
        proxy: ``True`` (the environment's proxy), a proxy URL, or ``None``.
        proxy_ssl: the TLS context for an ``https://`` proxy.
        proxy_server_hostname: the name to verify the ``https://`` proxy's certificate for.
        proxy_headers: more headers for the ``CONNECT`` request.
        direct: a unix socket path or a connected socket was given: no proxy is used.

    Raises:
        TypeError, ValueError: an option has a wrong type or value, or
            options that do not go together were given.
        ImportError: a SOCKS proxy was given and python-socks is not installed.
    """

    def __init__(
        self,
        proxy: object,
        proxy_ssl: ssl_module.SSLContext | None,
        proxy_server_hostname: str | None,
        proxy_headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        direct: bool,
    ) -> None:
        if proxy is False:
            raise TypeError("proxy must be a str, True or None, not False: use proxy=None")
        self._proxy: Proxy | Literal[True] | None = (
            None if proxy is None else True if proxy is True else parse_proxy(proxy)
        )
        if proxy_ssl is not None and not isinstance(proxy_ssl, ssl_module.SSLContext):
            raise TypeError(f"proxy_ssl must be an ssl.SSLContext or None, not {proxy_ssl!r}")
        header_value("proxy_server_hostname", proxy_server_hostname)
        #: the extra headers of the ``CONNECT`` request
        self.headers: list[tuple[str, str]] = header_pairs("proxy_headers", proxy_headers)
        if isinstance(self._proxy, Proxy):
            if direct:
                raise ValueError("proxy cannot be used with path or sock: set proxy=None")
            if self._proxy.is_socks:
                check_socks_available()
            elif proxy_ssl is not None and self._proxy.scheme != "https":
                raise ValueError("proxy_ssl was given for an http:// proxy; use https://")
        self._direct = direct
        self._ssl = proxy_ssl
        #: the name to verify an ``https://`` proxy's certificate for (``None``: its host)
        self.server_hostname: str | None = proxy_server_hostname

    def for_uri(self, secure: bool, host: str, port: int) -> Proxy | None:
        """The proxy to reach ``host:port`` through, or ``None`` to connect directly.

        Raises:
            InvalidProxy: the environment gives a proxy URL that is not valid.
        """
        if self._direct or self._proxy is None:
            return None
        if self._proxy is not True:
            return self._proxy
        url = environment_proxy(secure, host, port)
        return None if url is None else parse_proxy(url)

    def ssl_for(self, proxy: Proxy) -> ssl_module.SSLContext | None:
        """The TLS context for ``proxy``: ``None`` unless it is an ``https://`` proxy."""
        if proxy.scheme != "https":
            return None
        if self._ssl is None:
            self._ssl = ssl_module.create_default_context()
        return self._ssl

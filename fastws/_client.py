"""What the asyncio and sync clients share when they open a connection.

Redirects (which statuses, how a ``Location`` resolves, which headers go
to another origin), the ``User-Agent`` option pair, and the error for a
server that does not speak TLS. Each front-end does its own I/O.
"""

from __future__ import annotations

import ssl as ssl_module
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from fastws import limits
from fastws.exceptions import InvalidHandshake, InvalidStatus, InvalidURI, SecurityError
from fastws.handshake import header_value, parse_uri

__all__ = ["USER_AGENT", "Redirects", "server_tls_error", "user_agent_option"]

#: Statuses whose ``Location`` the client follows.
_REDIRECTS = frozenset({300, 301, 302, 303, 307, 308})
#: Request headers not sent on to another origin after a redirect.
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


class _Default:
    """Marker for "use the state machine's default" (``fastws/<version>``)."""

    def __repr__(self) -> str:
        return "'fastws/<version>'"


#: The default of ``user_agent_header``/``user_agent``: the core's ``fastws/<version>``.
USER_AGENT: Any = _Default()


def user_agent_option(user_agent_header: object, user_agent: object) -> dict[str, Any]:
    """The ``ClientProtocol`` keyword for the two spellings of the ``User-Agent`` option.

    Raises:
        TypeError: both were given, or the value is not a ``str`` or ``None``.
        ValueError: the value is not a valid header value.
    """
    if not isinstance(user_agent_header, _Default) and not isinstance(user_agent, _Default):
        raise TypeError("give user_agent_header or user_agent, not both")
    if isinstance(user_agent_header, _Default):
        user_agent_header = user_agent
    if isinstance(user_agent_header, _Default):
        return {}
    header_value("user_agent_header", user_agent_header)
    return {"user_agent": user_agent_header}


def _redirect_uri(uri: str, location: str) -> str:
    """Resolve a ``Location`` against ``uri``; ``http``/``https`` become ``ws``/``wss``."""
    parts = urlsplit(uri)
    # Resolve as HTTP URLs: urljoin() knows their rules on every Python.
    base = urlunsplit(parts._replace(scheme="https" if parts.scheme == "wss" else "http"))
    target = urlsplit(urljoin(base, location.strip()))
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(target.scheme.lower())
    if scheme is None:
        raise InvalidURI(location, "a redirect to a scheme other than ws, wss, http or https")
    return urlunsplit(target._replace(scheme=scheme, fragment=""))


class Redirects:
    """Follows a client's redirects: at most :data:`fastws.limits.MAX_REDIRECTS`.

    Redirects (300, 301, 302, 303, 307, 308 with a ``Location``) are
    followed; ``http``/``https`` locations become ``ws``/``wss``; a redirect
    from ``wss`` to ``ws`` is refused; ``Authorization``, ``Cookie`` and
    ``Proxy-Authorization`` are not sent on to another host, port or scheme.

    Args:
        uri: the URI of the first attempt.
        headers: its extra request headers.
        path: a unix socket path was given (the host cannot change).
        sock: a connected socket was given (nothing can change).
    """

    def __init__(self, uri: str, headers: list[tuple[str, str]], *, path: bool, sock: bool) -> None:
        #: the URI of the next attempt
        self.uri = uri
        #: the extra request headers of the next attempt
        self.headers = headers
        self._path = path
        self._sock = sock
        self._followed = 0

    def follow(self, exc: InvalidStatus) -> None:
        """Move :attr:`uri` and :attr:`headers` to where ``exc``'s answer redirects.

        Raises:
            InvalidStatus: ``exc`` itself, when its answer is not a redirect.
            SecurityError: more redirects than the limit, or one from wss to ws.
            InvalidURI: the ``Location`` is not a WebSocket or HTTP URI.
            ValueError: the redirect cannot be followed over ``sock`` or ``path``.
        """
        response = exc.response
        location = response.headers.get("Location") if response is not None else None
        if response is None or response.status not in _REDIRECTS or location is None:
            raise exc
        if self._followed == limits.MAX_REDIRECTS:
            raise SecurityError(f"more than {limits.MAX_REDIRECTS} redirects") from exc
        try:
            new_uri = _redirect_uri(self.uri, location)
            secure, host, port, _ = parse_uri(new_uri)
        except InvalidURI as error:
            raise error from exc
        old_secure, old_host, old_port, _ = parse_uri(self.uri)
        if old_secure and not secure:
            raise SecurityError(f"redirect from wss:// to ws:// refused: {new_uri}") from exc
        if self._sock:
            raise ValueError(f"cannot follow the redirect to {new_uri}: sock= was used") from exc
        if (secure, host, port) != (old_secure, old_host, old_port):
            if self._path:
                raise ValueError(
                    f"cannot follow the redirect to another host ({new_uri}) over a unix socket"
                ) from exc
            self.headers = [(k, v) for k, v in self.headers if k.lower() not in _CREDENTIALS]
        self.uri = new_uri
        self._followed += 1


def server_tls_error(host: str, port: int, exc: ssl_module.SSLError) -> InvalidHandshake:
    """The error for a failed TLS handshake with the server (raise it from ``exc``)."""
    return InvalidHandshake(
        f"the TLS handshake with {host}:{port} failed ({exc.reason or exc}): "
        "the server does not seem to speak TLS (a plain server? then use ws://)"
    )

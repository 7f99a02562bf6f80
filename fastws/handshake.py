"""The HTTP/1.1 opening handshake (RFC 6455 section 4), sans I/O.

Parsing is incremental and bounded: a request or response head is fed in any
number of pieces and :class:`HttpHeadParser` enforces limits on the start
line, each header line, the number of headers and the total size. Bytes that
follow the head in the same read are handed back untouched: they are the
first WebSocket frames.

Building blocks (used by :mod:`fastws.protocol`, usable on their own):

- :func:`accept_key`, :func:`generate_key`;
- :func:`parse_tokens`, :func:`parse_extension_header`,
  :func:`build_extension_header`;
- :func:`check_request` (server side) and :func:`check_response` (client side);
- :func:`build_request`, :func:`build_response`, :func:`serialize_request`,
  :func:`serialize_response`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

from fastws import limits
from fastws.events import Headers, Request, Response
from fastws.exceptions import InvalidHandshake, InvalidURI

__all__ = [
    "GUID",
    "ExtensionOffer",
    "HttpHeadParser",
    "accept_key",
    "ascii_host",
    "build_extension_header",
    "build_request",
    "build_response",
    "check_header",
    "check_request",
    "check_response",
    "generate_key",
    "header_pairs",
    "header_value",
    "is_token",
    "parse_extension_header",
    "parse_request_line",
    "parse_status_line",
    "parse_tokens",
    "parse_uri",
    "same_origin",
    "serialize_request",
    "serialize_response",
]

#: The GUID appended to the key before hashing (RFC 6455 section 1.3).
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: One extension offer: its name and its ``(param, value-or-None)`` pairs.
ExtensionOffer = tuple[str, list[tuple[str, str | None]]]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The start lines of HTTP/1.x, whole and as a prefix of one still arriving
# (the prefix patterns match any beginning of a valid line).
_REQUEST_LINE_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e\x80-\xff]+ HTTP/\d\.\d")
_REQUEST_PREFIX_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*(?: [^ \r\n]*(?: [^ \r\n]*)?)?\Z")
_RESPONSE_LINE_RE = re.compile(rb"HTTP/\d\.\d \d{3}(?: [^\r\n]*)?")
_RESPONSE_PREFIX_RE = re.compile(
    rb"(?:H(?:T(?:T(?:P(?:/(?:\d(?:\.(?:\d(?: [^\r\n]*)?)?)?)?)?)?)?)?)?\Z"
)

# Characters kept as they are in the path and query of a request target
# (RFC 3986 unreserved, sub-delims, ":", "@", "/" and "%" of escapes).
_URI_SAFE = "/%:@!$&'()*+,;=-._~"

#: Why a request or a response that is not HTTP was refused.
NOT_HTTP_REQUEST = "not an HTTP request (a TLS client on a plain ws:// port?)"
NOT_HTTP_RESPONSE = (
    "the server did not answer with HTTP: it does not speak WebSocket over plain TCP "
    "(a TLS server? then use wss://)"
)
_HEADER_VALUE_RE = re.compile(r"[\x09\x20-\x7e\x80-\xff]*")


# Every open connection keeps its handshake's headers. Header names, and the
# values of headers that are the same on most connections, are shared through
# this cache instead of being one more copy per connection. Bounded: once
# full (e.g. after many made-up names), strings are simply not shared.
_SHARED: dict[str, str] = {}
_SHARED_MAX = 1024
_SHARED_VALUES_OF = frozenset(
    {
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "host",
        "origin",
        "pragma",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-version",
        "upgrade",
        "user-agent",
    }
)


def _shared(text: str) -> str:
    shared = _SHARED.get(text)
    if shared is not None:
        return shared
    if len(_SHARED) < _SHARED_MAX and len(text) <= 256:
        _SHARED[text] = text
    return text


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``.

    Args:
        key: the client's key (base64 text).

    Returns:
        base64(SHA-1(key + GUID)).
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: base64 of 16 bytes from the OS CSPRNG."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def _valid_key(key: str) -> bool:
    if len(key) != 24:
        return False
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return len(raw) == 16


def parse_tokens(values: Iterable[str]) -> list[str]:
    """Split comma-separated header values into lower-cased tokens.

    Args:
        values: every value of one header (it may be repeated).

    Returns:
        The non-empty tokens, stripped and lower-cased.
    """
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                out.append(part.lower())
    return out


def _split_quoted(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    escape = False
    for ch in value:
        if escape:
            cur.append(ch)
            escape = False
        elif quoted and ch == "\\":
            cur.append(ch)
            escape = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append("".join(cur))
    return parts


def parse_extension_header(values: Iterable[str]) -> list[ExtensionOffer]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 section 9.1).

    Args:
        values: every value of the header.

    Returns:
        ``[(name, [(param, value or None), ...]), ...]`` in order; names and
        parameter names are lower-cased, quoted values unquoted.

    Raises:
        ValueError: the header is malformed.
    """
    result: list[ExtensionOffer] = []
    for value in values:
        for item in _split_quoted(value, ","):
            item = item.strip()
            if not item:
                continue
            pieces = _split_quoted(item, ";")
            name = pieces[0].strip()
            if not _TOKEN_RE.fullmatch(name):
                raise ValueError(f"invalid extension name {name!r}")
            params: list[tuple[str, str | None]] = []
            for piece in pieces[1:]:
                piece = piece.strip()
                if not piece:
                    raise ValueError("empty extension parameter")
                pname, eq, pvalue = piece.partition("=")
                pname = pname.strip()
                if not _TOKEN_RE.fullmatch(pname):
                    raise ValueError(f"invalid extension parameter {pname!r}")
                if not eq:
                    params.append((pname.lower(), None))
                    continue
                pvalue = pvalue.strip()
                if len(pvalue) >= 2 and pvalue[0] == '"' and pvalue[-1] == '"':
                    pvalue = re.sub(r"\\(.)", r"\1", pvalue[1:-1])
                if not _TOKEN_RE.fullmatch(pvalue):
                    raise ValueError(f"invalid extension parameter value {pvalue!r}")
                params.append((pname.lower(), pvalue))
            result.append((name.lower(), params))
    return result


def build_extension_header(extensions: Sequence[ExtensionOffer]) -> str:
    """Build a ``Sec-WebSocket-Extensions`` value from offers / responses."""
    items = []
    for name, params in extensions:
        item = [name] + [p if v is None else f"{p}={v}" for p, v in params]
        items.append("; ".join(item))
    return ", ".join(items)


class HttpHeadParser:
    """Incremental, bounded parser for an HTTP/1.1 request or response head.

    Feed bytes with :meth:`feed` until it returns ``True``; then
    :attr:`start_line`, :attr:`headers` and :meth:`rest` are available.

    Args:
        max_start_line: longest request / status line, in bytes (400 above).
        max_header_line: longest header line, in bytes (431 above).
        max_headers: most header lines (431 above).
        max_size: largest whole head, in bytes (431 above).
        is_request: parse a request (else a response).

    Raises:
        InvalidHandshake: from :meth:`feed`, with ``status`` set to the HTTP
            status a server should answer with.
    """

    __slots__ = (
        "_buf",
        "_is_request",
        "_max_header_line",
        "_max_headers",
        "_max_size",
        "_max_start_line",
        "_scanned",
        "done",
        "headers",
        "start_line",
    )

    def __init__(
        self,
        *,
        max_start_line: int = limits.MAX_REQUEST_LINE,
        max_header_line: int = limits.MAX_HEADER_LINE,
        max_headers: int = limits.MAX_HEADERS,
        max_size: int = limits.MAX_HANDSHAKE_SIZE,
        is_request: bool = True,
    ) -> None:
        self._buf = bytearray()
        self._scanned = 0
        self._max_start_line = max_start_line
        self._max_header_line = max_header_line
        self._max_headers = max_headers
        self._max_size = max_size
        self._is_request = is_request
        self.done = False
        self.start_line = ""
        self.headers = Headers()

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """Add bytes; return ``True`` once the head is complete.

        Raises:
            InvalidHandshake: a limit was exceeded or the head is malformed.
        """
        if self.done:
            self._buf += data
            return True
        self._buf += data
        buf = self._buf
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._check_partial()
            self._scanned = len(buf)
            return False
        head_len = end + 4
        if head_len > self._max_size:
            raise InvalidHandshake("HTTP head too large", status=431)
        self._parse(bytes(buf[:end]))
        del buf[:head_len]
        self.done = True
        return True

    def _check_partial(self) -> None:
        buf = self._buf
        if len(buf) > self._max_size:
            raise InvalidHandshake("HTTP head too large", status=431)
        first = buf.find(b"\r\n")
        # What is not HTTP (a TLS ClientHello, an SSH banner) is refused as
        # soon as its first bytes show it, not after a timeout.
        line = bytes(buf[: first if first >= 0 else len(buf)])
        if first < 0 and line.endswith(b"\r"):
            line = line[:-1]  # the line break is arriving
        if self._is_request:
            if not _REQUEST_PREFIX_RE.match(line):
                raise InvalidHandshake(NOT_HTTP_REQUEST, status=400)
        elif not _RESPONSE_PREFIX_RE.match(line):
            raise InvalidHandshake(NOT_HTTP_RESPONSE)
        if first < 0:
            if len(buf) > self._max_start_line:
                raise InvalidHandshake("start line too long", status=400)
            return
        pattern = _REQUEST_LINE_RE if self._is_request else _RESPONSE_LINE_RE
        if not pattern.fullmatch(line):
            if self._is_request:
                raise InvalidHandshake(NOT_HTTP_REQUEST, status=400)
            raise InvalidHandshake(NOT_HTTP_RESPONSE)
        if first > self._max_start_line:
            raise InvalidHandshake("start line too long", status=400)
        last = buf.rfind(b"\r\n")
        if len(buf) - last - 2 > self._max_header_line:
            raise InvalidHandshake("header line too long", status=431)
        if buf.count(b"\r\n") - 1 > self._max_headers:
            raise InvalidHandshake("too many headers", status=431)

    def _parse(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        start = lines[0]
        if len(start) > self._max_start_line:
            raise InvalidHandshake("start line too long", status=400)
        if len(lines) - 1 > self._max_headers:
            raise InvalidHandshake("too many headers", status=431)
        try:
            self.start_line = start.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidHandshake("start line is not ASCII", status=400) from None
        pairs: list[tuple[str, str]] = []
        for line in lines[1:]:
            if len(line) > self._max_header_line:
                raise InvalidHandshake("header line too long", status=431)
            if line[:1] in (b" ", b"\t"):
                raise InvalidHandshake("obsolete header line folding", status=400)
            name, colon, value = line.partition(b":")
            if not colon:
                raise InvalidHandshake("malformed header line", status=400)
            try:
                sname = name.decode("ascii")
            except UnicodeDecodeError:
                raise InvalidHandshake("header name is not ASCII", status=400) from None
            if not _TOKEN_RE.fullmatch(sname):
                raise InvalidHandshake(f"invalid header name {sname!r}", status=400)
            svalue = value.strip(b" \t").decode("latin-1")
            if not _HEADER_VALUE_RE.fullmatch(svalue):
                raise InvalidHandshake(f"invalid value for header {sname}", status=400)
            sname = _shared(sname)
            if sname.lower() in _SHARED_VALUES_OF:
                svalue = _shared(svalue)
            pairs.append((sname, svalue))
        self.headers = Headers(pairs)

    def rest(self) -> bytes:
        """Return (and forget) the bytes received after the head."""
        data = bytes(self._buf)
        self._buf.clear()
        return data


def parse_request_line(line: str) -> tuple[str, str]:
    """Parse ``GET /path HTTP/1.1``; return ``(method, target)``.

    Raises:
        InvalidHandshake: status 400 (malformed / older than HTTP/1.1) or 405 (not GET).
    """
    parts = line.split(" ")
    if len(parts) != 3:
        raise InvalidHandshake("malformed request line", status=400)
    method, target, version = parts
    m = re.fullmatch(r"HTTP/(\d)\.(\d)", version)
    if not m:
        raise InvalidHandshake("malformed HTTP version", status=400)
    if (int(m.group(1)), int(m.group(2))) < (1, 1):
        raise InvalidHandshake("HTTP/1.1 or later is required", status=400)
    if version != "HTTP/1.1":
        raise InvalidHandshake(f"{version} is not supported: use HTTP/1.1", status=505)
    if method != "GET":
        raise InvalidHandshake(f"method {method} is not GET", status=405)
    if not target or any(c <= " " or c == "\x7f" for c in target):
        raise InvalidHandshake("malformed request target", status=400)
    return method, target


def parse_status_line(line: str) -> tuple[int, str]:
    """Parse ``HTTP/1.1 101 Switching Protocols``; return ``(status, reason)``.

    Raises:
        InvalidHandshake: the line is malformed.
    """
    m = re.fullmatch(r"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?", line)
    if not m:
        raise InvalidHandshake("malformed status line")
    if (int(m.group(1)), int(m.group(2))) != (1, 1):
        raise InvalidHandshake(f"the server answered with HTTP/{m.group(1)}.{m.group(2)}, not 1.1")
    return int(m.group(3)), m.group(4) or ""


def check_request(request: Request) -> str:
    """Validate a WebSocket upgrade request (server side).

    Args:
        request: the parsed request.

    Returns:
        The client's ``Sec-WebSocket-Key``.

    Raises:
        InvalidHandshake: with ``status`` 400, or 426 for an unsupported
            ``Sec-WebSocket-Version``.
    """
    headers = request.headers
    hosts = headers.get_all("Host")
    if len(hosts) != 1 or not hosts[0]:
        raise InvalidHandshake("missing or repeated Host header", status=400)
    if "websocket" not in parse_tokens(headers.get_all("Upgrade")):
        raise InvalidHandshake("missing 'Upgrade: websocket'", status=400)
    if "upgrade" not in parse_tokens(headers.get_all("Connection")):
        raise InvalidHandshake("missing 'Connection: Upgrade'", status=400)
    versions = headers.get_all("Sec-WebSocket-Version")
    if len(versions) != 1 or versions[0].strip() != "13":
        raise InvalidHandshake("unsupported Sec-WebSocket-Version (13 is required)", status=426)
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1 or not _valid_key(keys[0]):
        raise InvalidHandshake("missing or invalid Sec-WebSocket-Key", status=400)
    return keys[0]


def build_response(
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | str = b"",
    reason: str | None = None,
) -> Response:
    """Build a :class:`Response`; an error response gets a text body and Content-Length.

    Args:
        status: the HTTP status.
        headers: headers to send.
        body: the body (str is UTF-8 encoded).
        reason: the reason phrase (default: the standard one).
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    pairs = list(headers)
    if status != 101:
        names = {k.lower() for k, _ in pairs}
        if "content-length" not in names:
            pairs.append(("Content-Length", str(len(body))))
        if body and "content-type" not in names:
            pairs.append(("Content-Type", "text/plain; charset=utf-8"))
        if "connection" not in names:
            pairs.append(("Connection", "close"))
    return Response(status, reason, Headers(pairs), bytes(body))


def is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 7230 token (a header name, a subprotocol)."""
    return _TOKEN_RE.fullmatch(text) is not None


def check_header(name: object, value: object, option: str = "header") -> None:
    """Check that a header can be sent as is.

    The name must be an RFC 7230 token and the value Latin-1 text without
    CR, LF, NUL or other control characters (tab allowed).

    Args:
        name: the header name.
        value: the header value.
        option: what the header came from, for the error message.

    Raises:
        TypeError: the name or value is not a ``str``.
        ValueError: it would break or change the HTTP framing.
    """
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"{option}: a header name and value must be str, got {name!r}: {value!r}")
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"{option}: invalid header name {name!r}")
    if not _HEADER_VALUE_RE.fullmatch(value):
        raise ValueError(f"{option}: invalid value for header {name}: {value!r}")


def header_value(option: str, value: object, *, none: bool = True) -> Any:
    """``value`` if it can be sent as a header value (or is ``None`` where allowed).

    Raises:
        TypeError: not a ``str``.
        ValueError: it contains characters a header value cannot hold.
    """
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a str{' or None' if none else ''}, not {value!r}")
    if not _HEADER_VALUE_RE.fullmatch(value):
        raise ValueError(f"{option} cannot be sent as a header value: {value!r}")
    return value


def header_pairs(option: str, headers: object) -> list[tuple[str, str]]:
    """The headers of ``headers`` as a checked list of ``(name, value)`` pairs.

    Args:
        option: the option they were given as, for error messages.
        headers: ``None``, a :class:`~fastws.events.Headers`, a mapping of
            names to values, or an iterable of ``(name, value)`` pairs.

    Raises:
        TypeError: not one of those, or a name or value that is not a ``str``.
        ValueError: a header that cannot be sent (see :func:`check_header`).
    """
    if headers is None:
        return []
    pairs: list[tuple[str, str]] = []
    if isinstance(headers, Headers):
        pairs = headers.items()
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    elif isinstance(headers, (str, bytes, bytearray)) or not isinstance(headers, Iterable):
        raise TypeError(
            f"{option} must be a mapping or (name, value) pairs, not {type(headers).__name__}"
        )
    else:
        for item in headers:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"{option} must hold (name, value) pairs, got {item!r}")
            pairs.append((item[0], item[1]))
    for name, value in pairs:
        check_header(name, value, option)
    return pairs


def serialize_response(response: Response) -> bytes:
    """Serialize a response head (and body) to bytes.

    Raises:
        ValueError: a header name or value would break the HTTP framing.
    """
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    for name, value in response.headers.items():
        check_header(name, value)
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + response.body


def serialize_request(request: Request) -> bytes:
    """Serialize a request head to bytes.

    Raises:
        ValueError: a header name or value would break the HTTP framing.
    """
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    for name, value in request.headers.items():
        check_header(name, value)
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def ascii_host(host: str) -> str | None:
    """``host`` in ASCII (IDNA-encoded when it is not), or ``None`` when it cannot be."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def parse_uri(uri: str) -> tuple[bool, str, int, str]:
    """Split a ``ws://`` / ``wss://`` URI.

    Returns:
        ``(secure, host, port, resource)``; ``resource`` is path + query.

    Raises:
        InvalidURI: not a ws/wss URI, or it has a fragment or user info
            (``InvalidURI`` is a ``ValueError``).
    """
    if any(c < " " or c == "\x7f" for c in uri):
        raise InvalidURI(uri, "it contains control characters")
    parts = urlsplit(uri)
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "the scheme is not ws:// or wss://")
    if parts.fragment:
        raise InvalidURI(uri, "a WebSocket URI cannot have a fragment")
    if parts.username is not None or parts.password is not None:
        raise InvalidURI(uri, "user info in WebSocket URIs is not supported")
    if not parts.hostname:
        raise InvalidURI(uri, "it has no host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidURI(uri, "its port is not a number in 0..65535") from None
    secure = parts.scheme == "wss"
    port = port or (443 if secure else 80)
    host = ascii_host(parts.hostname)
    if host is None:
        raise InvalidURI(uri, "its host name cannot be encoded (IDNA)")
    # What a request line cannot carry (spaces, controls, non-ASCII) is
    # percent-encoded; existing escapes and reserved characters are kept.
    resource = quote(parts.path or "/", safe=_URI_SAFE)
    if parts.query:
        resource += "?" + quote(parts.query, safe=_URI_SAFE + "?")
    return secure, host, port, resource


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def same_origin(origin: str, host: str | None) -> bool:
    """Whether the ``Origin`` of a request names the server its ``Host`` header names.

    The host names are compared without case; a port left out is the
    scheme's default on the origin's side, and on the host's side (which
    does not say whether TLS is on) either default of the origin's scheme.

    Args:
        origin: the ``Origin`` header, e.g. ``https://app.example.com:8443``.
        host: the ``Host`` header, e.g. ``app.example.com:8443``.
    """
    if host is None:
        return False
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        target = urlsplit(f"//{host}")
        host_port = target.port
    except ValueError:
        return False
    if not parts.hostname or not target.hostname or parts.hostname != target.hostname:
        return False  # urlsplit lower-cases host names
    if host_port is None:
        return origin_port == _DEFAULT_PORTS.get(parts.scheme)
    return origin_port == host_port


def build_request(
    uri: str,
    *,
    key: str,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    extensions: str | None = None,
    additional_headers: Iterable[tuple[str, str]] = (),
    user_agent: str | None = None,
) -> Request:
    """Build a client upgrade request for ``uri``.

    Args:
        uri: the ws:// or wss:// URI.
        key: the ``Sec-WebSocket-Key`` (see :func:`generate_key`).
        origin: the ``Origin`` header, if any.
        subprotocols: subprotocols to offer.
        extensions: the ``Sec-WebSocket-Extensions`` value, if any.
        additional_headers: extra headers.
        user_agent: the ``User-Agent`` header, if any.
    """
    secure, host, port, resource = parse_uri(uri)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if secure else 80
    pairs = [
        ("Host", host if port == default_port else f"{host}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        pairs.append(("Origin", origin))
    if subprotocols:
        pairs.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions:
        pairs.append(("Sec-WebSocket-Extensions", extensions))
    if user_agent:
        pairs.append(("User-Agent", user_agent))
    pairs.extend(additional_headers)
    return Request("GET", resource, Headers(pairs))


def check_response(response: Response, key: str, subprotocols: Sequence[str] | None) -> str | None:
    """Validate a server's response to our upgrade (client side).

    Extensions are checked by the caller (see :mod:`fastws.protocol`).

    Args:
        response: the parsed response.
        key: the key we sent.
        subprotocols: the subprotocols we offered.

    Returns:
        The selected subprotocol or ``None``.

    Raises:
        InvalidHandshake: carrying ``response``.
    """
    if response.status != 101:
        raise InvalidHandshake(f"server answered {response.status} instead of 101", response)
    headers = response.headers
    if "websocket" not in parse_tokens(headers.get_all("Upgrade")):
        raise InvalidHandshake("missing 'Upgrade: websocket'", response)
    if "upgrade" not in parse_tokens(headers.get_all("Connection")):
        raise InvalidHandshake("missing 'Connection: Upgrade'", response)
    accepts = headers.get_all("Sec-WebSocket-Accept")
    if len(accepts) != 1 or accepts[0] != accept_key(key):
        raise InvalidHandshake("missing or wrong Sec-WebSocket-Accept", response)
    protocols = parse_tokens(headers.get_all("Sec-WebSocket-Protocol"))
    if not protocols:
        return None
    if len(protocols) > 1:
        raise InvalidHandshake("more than one subprotocol selected", response)
    raw = headers.get_all("Sec-WebSocket-Protocol")[0].strip()
    if not subprotocols or raw not in subprotocols:
        raise InvalidHandshake(
            f"server selected subprotocol {raw!r} that was not offered", response
        )
    return raw

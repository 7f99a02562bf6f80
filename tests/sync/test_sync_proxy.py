"""The sync client through proxies (HTTP CONNECT, https://, SOCKS5) and redirects.

The proxies are the asyncio servers of tests/proxy_servers.py, each run on
an event loop in a thread of its own; the WebSocket servers are fastws.sync
servers. Everything on 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from proxy_servers import HttpProxy, Socks5Proxy, certificates, in_thread, moved
from sync_helpers import Running

from fastws import __version__, limits
from fastws.events import Request, Response
from fastws.exceptions import (
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
    ProxyError,
    SecurityError,
)
from fastws.sync import ServerConnection, connect

pytestmark = pytest.mark.usefixtures("no_leaks")


def greet(ws: ServerConnection) -> None:
    assert ws.request is not None
    ws.send(f"hello {ws.request.headers.get('User-Agent')}")
    for message in ws:
        ws.send(message)


def _echo_through(url: str, **options: Any) -> str:
    with connect(url, **options) as ws:
        greeting = ws.recv(timeout=5)
        ws.send("through")
        assert ws.recv(timeout=5) == "through"
    assert isinstance(greeting, str)
    return greeting


# -- HTTP CONNECT --------------------------------------------------------------


def test_http_proxy_with_and_without_credentials() -> None:
    with Running(greet) as srv, in_thread(HttpProxy()) as proxy:
        via = f"http://127.0.0.1:{proxy.port}"
        assert _echo_through(srv.uri, proxy=via) == f"hello fastws/{__version__}"
        line, headers = proxy.seen[0]
        assert line == f"CONNECT 127.0.0.1:{srv.server.port} HTTP/1.1"
        assert headers["User-Agent"] == f"fastws/{__version__}"
        assert "Proxy-Authorization" not in headers
    with Running(greet) as srv, in_thread(HttpProxy(auth=("me", "s3cr:t"))) as proxy:
        # credentials from the URL (percent-encoded), proxy_headers, user_agent_header
        via = f"http://me:s3cr%3At@127.0.0.1:{proxy.port}"
        got = _echo_through(
            srv.uri, proxy=via, proxy_headers={"X-Trace": "1"}, user_agent_header="app/1"
        )
        assert got == "hello app/1"
        assert proxy.seen[0][1]["X-Trace"] == "1"
        assert proxy.seen[0][1]["User-Agent"] == "app/1"
        with pytest.raises(InvalidProxyStatus, match="407") as info:
            connect(srv.uri, proxy=f"http://me:wrong@127.0.0.1:{proxy.port}")
        assert info.value.response is not None
        assert info.value.response.status == 407
        # the password never shows in a message
        assert "wrong" not in str(info.value)


@contextmanager
def _fake_proxy(answer: Any) -> Iterator[int]:
    """A proxy that calls ``answer(conn)`` on the one connection it accepts."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            try:
                answer(conn)
            except OSError:
                pass

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield port
    finally:
        thread.join(10)
        listener.close()


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_proxy_that_does_not_answer_http_or_closes() -> None:
    def not_http(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

    with _fake_proxy(not_http) as port, pytest.raises(InvalidProxyMessage, match="valid HTTP"):
        connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")

    def closes(conn: socket.socket) -> None:
        _read_head(conn)

    with _fake_proxy(closes) as port, pytest.raises(InvalidProxyMessage, match="closed"):
        connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")

    def silent(conn: socket.socket) -> None:
        _read_head(conn)
        time.sleep(1)

    started = time.monotonic()
    with _fake_proxy(silent) as port, pytest.raises(TimeoutError):
        connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.3)
    assert time.monotonic() - started < 2


def test_bytes_after_the_proxys_answer_are_the_servers() -> None:
    # The proxy's 200 and the server's answer arrive in one read: the answer
    # is not lost (else the client would wait for it until open_timeout).
    def answer_both(conn: socket.socket) -> None:
        _read_head(conn)  # CONNECT
        conn.sendall(
            b"HTTP/1.1 200 Connection established\r\n\r\n"
            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
        )
        _read_head(conn)  # the upgrade request, tunnelled

    with _fake_proxy(answer_both) as port, pytest.raises(InvalidStatus, match="503"):
        connect("ws://example.invalid/", proxy=f"http://127.0.0.1:{port}", open_timeout=3)

    def data_before_tls(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n\x16\x03")

    with _fake_proxy(data_before_tls) as port, pytest.raises(InvalidProxyMessage, match="TLS"):
        connect("wss://example.invalid/", proxy=f"http://127.0.0.1:{port}")


def test_the_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        Running(greet) as srv,
        in_thread(HttpProxy()) as http,
        in_thread(HttpProxy()) as ws_proxy,
    ):
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{http.port}")
        _echo_through(srv.uri)
        monkeypatch.setenv("ws_proxy", f"http://127.0.0.1:{ws_proxy.port}")
        _echo_through(srv.uri)
        assert (len(http.seen), len(ws_proxy.seen)) == (1, 1)
        _echo_through(srv.uri, proxy=None)  # direct
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        _echo_through(srv.uri)  # direct too
        assert (len(http.seen), len(ws_proxy.seen)) == (1, 1)
        monkeypatch.delenv("no_proxy")
        monkeypatch.setenv("ws_proxy", "ftp://127.0.0.1:21")
        with pytest.raises(InvalidProxy, match="ftp"):
            connect(srv.uri)


def test_https_proxy() -> None:
    server_ctx, client_ctx = certificates()
    with Running(greet) as srv, in_thread(HttpProxy(auth=("u", "p")), server_ctx) as proxy:
        secure = f"https://u:p@localhost:{proxy.port}"
        _echo_through(srv.uri, proxy=secure, proxy_ssl=client_ctx)
        by_ip = f"https://u:p@127.0.0.1:{proxy.port}"
        _echo_through(srv.uri, proxy=by_ip, proxy_ssl=client_ctx, proxy_server_hostname="localhost")
        assert len(proxy.seen) == 2
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(srv.uri, proxy=secure)  # the default context does not trust the test CA

    # an https:// proxy that answers in plain HTTP
    def plain_http(conn: socket.socket) -> None:
        conn.recv(1)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with _fake_proxy(plain_http) as port, pytest.raises(ProxyError, match="TLS"):
        connect("ws://127.0.0.1:9/", proxy=f"https://localhost:{port}", proxy_ssl=client_ctx)


@pytest.mark.parametrize("https_proxy", [False, True], ids=["http-proxy", "https-proxy"])
def test_wss_through_a_proxy(https_proxy: bool) -> None:
    server_ctx, client_ctx = certificates()
    proxy_ctx = server_ctx if https_proxy else None
    with Running(greet, ssl=server_ctx) as srv, in_thread(HttpProxy(), proxy_ctx) as proxy:
        scheme = "https" if https_proxy else "http"
        with connect(
            srv.secure_uri,
            ssl=client_ctx,
            proxy=f"{scheme}://localhost:{proxy.port}",
            proxy_ssl=client_ctx if https_proxy else None,
        ) as ws:
            assert ws.recv(timeout=5) == f"hello fastws/{__version__}"
            # large messages cross both TLS layers in many records, both ways
            big = bytes(range(256)) * 4096
            ws.send(big)
            assert ws.recv(timeout=10) == big
            ws.send("more")
            assert ws.recv(timeout=5) == "more"
        assert proxy.seen[0][0] == f"CONNECT localhost:{srv.server.port} HTTP/1.1"
        # the server's certificate is checked, not only the proxy's
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(
                srv.secure_uri,
                proxy=f"{scheme}://localhost:{proxy.port}",
                proxy_ssl=client_ctx if https_proxy else None,
            )


# -- SOCKS ---------------------------------------------------------------------


def test_socks5_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("python_socks")
    with Running(greet) as srv, in_thread(Socks5Proxy()) as proxy:
        url = f"ws://localhost:{srv.server.port}/"
        _echo_through(url, proxy=f"socks5h://127.0.0.1:{proxy.port}")
        assert proxy.seen[-1] == ("localhost", srv.server.port)  # resolved by the proxy
        _echo_through(url, proxy=f"socks5://127.0.0.1:{proxy.port}")
        assert proxy.seen[-1][0] in ("127.0.0.1", "::1")  # resolved here
        with pytest.raises(ProxyError, match="refused"):
            connect("ws://127.0.0.1:9/", proxy=f"socks5h://127.0.0.1:{proxy.port}")
    with Running(greet) as srv, in_thread(Socks5Proxy(auth=("me", "s3cret"))) as proxy:
        monkeypatch.setenv("socks_proxy", f"socks5h://me:s3cret@127.0.0.1:{proxy.port}")
        _echo_through(srv.uri)
        with pytest.raises(ProxyError):
            connect(srv.uri, proxy=f"socks5h://me:wrong@127.0.0.1:{proxy.port}")


# -- options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"proxy": False}, TypeError, "proxy=None"),
        ({"proxy": 3128}, TypeError, "proxy must be"),
        ({"proxy": "ftp://127.0.0.1:21"}, InvalidProxy, "scheme"),
        ({"proxy": "http://127.0.0.1:3128/path"}, InvalidProxy, "path"),
        ({"proxy": "http://u@127.0.0.1:3128"}, InvalidProxy, "password"),
        ({"proxy": "http://127.0.0.1:3128", "sock": "later"}, ValueError, "path or sock"),
        ({"proxy": "http://127.0.0.1:3128", "proxy_ssl": "later"}, ValueError, "https://"),
        ({"proxy_ssl": "not a context"}, TypeError, "proxy_ssl"),
        ({"proxy_headers": {"X": "a\r\nb"}}, ValueError, "proxy_headers"),
        ({"proxy_server_hostname": 3}, TypeError, "proxy_server_hostname"),
        ({"user_agent": "a", "user_agent_header": "b"}, TypeError, "not both"),
    ],
)
def test_proxy_options_are_checked_at_the_call(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    # Nothing listens on port 9: a check that came late would be a connection error.
    a, b = socket.socketpair()
    try:
        if options.get("sock") == "later":
            options["sock"] = a
        if options.get("proxy_ssl") == "later":
            options["proxy_ssl"] = ssl.create_default_context()
        with pytest.raises(error, match=match):
            connect("ws://127.0.0.1:9/", **options)
    finally:
        a.close()
        b.close()


# -- redirects -----------------------------------------------------------------


def path_and_headers(ws: ServerConnection) -> None:
    assert ws.request is not None
    auth = ws.request.headers.get("Authorization", "-")
    ws.send(f"{ws.request.path} {auth}")
    for _ in ws:
        pass


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_relative_redirect_is_followed(status: int) -> None:
    handler = moved(status, "../new/place?x=1")
    with Running(path_and_headers, process_request=handler) as srv:
        url = f"{srv.uri}old/here"
        with connect(url, additional_headers={"Authorization": "Bearer t"}) as ws:
            assert ws.recv(timeout=5) == "/new/place?x=1 Bearer t"  # same origin: kept


def test_a_redirect_to_another_server_drops_credentials() -> None:
    with Running(path_and_headers) as target:
        handler = moved(302, f"http://127.0.0.1:{target.server.port}/there")
        with Running(path_and_headers, process_request=handler) as first:
            headers = [("Authorization", "Bearer t"), ("Cookie", "a=b"), ("X-Keep", "1")]
            with connect(f"{first.uri}old", additional_headers=headers) as ws:
                assert ws.recv(timeout=5) == "/there -"
                assert ws.request is not None
                assert ws.request.headers.get("X-Keep") == "1"
                assert ws.request.headers.get("Cookie") is None


def test_redirects_that_are_not_followed() -> None:
    count = 0

    def loop_forever(ws: ServerConnection, request: Request) -> Response:
        nonlocal count
        count += 1
        return ws.respond(307, headers={"Location": f"/hop{count}"})

    with Running(path_and_headers, process_request=loop_forever) as srv:
        with pytest.raises(SecurityError, match="redirects") as info:
            connect(srv.uri)
        assert isinstance(info.value.__cause__, InvalidStatus)
        assert count == limits.MAX_REDIRECTS + 1
    with Running(path_and_headers, process_request=moved(302, "ftp://x/")) as srv:
        with pytest.raises(InvalidURI, match="scheme"):
            connect(f"{srv.uri}old")
    # a 3xx without a Location is the server's answer, not a redirect
    no_location = Running(
        path_and_headers, process_request=lambda ws, request: ws.respond(302, "moved")
    )
    with no_location as srv, pytest.raises(InvalidStatus, match="302"):
        connect(srv.uri)
    # and a redirect from wss:// to ws:// is refused
    server_ctx, client_ctx = certificates()
    with Running(path_and_headers) as plain:
        handler = moved(301, f"ws://localhost:{plain.server.port}/")
        with Running(path_and_headers, ssl=server_ctx, process_request=handler) as srv:
            with pytest.raises(SecurityError, match="wss:// to ws://"):
                connect(f"{srv.secure_uri}old", ssl=client_ctx)


def test_redirects_are_bounded_by_open_timeout() -> None:
    def slow(ws: ServerConnection, request: Request) -> Response:
        time.sleep(0.15)
        return ws.respond(307, headers={"Location": "/again"})

    with Running(path_and_headers, process_request=slow) as srv:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connect(srv.uri, open_timeout=0.5)
        assert time.monotonic() - started < 1.5

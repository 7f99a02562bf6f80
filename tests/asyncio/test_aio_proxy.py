"""The client through proxies: HTTP CONNECT (http:// and https://) and SOCKS5.

The proxies are small asyncio servers on 127.0.0.1 (tests/proxy_servers.py).
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import sys
from typing import Any

import pytest
from aio_helpers import tolerate_sslproto_leak
from proxy_servers import HttpProxy, Socks5Proxy, certificates

from fastws import __version__
from fastws.asyncio import ServerConnection, connect, serve
from fastws.asyncio.client import process_exception
from fastws.exceptions import (
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyError,
)


async def greet(ws: ServerConnection) -> None:
    assert ws.request is not None
    await ws.send(f"hello {ws.request.headers.get('User-Agent')}")
    async for message in ws:
        await ws.send(message)


async def _echo_through(url: str, **options: Any) -> str:
    async with connect(url, **options) as ws:
        greeting = await ws.recv()
        await ws.send("through")
        assert await ws.recv() == "through"
    assert isinstance(greeting, str)
    return greeting


# -- HTTP CONNECT --------------------------------------------------------------


def test_http_proxy(run: Any) -> None:
    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server, HttpProxy() as proxy:
            url = f"ws://127.0.0.1:{server.port}/"
            greeting = await _echo_through(
                url, proxy=f"http://127.0.0.1:{proxy.port}", proxy_headers={"X-Via": "test"}
            )
            assert greeting == f"hello fastws/{__version__}"
            line, headers = proxy.seen[0]
            assert line == f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"
            assert headers["Host"] == f"127.0.0.1:{server.port}"
            assert headers["User-Agent"] == f"fastws/{__version__}"
            assert headers["X-Via"] == "test"
            assert "Proxy-Authorization" not in headers

    run(main())


def test_http_proxy_authentication(run: Any) -> None:
    async def main() -> None:
        auth = ("user", "p@ss:word")
        async with serve(greet, "127.0.0.1", 0) as server, HttpProxy(auth) as proxy:
            url = f"ws://127.0.0.1:{server.port}/"
            await _echo_through(url, proxy=f"http://user:p%40ss%3Aword@127.0.0.1:{proxy.port}")
            for wrong in ("http://", "http://user:nope@"):
                with pytest.raises(InvalidProxyStatus) as info:
                    await connect(url, proxy=f"{wrong}127.0.0.1:{proxy.port}")
                assert info.value.status == 407
                assert info.value.response is not None
                assert info.value.response.headers.get("Proxy-Authenticate") == "Basic"
                assert "nope" not in str(info.value)
                assert process_exception(info.value) is info.value  # not retried

    run(main())


@pytest.mark.parametrize("status", [403, 502])
def test_a_refusing_http_proxy(run: Any, status: int) -> None:
    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server, HttpProxy(status=status) as proxy:
            url = f"ws://127.0.0.1:{server.port}/"
            with pytest.raises(InvalidProxyStatus, match=str(status)) as info:
                await connect(url, proxy=f"http://127.0.0.1:{proxy.port}")
            assert info.value.status == status
            assert isinstance(info.value, ProxyError)

    run(main())


def test_a_proxy_that_does_not_answer_http(run: Any) -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n" if len(seen) == 0 else b"HTTP/1.1 200")
            seen.append(1)
            await writer.drain()
        finally:
            writer.close()

    seen: list[int] = []

    async def main() -> None:
        server = await asyncio.start_server(not_http, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(InvalidProxyMessage, match="valid HTTP"):
                await connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")
            with pytest.raises(InvalidProxyMessage, match="closed") as info:
                await connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")
            assert process_exception(info.value) is None  # the proxy hung up: retried
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_the_proxy_from_the_environment(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with (
            serve(greet, "127.0.0.1", 0) as server,
            HttpProxy() as http,
            HttpProxy() as https,
            HttpProxy() as ws_proxy,
        ):
            url = f"ws://127.0.0.1:{server.port}/"
            monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{http.port}")
            await _echo_through(url)
            assert len(http.seen) == 1
            # For ws://, the proxy for https is preferred to the one for http ...
            monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{https.port}")
            await _echo_through(url)
            assert (len(http.seen), len(https.seen)) == (1, 1)
            # ... and a proxy for ws to both.
            monkeypatch.setenv("ws_proxy", f"http://127.0.0.1:{ws_proxy.port}")
            await _echo_through(url)
            assert (len(http.seen), len(https.seen), len(ws_proxy.seen)) == (1, 1, 1)
            # no_proxy and proxy=None go direct; an explicit proxy wins.
            await _echo_through(url, proxy=None)
            await _echo_through(url, proxy=f"http://127.0.0.1:{http.port}")
            assert (len(http.seen), len(https.seen), len(ws_proxy.seen)) == (2, 1, 1)
            monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
            await _echo_through(url)
            assert (len(http.seen), len(https.seen), len(ws_proxy.seen)) == (2, 1, 1)
            # A proxy the environment gives that is not valid: an error, not a bypass.
            monkeypatch.delenv("no_proxy")
            monkeypatch.setenv("ws_proxy", "ftp://127.0.0.1:21")
            with pytest.raises(InvalidProxy, match="ftp"):
                await connect(url)

    run(main())


@tolerate_sslproto_leak
def test_https_proxy(run: Any) -> None:
    server_ctx, client_ctx = certificates()

    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server:
            proxy = await HttpProxy(auth=("u", "p")).start(server_ctx)
            async with proxy:
                url = f"ws://127.0.0.1:{server.port}/"
                secure = f"https://u:p@localhost:{proxy.port}"
                await _echo_through(url, proxy=secure, proxy_ssl=client_ctx)
                assert len(proxy.seen) == 1
                # an explicit name to verify the proxy's certificate for
                by_ip = f"https://u:p@127.0.0.1:{proxy.port}"
                await _echo_through(
                    url, proxy=by_ip, proxy_ssl=client_ctx, proxy_server_hostname="localhost"
                )
                # a proxy certificate that is not trusted fails
                with pytest.raises(ssl.SSLCertVerificationError):
                    await connect(url, proxy=secure)
                assert len(proxy.seen) == 2

            # an https:// proxy that speaks plain HTTP
            async def plain_http(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                await reader.read(1)
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                writer.close()

            plain = await asyncio.start_server(plain_http, "127.0.0.1", 0)
            wrong = f"https://localhost:{plain.sockets[0].getsockname()[1]}"
            try:
                with pytest.raises(ProxyError, match="TLS") as info:
                    await connect(url, proxy=wrong, proxy_ssl=client_ctx)
                assert process_exception(info.value) is info.value
            finally:
                plain.close()
                await plain.wait_closed()

    run(main())
    gc.collect()


@tolerate_sslproto_leak
@pytest.mark.parametrize("https_proxy", [False, True], ids=["http-proxy", "https-proxy"])
def test_wss_through_a_proxy(run: Any, loop_name: str, https_proxy: bool) -> None:
    # TLS in TLS needs Python 3.11 on the default event loop: a clear error before.
    unsupported = https_proxy and sys.version_info < (3, 11) and loop_name == "asyncio"
    server_ctx, client_ctx = certificates()

    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0, ssl=server_ctx) as server:
            proxy = await HttpProxy().start(server_ctx if https_proxy else None)
            async with proxy:
                scheme = "https" if https_proxy else "http"
                if unsupported:
                    with pytest.raises(ProxyError, match="TLS in TLS"):
                        await connect(
                            f"wss://localhost:{server.port}/",
                            ssl=client_ctx,
                            proxy=f"{scheme}://localhost:{proxy.port}",
                            proxy_ssl=client_ctx,
                        )
                    return
                await _echo_through(
                    f"wss://localhost:{server.port}/",
                    ssl=client_ctx,
                    proxy=f"{scheme}://localhost:{proxy.port}",
                    proxy_ssl=client_ctx if https_proxy else None,
                )
                assert proxy.seen[0][0] == f"CONNECT localhost:{server.port} HTTP/1.1"

    run(main())
    gc.collect()


def test_user_agent_header(run: Any) -> None:
    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server, HttpProxy() as proxy:
            url = f"ws://127.0.0.1:{server.port}/"
            via = f"http://127.0.0.1:{proxy.port}"
            assert await _echo_through(url, user_agent_header="app/2") == "hello app/2"
            assert await _echo_through(url, user_agent="app/3") == "hello app/3"
            assert await _echo_through(url, user_agent_header=None, proxy=via) == "hello None"
            assert "User-Agent" not in proxy.seen[0][1]
            assert await _echo_through(url, user_agent_header="app/4", proxy=via) == "hello app/4"
            assert proxy.seen[1][1]["User-Agent"] == "app/4"

    run(main())
    with pytest.raises(TypeError, match="not both"):
        connect("ws://127.0.0.1/", user_agent="a", user_agent_header="b")


# -- SOCKS -------------------------------------------------------------------


def test_socks5_proxy(run: Any) -> None:
    pytest.importorskip("python_socks")

    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server, Socks5Proxy() as proxy:
            # socks5h: the proxy resolves the name; socks5: the client does.
            await _echo_through(
                f"ws://localhost:{server.port}/", proxy=f"socks5h://127.0.0.1:{proxy.port}"
            )
            await _echo_through(
                f"ws://127.0.0.1:{server.port}/", proxy=f"socks5://127.0.0.1:{proxy.port}"
            )
            assert proxy.seen == [("localhost", server.port), ("127.0.0.1", server.port)]
            # The proxy cannot reach the server.
            with pytest.raises(ProxyError, match="SOCKS"):
                await connect("ws://127.0.0.1:9/", proxy=f"socks5://127.0.0.1:{proxy.port}")

    run(main())


def test_socks5_authentication(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("python_socks")

    async def main() -> None:
        async with serve(greet, "127.0.0.1", 0) as server, Socks5Proxy(("me", "s3cret")) as proxy:
            url = f"ws://127.0.0.1:{server.port}/"
            await _echo_through(url, proxy=f"socks5://me:s3cret@127.0.0.1:{proxy.port}")
            with pytest.raises(ProxyError) as info:
                await connect(url, proxy=f"socks5://me:wrong@127.0.0.1:{proxy.port}")
            assert "wrong" not in str(info.value)
            assert process_exception(info.value) is info.value
            # from the environment
            monkeypatch.setenv("socks_proxy", f"socks5h://me:s3cret@127.0.0.1:{proxy.port}")
            await _echo_through(url)
            assert len(proxy.seen) == 2

    run(main())


def test_socks_without_python_socks(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"pip install 'pyfastws\[socks\]'"):
        connect("ws://127.0.0.1:9/", proxy="socks5h://127.0.0.1:1080")
    monkeypatch.setenv("all_proxy", "socks5h://127.0.0.1:1080")

    async def main() -> None:
        with pytest.raises(ImportError, match="python-socks"):
            await connect("ws://127.0.0.1:9/")

    monkeypatch.delenv("all_proxy")
    monkeypatch.setenv("ws_proxy", "socks5h://127.0.0.1:1080")
    run(main())


# -- options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://proxy.example:21", "scheme"),
        ("proxy.example:3128", "scheme"),
        ("http://", "no host"),
        ("http://proxy.example:99999", "port"),
        ("http://user@proxy.example", "password"),
        ("http://proxy.example/path", "path"),
        ("http://proxy.example?x=1", "query"),
        ("http://u:hunter2@proxy.example/x", "path"),
        ("http://proxy.example\r\n:3128", "control"),
    ],
)
def test_invalid_proxies(url: str, problem: str) -> None:
    with pytest.raises(InvalidProxy, match=problem) as info:
        connect("ws://127.0.0.1/", proxy=url)
    assert isinstance(info.value, ValueError)
    assert "hunter2" not in str(info.value)


def test_proxy_options_that_do_not_go_together() -> None:
    with pytest.raises(TypeError, match="proxy=None"):
        connect("ws://127.0.0.1/", proxy=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="proxy_ssl"):
        connect(
            "ws://127.0.0.1/", proxy="http://127.0.0.1:3128", proxy_ssl=ssl.create_default_context()
        )
    with pytest.raises(ValueError, match="path or sock"):
        connect("ws://127.0.0.1/", proxy="http://127.0.0.1:3128", path="/tmp/x.sock")

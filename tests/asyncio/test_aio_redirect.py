"""The client follows HTTP redirects (3xx with a Location), within limits."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import pytest
from aio_helpers import tolerate_sslproto_leak
from proxy_servers import certificates, moved

from fastws import limits
from fastws.asyncio import ServerConnection, connect, serve
from fastws.events import Request, Response
from fastws.exceptions import InvalidStatus, InvalidURI, SecurityError


async def path_and_headers(ws: ServerConnection) -> None:
    assert ws.request is not None
    auth = ws.request.headers.get("Authorization", "-")
    await ws.send(f"{ws.request.path} {auth}")
    await ws.wait_closed()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_relative_redirect_is_followed(run: Any, status: int) -> None:
    async def main() -> None:
        handler = moved(status, "../new/place?x=1")
        async with serve(path_and_headers, "127.0.0.1", 0, process_request=handler) as server:
            url = f"ws://127.0.0.1:{server.port}/old/here"
            async with connect(url, additional_headers={"Authorization": "Bearer t"}) as ws:
                # same origin: the credentials go along
                assert await ws.recv() == "/new/place?x=1 Bearer t"

    run(main())


def test_a_redirect_to_another_server_drops_credentials(run: Any) -> None:
    async def main() -> None:
        async with serve(path_and_headers, "127.0.0.1", 0) as target:
            # an http:// location means ws:// (https:// means wss://)
            handler = moved(302, f"http://127.0.0.1:{target.port}/there")
            async with serve(path_and_headers, "127.0.0.1", 0, process_request=handler) as first:
                url = f"ws://127.0.0.1:{first.port}/old"
                headers = [("Authorization", "Bearer t"), ("Cookie", "a=b"), ("X-Keep", "1")]
                async with connect(url, additional_headers=headers) as ws:
                    assert await ws.recv() == "/there -"
                    assert ws.request is not None
                    assert ws.request.headers.get("X-Keep") == "1"
                    assert ws.request.headers.get("Cookie") is None

    run(main())


def test_too_many_redirects(run: Any) -> None:
    count = 0

    def loop_forever(ws: ServerConnection, request: Request) -> Response:
        nonlocal count
        count += 1
        return ws.respond(307, headers={"Location": f"/hop{count}"})

    async def main() -> None:
        async with serve(path_and_headers, "127.0.0.1", 0, process_request=loop_forever) as server:
            with pytest.raises(SecurityError, match="redirects") as info:
                await connect(f"ws://127.0.0.1:{server.port}/")
            assert isinstance(info.value.__cause__, InvalidStatus)

    run(main())
    assert count == limits.MAX_REDIRECTS + 1


def test_what_is_not_a_redirect_is_raised(run: Any) -> None:
    def no_location(ws: ServerConnection, request: Request) -> Response:
        if request.path == "/ftp":
            return ws.respond(301, headers={"Location": "ftp://example.com/"})
        return ws.respond(302 if request.path == "/302" else 304)

    async def main() -> None:
        async with serve(path_and_headers, "127.0.0.1", 0, process_request=no_location) as server:
            for path, status in (("/302", 302), ("/304", 304)):
                with pytest.raises(InvalidStatus) as info:
                    await connect(f"ws://127.0.0.1:{server.port}{path}")
                assert info.value.status == status
            with pytest.raises(InvalidURI) as error:
                await connect(f"ws://127.0.0.1:{server.port}/ftp")
            assert isinstance(error.value.__cause__, InvalidStatus)

    run(main())


def test_open_timeout_covers_the_whole_chain(run: Any) -> None:
    hops = 0

    async def slow_hops(ws: ServerConnection, request: Request) -> Response:
        nonlocal hops
        hops += 1
        await asyncio.sleep(0.15)
        return ws.respond(302, headers={"Location": f"/hop{hops}"})

    async def main() -> None:
        async with serve(path_and_headers, "127.0.0.1", 0, process_request=slow_hops) as server:
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=0.5)
            assert asyncio.get_running_loop().time() - started < 1.5

    run(main())
    assert 2 <= hops <= 5


def test_a_redirect_with_a_socket_given_is_refused(run: Any) -> None:
    async def main() -> None:
        handler = moved(301, "/new")
        async with serve(path_and_headers, "127.0.0.1", 0, process_request=handler) as server:
            assert server.port is not None
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setblocking(False)
            with pytest.raises(ValueError, match="sock"):
                await connect(f"ws://127.0.0.1:{server.port}/old", sock=sock)
            sock.close()

    run(main())


@tolerate_sslproto_leak
def test_a_redirect_from_wss_to_ws_is_refused(run: Any) -> None:
    server_ctx, client_ctx = certificates()

    async def main() -> None:
        async with serve(path_and_headers, "127.0.0.1", 0) as plain:
            down = moved(301, f"ws://localhost:{plain.port}/new")
            async with serve(
                path_and_headers, "127.0.0.1", 0, ssl=server_ctx, process_request=down
            ) as secure:
                with pytest.raises(SecurityError, match="ws://"):
                    await connect(f"wss://localhost:{secure.port}/old", ssl=client_ctx)
                # wss to wss is fine, and ws to wss too
                same = f"wss://localhost:{secure.port}/new"
                async with connect(same, ssl=client_ctx) as ws:
                    assert await ws.recv() == "/new -"

    run(main())
    gc.collect()

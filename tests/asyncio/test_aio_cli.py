"""The command line: ``python -m fastws echo`` and ``python -m fastws connect``."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aio_helpers import CMD, ENV, ROOT, EchoServer, free_port

import fastws
from fastws.__main__ import main
from fastws.asyncio import ConnectionClosedError, connect


def _cli(
    *args: str, stdin: str | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CMD, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )


@pytest.fixture(params=[(), ("--callback",)], ids=["async-for", "callback"])
def echo_server(request: pytest.FixtureRequest) -> Iterator[EchoServer]:
    server = EchoServer(*request.param)
    try:
        yield server
    finally:
        assert server.stop() == 0


def test_help_and_version() -> None:
    for args in (["--help"], ["echo", "--help"], ["connect", "--help"]):
        out = _cli(*args)
        assert out.returncode == 0
        assert "usage:" in out.stdout
    out = _cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip().startswith(f"fastws {fastws.__version__}")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nope"],
        ["echo", "--port", "abc"],
        ["echo", "--port", "70000"],
        ["echo", "--max-size", "-1"],
        ["echo", "--bogus"],
        ["connect"],
    ],
)
def test_bad_arguments_one_line(args: list[str]) -> None:
    out = _cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("fastws") and "error:" in lines[0]
    assert "Traceback" not in out.stderr


def test_main_returns_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["echo", "--port", "x"]) == 2
    assert main(["connect", "http://nope"]) == 1
    err = capsys.readouterr().err
    assert "is not a valid WebSocket URI: the scheme is not ws:// or wss://" in err


def test_connect_refused_one_line() -> None:
    port = free_port()
    out = _cli("connect", f"ws://127.0.0.1:{port}/", stdin="")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastws: error: cannot connect"), out.stderr


def test_port_in_use_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = _cli("echo", "--port", str(port))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastws: error: cannot listen"), out.stderr


def test_echo_serves_page(echo_server: EchoServer) -> None:
    url = f"http://127.0.0.1:{echo_server.port}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        body = response.read()
    page = (ROOT / "fastws" / "static" / "echo.html").read_bytes()
    assert body == page
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + "missing", timeout=10)
    assert info.value.code == 400
    info.value.close()


def test_echo_server_round_trip(echo_server: EchoServer) -> None:
    async def client() -> None:
        async with connect(f"ws://127.0.0.1:{echo_server.port}/") as ws:
            assert ws.extensions == ["permessage-deflate"]
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x00bin")
            assert await ws.recv() == b"\x00bin"
            await ws.send(b"x" * (1 << 20))
            assert await ws.recv() == b"x" * (1 << 20)
            await ws.send(b"x" * ((1 << 20) + 1))
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1009

    asyncio.run(client())


def test_echo_options() -> None:
    server = EchoServer("--no-compression", "--max-size", "100", "--uvloop")
    try:

        async def client() -> None:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.extensions == []
                await ws.send("y" * 100)
                assert await ws.recv() == "y" * 100
                await ws.send("y" * 101)
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()

        asyncio.run(client())
    finally:
        assert server.stop() == 0


def test_connect_client_round_trip(echo_server: EchoServer) -> None:
    proc = subprocess.Popen(
        [*CMD, "connect", f"ws://127.0.0.1:{echo_server.port}/"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        for line in ("hello", "world ✓"):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == line + "\n"
        proc.stdin.close()  # EOF: close with 1000
        assert proc.wait(10) == 0
        stderr = proc.stderr.read()
        assert "connected to" in stderr
        assert "code 1000" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_connect_with_piped_input_prints_every_reply(echo_server: EchoServer) -> None:
    # All of the input at once, then end of input: the replies still come.
    lines = [f"line {i}" for i in range(50)]
    out = _cli(
        "connect",
        f"ws://127.0.0.1:{echo_server.port}/",
        "--linger",
        "0.5",
        stdin="".join(f"{line}\n" for line in lines),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == lines  # not a terminal: no "< " marks
    assert "code 1000" in out.stderr


def test_connect_to_a_self_signed_server(run: Any) -> None:
    import gc
    import ssl

    from fastws.asyncio import serve

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)

    async def hello(ws: Any) -> None:
        await ws.send("hi")
        await ws.wait_closed()

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *CMD,
            "connect",
            *args,
            "--linger",
            "0.2",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
        return proc.returncode or 0, stdout.decode(), stderr.decode()

    async def main() -> None:
        async with serve(hello, "127.0.0.1", 0, ssl=server_ctx) as server:
            uri = f"wss://localhost:{server.port}/"
            status, stdout, stderr = await cli(uri)
            assert status == 1 and "certificate" in stderr.lower(), stderr
            status, stdout, stderr = await cli(uri, "--insecure")
            assert status == 0 and stdout.splitlines() == ["hi"], stderr
            with ca.cert_pem.tempfile() as cafile:
                status, stdout, stderr = await cli(uri, "--cafile", cafile)
            assert status == 0 and stdout.splitlines() == ["hi"], stderr

    run(main(), timeout=60)
    gc.collect()  # a failed TLS handshake's transport on 3.10 (see test_aio_options)


def test_connect_client_sees_server_close(run: Any) -> None:
    from fastws.asyncio import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        await ws.send("welcome")
        await ws.send(b"\x01\x02")
        await ws.close(1001, "maintenance")

    async def main() -> subprocess.CompletedProcess[str]:
        async with serve(handler, "127.0.0.1", 0) as server:
            proc = await asyncio.create_subprocess_exec(
                *CMD,
                "connect",
                f"ws://127.0.0.1:{server.port}/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            assert proc.stdout is not None and proc.stderr is not None and proc.stdin
            # stdin stays open: the client must end because the server closed.
            stdout = await asyncio.wait_for(proc.stdout.read(), 20)
            stderr = await asyncio.wait_for(proc.stderr.read(), 20)
            await asyncio.wait_for(proc.wait(), 20)
            proc.stdin.close()
            return subprocess.CompletedProcess(
                [], proc.returncode or 0, stdout.decode(), stderr.decode()
            )

    out = run(main(), timeout=25)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["welcome", "(binary, 2 bytes) 01 02"]
    assert "code 1001 (maintenance)" in out.stderr


def test_page_is_package_data() -> None:
    """The page has one source, inside the package, shipped in wheels."""
    from importlib import resources

    page = resources.files("fastws").joinpath("static").joinpath("echo.html").read_text("utf-8")
    for element in ('id="message"', 'id="send"', 'id="log"', 'id="code"', 'id="close"'):
        assert element in page
    config = (ROOT / "pyproject.toml").read_text()
    assert '"fastws.static" = ["*.html"]' in config  # shipped as package data
    assert not (ROOT / "examples" / "echo.html").exists()  # no second copy to drift
    assert "fastws/static/echo.html" in (ROOT / "examples" / "README.md").read_text()


def test_example_echo_server(run: Any) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_echo_example", ROOT / "examples" / "echo_server.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    from fastws.asyncio import serve

    async def main() -> None:
        async with serve(
            example.echo, "127.0.0.1", 0, process_request=example.process_request
        ) as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await writer.wait_closed()
            assert data.startswith(b"HTTP/1.1 200 ")
            assert data.endswith(example.PAGE)
            async with connect(f"ws://127.0.0.1:{s.port}/") as ws:
                await ws.send("example")
                assert await ws.recv() == "example"

    run(main())

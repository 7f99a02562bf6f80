"""Command line: ``python -m fastws echo``, ``connect URI`` and ``serve module:handler``.

``echo`` runs an echo server (text back as text, binary as binary) that also
serves the browser echo page on a plain ``GET /``. ``connect`` is an
interactive client: each line read from stdin is sent as a text message and
each received message is printed; end of input closes the connection with 1000.
``serve`` runs a handler in several worker processes sharing one port (see
:mod:`fastws.workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any, NoReturn

from fastws import __version__, implementation, limits
from fastws.frames import CLOSE_GOING_AWAY, CLOSE_NORMAL

__all__ = ["main"]

_PROG = "fastws"


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _CommandError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _size(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: expected a number of bytes"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be positive")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be 0..65535")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=_PROG,
        description="fastws: fast WebSocket server and client tools.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"fastws {__version__} ({implementation}), Python {sys.version.split()[0]}",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    commands.required = True

    echo = commands.add_parser(
        "echo",
        help="run an echo server (also serves the browser echo page on GET /)",
        description="Run a WebSocket echo server. A plain HTTP GET / (no upgrade) "
        "returns the browser echo page.",
    )
    echo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    echo.add_argument("--port", type=_port, default=8765, help="TCP port (default: %(default)s)")
    echo.add_argument(
        "--max-size",
        type=_size,
        default=limits.MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="largest accepted message (default: %(default)s)",
    )
    echo.add_argument(
        "--no-compression", action="store_true", help="do not negotiate permessage-deflate"
    )
    echo.add_argument("--uvloop", action="store_true", help="run on uvloop")
    echo.add_argument(
        "--callback",
        action="store_true",
        help="receive with the on_message() callback and answer with send_nowait() "
        "(no task switch per message) instead of an async for loop",
    )

    connect = commands.add_parser(
        "connect",
        help="interactive client: stdin lines are sent, messages are printed",
        description="Connect to a WebSocket server. Each line of standard input is sent "
        "as a text message; each received message is printed on standard output "
        "(binary ones in hex; on a terminal, received lines start with '< '). At the end "
        "of input the connection stays open until the server has been quiet for "
        "--linger seconds (so that piped input gets its replies), then closes with 1000.",
    )
    connect.add_argument("uri", metavar="URI", help="ws:// or wss:// URI")
    connect.add_argument(
        "--linger",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="after the end of input, wait until nothing was received for this long "
        "before closing (default: %(default)s)",
    )
    connect.add_argument(
        "--cafile", metavar="PATH", help="trust the certificates in PATH for wss:// (PEM)"
    )
    connect.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="wss:// without verifying the server's certificate (self-signed servers)",
    )
    connect.add_argument(
        "--max-size",
        type=_size,
        default=limits.MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="largest accepted message (default: %(default)s)",
    )
    connect.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    connect.add_argument("--uvloop", action="store_true", help="run on uvloop")

    serve = commands.add_parser(
        "serve",
        help="serve module:handler from several worker processes sharing one port",
        description="Serve a handler (a coroutine function, given as module:function and "
        "imported by each worker) from N worker processes that share the port with "
        "SO_REUSEPORT. A worker that dies is restarted; SIGINT or SIGTERM stops them all, "
        "each closing its connections with 1001.",
    )
    serve.add_argument("handler", metavar="MODULE:FUNCTION", help="the connection handler")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=_port, default=8765, help="TCP port (default: %(default)s)")
    serve.add_argument(
        "--workers",
        type=_size,
        default=None,
        metavar="N",
        help="worker processes (default: the number of CPUs)",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="share publishes between workers (and machines) through this Redis, "
        "e.g. redis://127.0.0.1:6379",
    )
    serve.add_argument(
        "--no-compression", action="store_true", help="do not negotiate permessage-deflate"
    )
    serve.add_argument("--uvloop", action="store_true", help="run the workers on uvloop")
    return parser


def _echo_page() -> bytes:
    return resources.files("fastws").joinpath("static").joinpath("echo.html").read_bytes()


async def _run_echo(args: argparse.Namespace) -> int:
    from fastws.asyncio import ServerConnection, serve
    from fastws.events import Request, Response

    page = _echo_page()

    async def echo(ws: ServerConnection) -> None:
        if args.callback:
            ws.on_message(ws.send_nowait)
            await ws.wait_closed()
            return
        async for message in ws:
            await ws.send(message)

    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        upgrade = request.headers.get("Upgrade", "")
        if "websocket" in upgrade.lower():
            return None
        if request.method == "GET" and request.path.split("?", 1)[0] in ("/", "/index.html"):
            return ws.respond(200, page, [("Content-Type", "text/html; charset=utf-8")])
        return None

    try:
        server = await serve(
            echo,
            args.host,
            args.port,
            max_size=args.max_size,
            compression=None if args.no_compression else "deflate",
            process_request=process_request,
        )
    except OSError as exc:
        raise _CommandError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, server.close)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"fastws echo server on ws://{host}:{server.port}/ "
        f"(page: http://{host}:{server.port}/; {implementation}); Ctrl-C to stop",
        flush=True,
    )
    await server.wait_closed()
    return 0


def _format(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    return f"(binary, {len(message)} bytes) {message.hex(' ')}"


async def _run_connect(args: argparse.Namespace) -> int:
    from fastws.asyncio import ConnectionClosed, connect
    from fastws.exceptions import InvalidHandshake

    context: ssl.SSLContext | None = None
    if args.insecure or args.cafile:
        if not args.uri.startswith("wss://"):
            raise _CommandError("--insecure and --cafile are for wss:// URIs")
        try:
            context = ssl.create_default_context(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise _CommandError(f"--cafile {args.cafile}: {exc}") from None
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        ws = await connect(
            args.uri,
            ssl=context,
            max_size=args.max_size,
            compression=None if args.no_compression else "deflate",
        )
    except ValueError as exc:
        raise _CommandError(str(exc)) from None
    except InvalidHandshake as exc:
        raise _CommandError(f"cannot connect to {args.uri}: handshake failed: {exc}") from None
    except (OSError, TimeoutError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise _CommandError(f"cannot connect to {args.uri}: {detail}") from None
    print(f"connected to {args.uri}", file=sys.stderr, flush=True)

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read_stdin() -> None:
        # A daemon thread: blocking reads on stdin must not delay exit.
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError, RuntimeError):
            pass
        try:
            loop.call_soon_threadsafe(lines.put_nowait, None)
        except RuntimeError:  # the loop is already closed
            pass

    threading.Thread(target=read_stdin, name="fastws-stdin", daemon=True).start()

    marker = "< " if sys.stdout.isatty() else ""
    last_received = loop.time()

    async def sender() -> None:
        nonlocal last_received
        while True:
            line = await lines.get()
            if line is None:
                break
            try:
                await ws.send(line)
            except ConnectionClosed:
                return
        # End of input: let the replies to what was sent arrive first.
        last_received = max(last_received, loop.time())
        while (quiet := loop.time() - last_received) < args.linger:
            await asyncio.sleep(args.linger - quiet)
        await ws.close(CLOSE_NORMAL)

    async def receiver() -> None:
        nonlocal last_received
        try:
            async for message in ws:
                last_received = loop.time()
                print(marker + _format(message), flush=True)
        except ConnectionClosed:
            pass

    send_task = asyncio.ensure_future(sender())
    recv_task = asyncio.ensure_future(receiver())
    try:
        await asyncio.wait({send_task, recv_task}, return_when=asyncio.FIRST_COMPLETED)
        await ws.close(CLOSE_NORMAL)
        await recv_task
    finally:
        send_task.cancel()
        recv_task.cancel()
        await asyncio.gather(send_task, recv_task, return_exceptions=True)
    code, reason = ws.close_code, ws.close_reason
    print(
        f"connection closed: code {code}" + (f" ({reason})" if reason else ""),
        file=sys.stderr,
        flush=True,
    )
    return 0 if code in (CLOSE_NORMAL, CLOSE_GOING_AWAY) else 1


def _run(coro_fn: Any, args: argparse.Namespace) -> int:
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            raise _CommandError("--uvloop: uvloop is not installed (pip install uvloop)") from None
        result: int = uvloop.run(coro_fn(args))
        return result
    return int(asyncio.run(coro_fn(args)))


def _run_serve(args: argparse.Namespace) -> int:
    import logging
    import os

    from fastws import workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # module:function from the current folder
    options: dict[str, Any] = {}
    if args.no_compression:
        options["compression"] = None
    try:
        return workers.run(
            args.handler,
            args.host,
            args.port,
            workers=args.workers,
            redis=args.redis,
            uvloop=args.uvloop,
            **options,
        )
    except (ImportError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a runtime error, 2 on bad arguments.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    if args.command == "serve":
        return _run_serve(args)
    runner = _run_echo if args.command == "echo" else _run_connect
    try:
        return _run(runner, args)
    except _CommandError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Several server processes on one port: :func:`run` (``python -m fastws serve --workers N``).

Each worker process runs :func:`fastws.asyncio.serve` on the same host and
port with ``SO_REUSEPORT`` (``reuse_port=True``): the kernel spreads the
incoming connections among them. With a Redis URL every worker uses a
:class:`~fastws.pubsub.RedisBroker`, so that a publish in any worker reaches
the subscribers of every worker.

The supervisor (the calling process) restarts a worker that dies, and on
SIGINT or SIGTERM stops them all: each closes its connections with 1001
(going away) and exits. ``SO_REUSEPORT`` exists on Linux and the BSDs
(macOS included), not on Windows.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastws import _check

__all__ = ["run"]

LOGGER = logging.getLogger("fastws.workers")

Handler = Callable[[Any], Awaitable[Any]]

#: Shortest time between two starts of one worker slot, in seconds: a worker
#: that dies at once is not restarted in a busy loop.
_RESTART_DELAY = 1.0


def _spec(handler: str | Handler) -> str:
    """``handler`` as ``"module:attribute"``, importable in a fresh process."""
    if isinstance(handler, str):
        module, colon, name = handler.partition(":")
        if not colon or not module or not name:
            raise ValueError(f"handler must look like 'module:function', not {handler!r}")
        return handler
    if not callable(handler):
        raise TypeError(f"handler must be 'module:function' or a function, not {handler!r}")
    where: str | None = getattr(handler, "__module__", None)
    name = getattr(handler, "__qualname__", "")  # a str
    if not where or where == "__main__" or "<" in name:
        raise ValueError(
            f"{handler!r} cannot be imported by a worker process: "
            "define it at the top level of a module and pass 'module:function'"
        )
    return f"{where}:{name}"


def _resolve(spec: str) -> Handler:
    module_name, _, name = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in name.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


async def _serve_worker(
    spec: str, host: str, port: int, redis: str | None, options: dict[str, Any], ready: Any
) -> None:
    from fastws.asyncio import serve

    broker = None
    if redis is not None:
        from fastws.pubsub import RedisBroker

        broker = RedisBroker(redis)
    handler = _resolve(spec)
    async with serve(handler, host, port, reuse_port=True, broker=broker, **options) as server:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.close)
        if broker is not None:
            await broker.wait_connected()
        ready.send(os.getpid())
        await server.wait_closed()


def _worker(
    spec: str,
    host: str,
    port: int,
    redis: str | None,
    options: dict[str, Any],
    use_uvloop: bool,
    ready: Any,
) -> None:
    """The body of a worker process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    # Until the server installs its own handlers, SIGINT stops the worker quietly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    coro = _serve_worker(spec, host, port, redis, options, ready)
    if use_uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


def run(
    handler: str | Handler,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    workers: int | None = None,
    redis: str | None = None,
    uvloop: bool = False,
    stop_timeout: float = 15.0,
    **serve_options: Any,
) -> int:
    """Serve ``handler`` from ``workers`` processes sharing ``host:port``, until SIGINT or SIGTERM.

    ::

        # app.py
        import fastws.workers

        async def handler(ws):
            ws.subscribe("news")
            async for message in ws:
                ws.publish("news", message)

        if __name__ == "__main__":
            fastws.workers.run("app:handler", "0.0.0.0", 8765, workers=4,
                               redis="redis://127.0.0.1:6379")

    Blocks the calling thread (which must be the main thread: it handles the
    signals). Each worker logs on stderr.

    Args:
        handler: ``"module:function"``, or a function defined at the top level
            of an importable module (workers import it).
        host: the address to listen on.
        port: the TCP port (not 0: every worker must bind the same one).
        workers: how many processes (default: the number of CPUs).
        redis: a Redis URL: every worker publishes through a
            :class:`~fastws.pubsub.RedisBroker` on it.
        uvloop: run the workers on uvloop.
        stop_timeout: seconds to wait for the workers to close their
            connections and exit after a signal, before killing them.
        **serve_options: other options of :func:`fastws.asyncio.serve`
            (picklable values: they are sent to each worker).

    Returns:
        0 once every worker stopped after a signal.

    Raises:
        ValueError, TypeError: a bad argument.
        RuntimeError: a worker failed to start (e.g. the handler cannot be
            imported, or the port is taken by another program).
    """
    spec = _spec(handler)
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {host!r}")
    _check.integer("port", port, minimum=1)
    if port > 65535:
        raise ValueError(f"port must be in 1..65535, got {port!r}")
    workers = _check.integer("workers", workers, minimum=1, none=True) or os.cpu_count() or 1
    if redis is not None and not isinstance(redis, str):
        raise TypeError(f"redis must be a URL str or None, not {redis!r}")
    _check.boolean("uvloop", uvloop)
    _check.seconds("stop_timeout", stop_timeout)
    for name in ("reuse_port", "broker", "host", "port"):
        if name in serve_options:
            raise TypeError(f"run() sets {name} itself")
    if redis is not None:
        from fastws.pubsub import RedisBroker

        RedisBroker(redis)  # redis-py is installed, the URL a str: fail now, not in N workers
    # Check the options once, here, rather than in every worker.
    from fastws.asyncio import serve

    serve(_resolve(spec), host, port, reuse_port=True, **serve_options)

    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[Any] = [None] * workers
    started = [0.0] * workers
    receiver, sender = context.Pipe(duplex=False)

    def start(slot: int) -> None:
        proc = context.Process(
            target=_worker,
            args=(spec, host, port, redis, serve_options, uvloop, sender),
            name=f"fastws-worker-{slot}",
            daemon=True,
        )
        proc.start()
        procs[slot] = proc
        started[slot] = time.monotonic()

    try:
        for slot in range(workers):
            start(slot)
        ready = 0
        while ready < workers and not stopping:
            if receiver.poll(0.1):
                receiver.recv()
                ready += 1
            elif any(p.exitcode is not None for p in procs):
                raise RuntimeError(
                    "a worker failed to start (its error is above): "
                    f"exit codes {[p.exitcode for p in procs]}"
                )
        LOGGER.info("%d workers serving on %s:%d", workers, host, port)
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.2)
            while receiver.poll():
                receiver.recv()  # restarted workers say they are ready
            for slot, proc in enumerate(procs):
                if proc.exitcode is None or stopping:
                    continue
                if time.monotonic() - started[slot] < _RESTART_DELAY:
                    continue
                LOGGER.warning(
                    "worker %d (pid %d) exited with %s; restarting it",
                    slot,
                    proc.pid,
                    proc.exitcode,
                )
                start(slot)
        LOGGER.info("stopping %d workers", workers)
    finally:
        for proc in procs:
            if proc is not None and proc.exitcode is None:
                proc.terminate()  # SIGTERM: the worker closes its connections with 1001
        deadline = time.monotonic() + stop_timeout
        for proc in procs:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()
        receiver.close()
        sender.close()
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
    return 0

"""Topics and brokers: publish a message to every subscriber of a topic.

A server connection subscribes to topics (``ws.subscribe("room:1")``); a
publish (``server.publish(topic, message)`` or ``ws.publish(topic,
message)``, which skips the sender) frames the message once and writes the
same bytes to every subscriber's transport in one pass, with no coroutine
per subscriber. See :meth:`fastws.asyncio.Server.publish`.

A :class:`Broker` carries publishes between processes:

- :class:`LocalBroker` (the default): one process, nothing leaves it.
- :class:`RedisBroker`: every process that uses the same Redis receives the
  publishes of the others, on Redis pub/sub (sharded pub/sub,
  ``SPUBLISH``/``SSUBSCRIBE``, when the server has it: Redis 7 and later).
  A process listens to a topic's channel only while it has subscribers of
  that topic. It needs redis-py (``pip install pyfastws[redis]``); fastws
  itself imports without it.

A server uses one broker, and a broker serves one server: ``serve(handler,
..., broker=RedisBroker("redis://127.0.0.1:6379"))``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from fastws import _check, limits

__all__ = ["Broker", "LocalBroker", "PublishResult", "RedisBroker"]

#: What a broker calls with each message that another process published:
#: ``deliver(topic, payload, text)``, on the event loop's thread.
Deliver = Callable[[str, bytes, bool], object]

LOGGER = logging.getLogger("fastws.pubsub")


class PublishResult(NamedTuple):
    """What one publish did in this process.

    Attributes:
        delivered: subscribers whose transport received the message.
        dropped: open subscribers that did not get it: their buffer was above
            ``max_backpressure`` (with ``backpressure="close"`` they are also
            being closed), or they were sending a fragmented message.
    """

    delivered: int
    dropped: int


class Broker:
    """Carries publishes between the processes that serve the same topics.

    The server calls :meth:`start` when it opens and :meth:`close` when it
    has closed; :meth:`subscribe` when a topic gets its first local
    subscriber and :meth:`unsubscribe` when its last one leaves;
    :meth:`publish` after each local publish, for the other processes. A
    broker calls ``deliver(topic, payload, text)`` with what the others
    published. This base class is also a broker for one process (see
    :class:`LocalBroker`): nothing is sent anywhere.
    """

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    @property
    def lost(self) -> int:
        """Publishes that could not be sent to the other processes (e.g. Redis was away)."""
        return 0

    async def start(self, deliver: Deliver) -> None:
        """Start relaying; ``deliver`` receives the other processes' publishes.

        Raises:
            RuntimeError: the broker already serves a server.
        """
        if self._deliver is not None:
            raise RuntimeError(f"{type(self).__name__} already serves a server")
        self._deliver = deliver

    def subscribe(self, topic: str) -> None:
        """The first local subscriber of ``topic`` arrived: listen to it."""

    def unsubscribe(self, topic: str) -> None:
        """The last local subscriber of ``topic`` left: stop listening to it."""

    def publish(self, topic: str, payload: bytes, text: bool) -> None:
        """Send a publish to the other processes, without waiting (never raises for I/O)."""

    async def close(self) -> None:
        """Stop relaying; the broker may then start again for another server."""
        self._deliver = None


class LocalBroker(Broker):
    """The default broker: publishes stay in this process."""


_TEXT, _BINARY = b"t", b"b"
_ORIGIN = 16  # bytes of the random process identifier that prefixes each message


class RedisBroker(Broker):
    """Relays publishes between processes through Redis pub/sub (redis-py's asyncio client).

    Each message goes to the Redis channel ``prefix + topic`` as one
    ``SPUBLISH`` (or ``PUBLISH`` where sharded pub/sub is missing), tagged
    with this broker's random id so that it does not come back to its
    sender (local subscribers got it directly). A process subscribes to a
    channel only while it has local subscribers of the topic.

    When Redis is unreachable the broker reconnects with exponential backoff
    (``0.1`` s doubling up to ``max_backoff``), logging each failure and the
    reconnection on the ``fastws.pubsub`` logger; local subscribers still get
    local publishes. Every publish that could not be sent meanwhile (or that
    was in flight when the connection broke, or that overflowed
    ``max_pending``) is counted in :attr:`lost` and logged, never dropped
    silently.

    Args:
        url: a Redis URL, e.g. ``"redis://127.0.0.1:6379/0"``.
        prefix: prefix of the Redis channel names.
        sharded: use sharded pub/sub: ``None`` asks the server (Redis 7 and
            later have it), ``True``/``False`` forces the choice.
        max_pending: publishes waiting to be sent before newer ones are lost.
        max_backoff: longest wait between two reconnection attempts, in seconds.

    Raises:
        ImportError: redis-py (``redis>=5``) is not installed.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "fastws:",
        sharded: bool | None = None,
        max_pending: int = 10_000,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__()
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}: {url!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}: {prefix!r}")
        _check.boolean("sharded", sharded, none=True)
        _check.integer("max_pending", max_pending, minimum=1)
        _check.seconds("max_backoff", max_backoff, zero=False)
        try:
            import redis.asyncio as redis_asyncio
        except ImportError as exc:
            raise ImportError(
                "RedisBroker needs redis-py: pip install 'pyfastws[redis]' (or 'redis>=5')"
            ) from exc
        self._redis: Any = redis_asyncio
        self.url = url
        self.prefix = prefix
        self._sharded_option = sharded
        self._max_pending = max_pending
        self._max_backoff = max_backoff
        self._origin = os.urandom(_ORIGIN)
        self._channels: set[str] = set()
        self._commands: set[asyncio.Task[Any]] = set()
        self._pending: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._client: Any = None
        self._pubsub: Any = None
        self._sharded = False
        self._task: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None
        self._lost = 0
        self._unlogged_lost = 0
        self._last_log = -limits.LOG_INTERVAL
        self._closing = False

    @property
    def lost(self) -> int:
        """Publishes not sent to Redis: it was away, the connection broke, or too many waited."""
        return self._lost

    @property
    def connected(self) -> bool:
        """Whether the broker is connected to Redis now."""
        return self._connected is not None and self._connected.is_set()

    @property
    def sharded(self) -> bool:
        """Whether sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``) is in use."""
        return self._sharded

    async def wait_connected(self) -> None:
        """Wait until the broker is connected to Redis (handy in tests and at startup)."""
        if self._connected is None:
            raise RuntimeError("the broker is not started")
        await self._connected.wait()

    async def start(self, deliver: Deliver) -> None:
        """Connect to Redis in the background and start relaying (see :class:`Broker`)."""
        await super().start(deliver)
        self._closing = False
        self._wakeup = asyncio.Event()
        self._connected = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def subscribe(self, topic: str) -> None:
        """Listen to the topic's channel (see :class:`Broker`)."""
        channel = self.prefix + topic
        self._channels.add(channel)
        self._command("subscribe", channel)

    def unsubscribe(self, topic: str) -> None:
        """Stop listening to the topic's channel (see :class:`Broker`)."""
        channel = self.prefix + topic
        self._channels.discard(channel)
        self._command("unsubscribe", channel)

    def _command(self, verb: str, channel: str) -> None:
        # Sent at once when connected; else _connect() subscribes to every
        # channel in self._channels.
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            return
        name = ("s" + verb) if self._sharded else verb
        task = asyncio.get_running_loop().create_task(getattr(pubsub, name)(channel))
        self._commands.add(task)
        task.add_done_callback(self._command_done)

    def _command_done(self, task: asyncio.Task[Any]) -> None:
        self._commands.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The connection broke: _connect() subscribes again to every channel.
            LOGGER.debug("a Redis (un)subscription failed: %r", task.exception())

    def publish(self, topic: str, payload: bytes, text: bool) -> None:
        """Queue the message for Redis, or count it as lost (see :class:`Broker`)."""
        if not self.connected:
            self._count_lost(1, "Redis is unavailable")
            return
        if len(self._pending) >= self._max_pending:
            self._count_lost(1, "too many publishes wait for Redis")
            return
        self._pending.append(
            (self.prefix + topic, (_TEXT if text else _BINARY) + self._origin + payload)
        )
        assert self._wakeup is not None
        self._wakeup.set()

    def _count_lost(self, count: int, why: str) -> None:
        if count <= 0:
            return
        self._lost += count
        self._unlogged_lost += count
        now = time.monotonic()
        if now - self._last_log >= limits.LOG_INTERVAL:  # at most one line per interval
            self._last_log = now
            LOGGER.warning(
                "lost %d publish(es) since the last report: %s (lost in all: %d)",
                self._unlogged_lost,
                why,
                self._lost,
            )
            self._unlogged_lost = 0

    async def close(self) -> None:
        """Disconnect from Redis; publishes still waiting are counted as lost."""
        self._closing = True
        task, self._task = self._task, None
        tasks = [*self._commands, *([task] if task is not None else [])]
        for pending in tasks:
            pending.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._count_lost(len(self._pending), "the broker closed")
        self._pending.clear()
        await self._disconnect()
        await super().close()

    # -- the connection task -------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                await self._connect()
                backoff = 0.1
                assert self._connected is not None
                self._connected.set()
                LOGGER.info(
                    "connected to Redis at %s (%s pub/sub)",
                    self._client.connection_pool.connection_kwargs.get("host", self.url),
                    "sharded" if self._sharded else "plain",
                )
                reader = asyncio.ensure_future(self._read())
                sender = asyncio.ensure_future(self._send())
                try:
                    done, _ = await asyncio.wait(
                        {reader, sender}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for task in (reader, sender):
                        task.cancel()
                    await asyncio.gather(reader, sender, return_exceptions=True)
                for task in done:
                    task.result()  # raises what ended the connection
                raise ConnectionError("the connection to Redis ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected is not None:
                    self._connected.clear()
                self._count_lost(len(self._pending), "the connection to Redis broke")
                self._pending.clear()
                await self._disconnect()
                delay = backoff * (0.5 + random.random() / 2)
                LOGGER.warning("Redis unavailable (%r); reconnecting in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._max_backoff)

    async def _connect(self) -> None:
        client = self._redis.Redis.from_url(self.url)
        self._client = client
        await client.ping()
        sharded = self._sharded_option
        if sharded is None:
            info = await client.info("server")
            major = int(str(info.get("redis_version", "0")).split(".")[0] or 0)
            sharded = major >= 7
        self._sharded = sharded
        pubsub = client.pubsub()
        self._pubsub = pubsub
        # Connect now, and listen to at least one channel: a pub/sub
        # connection with no subscription cannot be read from.
        channels = sorted(self._channels) or [self.prefix]
        if sharded:
            await pubsub.ssubscribe(*channels)
        else:
            await pubsub.subscribe(*channels)

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        for closing in (pubsub, client):
            if closing is None:
                continue
            try:
                aclose = getattr(closing, "aclose", None)  # redis-py 5.0.1 and later
                await (aclose() if aclose is not None else closing.close())
            except Exception:  # closing a broken connection may fail
                continue

    async def _read(self) -> None:
        pubsub = self._pubsub
        origin = self._origin
        prefix = len(self.prefix)
        kinds = ("message", "smessage")
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message.get("type") not in kinds:
                continue
            data = message["data"]
            if len(data) <= _ORIGIN or data[1 : 1 + _ORIGIN] == origin:
                continue  # our own publish (plain pub/sub echoes it), or not ours at all
            channel = message["channel"]
            topic = (channel.decode() if isinstance(channel, bytes) else channel)[prefix:]
            deliver = self._deliver
            if deliver is not None:
                deliver(topic, data[1 + _ORIGIN :], data[:1] == _TEXT)

    async def _send(self) -> None:
        client = self._client
        pending = self._pending
        wakeup = self._wakeup
        assert wakeup is not None
        command = "SPUBLISH" if self._sharded else "PUBLISH"
        while True:
            if not pending:
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = list(pending)
            pending.clear()
            try:
                pipe = client.pipeline(transaction=False)
                for channel, data in batch:
                    pipe.execute_command(command, channel, data)
                await pipe.execute()
            except Exception:
                self._count_lost(len(batch), "the connection to Redis broke")
                raise

"""Every default limit and timeout of fastws, written once.

The sans-IO state machine (:mod:`fastws.protocol`), the HTTP head parser
(:mod:`fastws.handshake`), the asyncio server and client and the command
line all take their defaults from here, so that the layers cannot drift
apart. Each is also documented with the option that uses it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BACKLOG",
    "BACKOFF_FACTOR",
    "BACKOFF_INITIAL_DELAY",
    "BACKOFF_MAX_DELAY",
    "BACKOFF_MIN_DELAY",
    "CLOSE_TIMEOUT",
    "DEFLATE_KEPT_WINDOW_BITS",
    "DEFLATE_LEVEL",
    "DEFLATE_MEM_LEVEL",
    "DEFLATE_POOL",
    "DEFLATE_THRESHOLD",
    "LOG_INTERVAL",
    "MAX_BACKPRESSURE",
    "MAX_CONNECTIONS",
    "MAX_FRAGMENTS",
    "MAX_HANDSHAKE_SIZE",
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MAX_MESSAGE_SIZE",
    "MAX_QUEUE",
    "MAX_REDIRECTS",
    "MAX_REQUEST_LINE",
    "OPEN_TIMEOUT",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "WRITE_LIMIT",
]

#: Largest message, in bytes, after decompression (``max_size``,
#: ``max_message_size``); 1009 above.
MAX_MESSAGE_SIZE: Final = 1 << 20
#: Most frames in one message for the sans-IO state machine; the asyncio
#: front-end's ``max_fragments="auto"`` derives its own from ``max_size``.
MAX_FRAGMENTS: Final = 1 << 16
#: Longest request or status line of the opening handshake (400 above).
MAX_REQUEST_LINE: Final = 8192
#: Longest header line of the opening handshake (431 above).
MAX_HEADER_LINE: Final = 8192
#: Most header lines of the opening handshake (431 above).
MAX_HEADERS: Final = 128
#: Largest head of the opening handshake, in bytes (431 above).
MAX_HANDSHAKE_SIZE: Final = 64 << 10
#: Received messages (frames when streaming) waiting for ``recv()`` before
#: receiving pauses.
MAX_QUEUE: Final = 16
#: High-water mark of the write buffer, in bytes (the low-water mark is a
#: quarter of it unless given).
WRITE_LIMIT: Final = 32 << 10
#: Seconds between keepalive pings.
PING_INTERVAL: Final = 20.0
#: Seconds to wait for a keepalive pong before failing with 1011.
PING_TIMEOUT: Final = 20.0
#: Seconds allowed for the opening handshake.
OPEN_TIMEOUT: Final = 10.0
#: Seconds allowed for the closing handshake and the end of the connection.
CLOSE_TIMEOUT: Final = 10.0
#: Pending connections the listening socket queues.
BACKLOG: Final = 100
#: Connections a server keeps at once (more get 503): "auto" is the
#: process's file-descriptor limit less an eighth (at least 32) kept for
#: everything else, so that the server never runs out of descriptors itself.
MAX_CONNECTIONS: Final = "auto"
#: Bytes a subscriber's transport may hold before a publish skips it
#: (``serve(max_backpressure=...)``).
MAX_BACKPRESSURE: Final = 1 << 20
#: Seconds between two log lines about refused connections or failed accepts.
LOG_INTERVAL: Final = 10.0
#: Reconnecting (``async for ws in connect(...)``): the first delay after a
#: failure is a random fraction of this many seconds (spreads the clients of
#: a restarted server). The environment variable
#: ``FASTWS_BACKOFF_INITIAL_DELAY`` (or ``WEBSOCKETS_BACKOFF_INITIAL_DELAY``)
#: overrides it, as the next three.
BACKOFF_INITIAL_DELAY: Final = 5.0
#: Reconnecting: the second delay, in seconds.
BACKOFF_MIN_DELAY: Final = 3.1
#: Reconnecting: each later delay is the previous one times this factor ...
BACKOFF_FACTOR: Final = 1.618
#: ... up to this many seconds.
BACKOFF_MAX_DELAY: Final = 90.0
#: Most HTTP redirects the client follows for one connection.
MAX_REDIRECTS: Final = 10
#: permessage-deflate: zlib level of our compressor (1 is fastest: at 64 KiB of
#: JSON about half the CPU of level 6, for about 20% more compressed bytes).
DEFLATE_LEVEL: Final = 1
#: permessage-deflate: zlib memLevel of our compressor (hash table of 2^12
#: entries; larger ones cost more to clear for each message and are no faster).
DEFLATE_MEM_LEVEL: Final = 5
#: permessage-deflate, server role, ``server_max_window_bits=None``: the window
#: of a compressor kept for the connection's life (context takeover), announced
#: in the response; about 32 KiB of compressor state per connection instead of
#: about 144 KiB with the full window. Without context takeover the compressor
#: is shared (see :data:`DEFLATE_POOL`) and uses the full 2^15 window, which
#: compresses large messages about 20% faster.
DEFLATE_KEPT_WINDOW_BITS: Final = 12
#: permessage-deflate: idle compressors kept, per set of zlib settings, for the
#: messages sent without context takeover (reset between messages, shared by
#: every connection instead of created for each message).
DEFLATE_POOL: Final = 8
#: permessage-deflate: messages shorter than this many bytes are sent
#: uncompressed unless ``compress=True`` is passed when sending.
DEFLATE_THRESHOLD: Final = 128

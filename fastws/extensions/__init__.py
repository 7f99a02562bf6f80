"""WebSocket extensions.

fastws implements one extension, permessage-deflate (RFC 7692), in
:mod:`fastws.extensions.permessage_deflate`. Extension negotiation headers are
parsed by :func:`fastws.handshake.parse_extension_header`.
"""

from __future__ import annotations

from fastws.extensions.permessage_deflate import (
    DeflateOptions,
    PerMessageDeflate,
    deflate_backend,
    set_deflate_backend,
)

__all__ = ["DeflateOptions", "PerMessageDeflate", "deflate_backend", "set_deflate_backend"]

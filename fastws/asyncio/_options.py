"""Option helpers shared by the server and the client."""

from __future__ import annotations

from typing import Any

from fastws.extensions.permessage_deflate import DeflateOptions

__all__ = ["compression_options"]


def compression_options(compression: str | Any | None, *, server: bool) -> Any:
    """Map the ``compression`` option to what the state machine takes.

    Args:
        compression: ``"deflate"``, a ``DeflateOptions`` or ``None``.
        server: whether the options are for a server.

    Returns:
        A ``DeflateOptions`` or ``None``.

    Raises:
        ValueError: unknown compression.
    """
    if compression is None:
        return None
    if isinstance(compression, DeflateOptions):
        return compression
    if compression == "deflate":
        return DeflateOptions()
    raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")

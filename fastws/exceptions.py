"""Exceptions raised by fastws.

Every error fastws raises on purpose derives from :class:`FastWSError`.
"""

from __future__ import annotations

__all__ = ["FastWSError", "Utf8Error"]


class FastWSError(Exception):
    """Base class of every exception fastws raises on purpose."""


class Utf8Error(FastWSError, ValueError):
    """Bytes are not valid UTF-8.

    Attributes:
        position: absolute offset of the first byte that cannot start or
            continue valid UTF-8, counted from the first byte fed to the
            validator (the length of the longest valid prefix, like
            :attr:`UnicodeDecodeError.start`).
        incomplete: ``True`` when the input ended in the middle of a
            multi-byte sequence rather than containing an invalid byte.
    """

    def __init__(self, position: int, incomplete: bool = False) -> None:
        self.position = position
        self.incomplete = incomplete
        if incomplete:
            msg = f"incomplete UTF-8 sequence at end of input (starts at byte {position})"
        else:
            msg = f"invalid UTF-8 at byte {position}"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type[Utf8Error], tuple[int, bool]]:
        return (type(self), (self.position, self.incomplete))

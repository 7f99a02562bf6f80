"""Validation of the options a user passes to fastws, at the call.

Every check raises at once, naming the option and the value: ``TypeError``
for a value of the wrong type, ``ValueError`` for one out of range. The
state machine, the asyncio front-end and the CLI use these, so that nothing
the user gave us fails later inside a protocol callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

_T = TypeVar("_T")

__all__ = [
    "boolean",
    "callable_or_none",
    "integer",
    "seconds",
    "strings",
]


def _type_name(value: object) -> str:
    return type(value).__name__


def integer(name: str, value: _T, *, minimum: int, none: bool = False) -> _T:
    """``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum`` (or ``None``).

    Raises:
        TypeError: not an ``int`` (or ``None`` where it is allowed).
        ValueError: below ``minimum``.
    """
    if value is None and none:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        allowed = "an int or None" if none else "an int"
        raise TypeError(f"{name} must be {allowed}, not {_type_name(value)}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return value


def seconds(name: str, value: _T, *, none: bool = False, zero: bool = True) -> _T:
    """``value`` if it is a finite, non-negative number of seconds (positive unless ``zero``).

    Raises:
        TypeError: not an ``int`` or ``float`` (or ``None`` where allowed).
        ValueError: negative, zero where not allowed, or not finite.
    """
    if value is None and none:
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        allowed = "a number of seconds or None" if none else "a number of seconds"
        raise TypeError(f"{name} must be {allowed}, not {_type_name(value)}: {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = "non-negative" if zero else "positive"
        raise ValueError(f"{name} must be a finite, {bound} number of seconds, got {value!r}")
    return value


def boolean(name: str, value: _T, *, none: bool = False) -> _T:
    """``value`` if it is a ``bool`` (or ``None`` where allowed).

    Raises:
        TypeError: anything else.
    """
    if isinstance(value, bool) or (value is None and none):
        return value
    allowed = "True, False or None" if none else "True or False"
    raise TypeError(f"{name} must be {allowed}, not {_type_name(value)}: {value!r}")


def callable_or_none(name: str, value: _T) -> _T:
    """``value`` if it is callable or ``None``.

    Raises:
        TypeError: anything else.
    """
    if value is None or callable(value):
        return value
    raise TypeError(f"{name} must be callable or None, not {_type_name(value)}: {value!r}")


def strings(
    name: str,
    value: object,
    *,
    check: Callable[[str], bool] | None = None,
    what: str = "str",
    none_item: bool = False,
) -> list[Any] | None:
    """A list of the strings in ``value`` (a sequence, not a single ``str``), or ``None``.

    Args:
        name: the option.
        value: ``None``, or an iterable of ``str`` (of ``str`` or ``None``
            items with ``none_item``).
        check: a test every item must pass.
        what: how an item is called in the error message.
        none_item: whether ``None`` items are allowed.

    Raises:
        TypeError: a single ``str``/``bytes`` (which would be matched by
            substring), not iterable, or an item that is not a ``str``.
        ValueError: an item that fails ``check``.
    """
    if value is None:
        return value
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be a list of {what}, not a single {_type_name(value)}: write [{value!r}]"
        )
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of {what}, not {_type_name(value)}: {value!r}")
    items = list(value)
    for item in items:
        if item is None and none_item:
            continue
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain {what} items, not {_type_name(item)}: {item!r}")
        if check is not None and not check(item):
            raise ValueError(f"{name} has an invalid {what}: {item!r}")
    return items

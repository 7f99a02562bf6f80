"""Drop-in speedups: make other WebSocket libraries use the fastws kernels.

Call once at start-up, before connections are created::

    import fastws.patch

    fastws.patch.patch_all()

Each target library is patched where it *uses* a name, not where the name is
defined: the module (or class) attribute that the library looks up at call
time is replaced, and the original object is kept so that :func:`unpatch`
puts back exactly what was there. Patching is idempotent.

Before touching anything, :func:`patch` checks the installed version of the
library against the range the patch was verified with. An unknown or
untested version is refused with a :class:`PatchWarning` (nothing is
changed) unless ``force=True`` is given. A target attribute that no longer
exists is an error (:class:`PatchError`): a patch never silently does nothing.

``python -m fastws.patch`` prints, for every supported library, the
installed version, the tested range and what would be replaced;
``python -m fastws.patch -m module [args...]`` (or ``script.py [args...]``)
patches everything, then runs the program.

Supported targets (the names accepted by :func:`patch`):

==================== =====================================================
``websocket-client`` ``websocket._abnf._mask``, ``websocket._abnf.ABNF.mask``,
                     ``websocket._abnf.validate_utf8``,
                     ``websocket._utils._validate_utf8``
``wsproto``          ``wsproto.frame_protocol.XorMaskerSimple``
``tornado``          ``tornado.websocket._websocket_mask``
``autobahn``         ``autobahn.websocket.protocol.create_xor_masker``,
                     ``autobahn.websocket.protocol.Utf8Validator``
``websockets``       ``websockets.frames.apply_mask`` (and
                     ``websockets.legacy.framing.apply_mask`` when the legacy
                     implementation was imported first)
``aiohttp``          ``aiohttp._websocket.writer.websocket_mask`` (and the
                     pure-Python reader's ``websocket_mask`` when that reader
                     is the one in use)
==================== =====================================================
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from fastws._impl import Utf8Validator as _FastUtf8Validator
from fastws._impl import apply_mask as _apply_mask_kernel
from fastws._impl import implementation as _implementation
from fastws._impl import mask_inplace as _mask_inplace_kernel
from fastws._impl import validate_utf8 as _validate_utf8_kernel
from fastws.exceptions import FastWSError, Utf8Error

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "TARGETS",
    "AutobahnUtf8Validator",
    "AutobahnXorMasker",
    "PatchError",
    "PatchWarning",
    "Target",
    "TargetNotInstalledError",
    "WsprotoXorMasker",
    "patch",
    "patch_all",
    "patched",
    "status",
    "unpatch",
    "unpatch_all",
]

# The kernels the replacements call. They are module globals, looked up at
# call time, so that a test can wrap them (e.g. with a counting spy) before
# patching a library.
_apply_mask: Callable[[Buffer, Buffer], bytes] = _apply_mask_kernel
_mask_inplace: Callable[..., None] = _mask_inplace_kernel
_validate_utf8: Callable[[Buffer], bool] = _validate_utf8_kernel
_Utf8Validator: Callable[[], Any] = _FastUtf8Validator


class PatchWarning(UserWarning):
    """A library was not patched (untested version), or a patch was disturbed."""


class PatchError(FastWSError, RuntimeError):
    """A patch cannot be applied: the library does not have the expected shape."""


class TargetNotInstalledError(PatchError, ImportError):
    """The library to patch is not installed (or cannot be imported)."""


# --------------------------------------------------------------------------
# Replacements
# --------------------------------------------------------------------------


class _MaskStream:
    """Masks the successive chunks of one frame, keeping the key position.

    ``_ptr`` counts the bytes processed; the next chunk starts at key byte
    ``_ptr % 4``.
    """

    __slots__ = ("_key", "_ptr")

    def __init__(self, mask: Buffer) -> None:
        key = bytes(mask)
        if len(key) != 4:
            raise ValueError(f"mask must be 4 bytes long, got {len(key)}")
        self._key = key
        self._ptr = 0


class WsprotoXorMasker(_MaskStream):
    """fastws-backed stand-in for ``wsproto.frame_protocol.XorMaskerSimple``.

    Same interface: ``WsprotoXorMasker(key).process(data)`` returns a new
    ``bytearray`` with ``data`` masked, continuing with the key position where
    the previous call stopped.
    """

    __slots__ = ()

    def process(self, data: Buffer) -> bytearray:
        """Return ``data`` masked (or unmasked) as a new ``bytearray``.

        Args:
            data: the next chunk of the frame payload.
        """
        out = bytearray(data)
        n = len(out)
        if n:
            _mask_inplace(out, self._key, self._ptr & 3)
            self._ptr += n
        return out


class AutobahnXorMasker(_MaskStream):
    """fastws-backed masker with autobahn's masker interface.

    ``process(data) -> bytes``, ``pointer() -> int`` (bytes processed since
    creation or :meth:`reset`) and ``reset()``.
    """

    __slots__ = ()

    def pointer(self) -> int:
        """Return the number of bytes processed since creation or the last reset."""
        return self._ptr

    def reset(self) -> None:
        """Start again at the first byte of the key."""
        self._ptr = 0

    def process(self, data: Buffer) -> bytes:
        """Return ``data`` masked (or unmasked), continuing at the current position.

        Args:
            data: the next chunk of the frame payload.
        """
        phase = self._ptr & 3
        key = self._key
        if phase:
            key = key[phase:] + key[:phase]
        out = _apply_mask(data, key)
        self._ptr += len(out)
        return out


def autobahn_create_xor_masker(mask: Buffer, length: int | None = None) -> AutobahnXorMasker:
    """Stand-in for ``autobahn.websocket.xormasker.create_xor_masker``.

    Args:
        mask: the 4-byte masking key.
        length: payload length hint (ignored: one implementation fits all sizes).
    """
    return AutobahnXorMasker(mask)


class AutobahnUtf8Validator:
    """autobahn's incremental ``Utf8Validator`` interface on :class:`fastws.Utf8Validator`.

    :meth:`validate` returns ``(valid, ends_on_code_point, current_index,
    total_index)`` like autobahn's validator. One difference: on invalid
    input the indexes point at the start of the offending sequence (the
    length of the longest valid prefix) where autobahn's DFA points at the
    byte on which it gave up; both are within the same code point.
    """

    __slots__ = ("_total", "_validator")

    def __init__(self) -> None:
        self._validator = _Utf8Validator()
        self._total = 0

    def reset(self) -> None:
        """Forget everything validated so far."""
        self._validator.reset()
        self._total = 0

    def validate(self, ba: Buffer) -> tuple[bool, bool, int, int]:
        """Validate the next chunk of a UTF-8 byte stream.

        Args:
            ba: the next chunk.

        Returns:
            ``(valid, ends_on_code_point, current_index, total_index)``: when
            valid, ``current_index`` is ``len(ba)`` and ``total_index`` the
            number of bytes validated so far; when invalid, both give the
            position of the error (in the chunk, and overall).
        """
        start = self._total
        try:
            self._validator.feed(ba)
        except Utf8Error as exc:
            current = exc.position - start
            if current < 0:
                current = 0
            return False, False, current, start + current
        n = len(memoryview(ba))
        self._total = start + n
        return True, self._validator.complete, n, self._total


def tornado_websocket_mask(mask: bytes, data: bytes) -> bytes:
    """Stand-in for ``tornado.util._websocket_mask(mask, data) -> bytes``.

    Args:
        mask: the 4-byte masking key.
        data: the payload.
    """
    return _apply_mask(data, mask)


def aiohttp_websocket_mask(mask: bytes, data: bytearray) -> None:
    """Stand-in for aiohttp's ``websocket_mask(mask, data)``: masks ``data`` in place.

    Args:
        mask: the 4-byte masking key.
        data: the payload, a writable buffer.
    """
    _mask_inplace(data, mask)


def websocket_client_mask_arrays(mask_value: Buffer, data_value: Buffer) -> bytes:
    """Stand-in for ``websocket._abnf._mask(mask_value, data_value) -> bytes``.

    Args:
        mask_value: the 4-byte masking key (an ``array.array("B")``).
        data_value: the payload (an ``array.array("B")``).
    """
    return _apply_mask(data_value, mask_value)


def websocket_client_mask(mask_key: str | bytes, data: str | bytes | None) -> bytes:
    """Stand-in for ``websocket._abnf.ABNF.mask``, without the two array copies.

    Args:
        mask_key: the 4-byte masking key (``str`` is encoded as latin-1).
        data: the payload (``str`` is encoded as latin-1, ``None`` is empty).
    """
    if data is None:
        data = b""
    if isinstance(mask_key, str):
        mask_key = mask_key.encode("latin-1")
    if isinstance(data, str):
        data = data.encode("latin-1")
    return _apply_mask(data, mask_key)


def websocket_client_validate_utf8(utfbytes: str | bytes) -> bool:
    """Stand-in for websocket-client's ``validate_utf8`` / ``_validate_utf8``.

    Unlike the DFA it replaces, input that ends inside a multi-byte sequence
    is invalid (it cannot be a complete text message).

    Args:
        utfbytes: bytes to check (``str`` is encoded with ``surrogatepass``,
            so a lone surrogate is reported invalid).
    """
    if isinstance(utfbytes, str):
        utfbytes = utfbytes.encode("utf-8", "surrogatepass")
    return _validate_utf8(utfbytes)


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------

_Version = tuple[int, ...]


@dataclass(frozen=True)
class _Slot:
    """One attribute to replace: ``owner.attr``, known as ``qualname``."""

    owner: Any
    attr: str
    qualname: str
    replacement: object


@dataclass(frozen=True)
class Target:
    """A library fastws knows how to patch.

    Attributes:
        name: the name accepted by :func:`patch` (the distribution name).
        module: the top-level import name.
        minimum: the oldest tested version (inclusive).
        below: the first version not tested (exclusive).
        summary: one line on what is replaced.
    """

    name: str
    module: str
    minimum: _Version
    below: _Version
    summary: str

    def tested_range(self) -> str:
        """Return the tested range as text, e.g. ``">=1.2, <2"``."""
        return f">={_fmt(self.minimum)}, <{_fmt(self.below)}"


def _fmt(version: _Version) -> str:
    return ".".join(str(part) for part in version)


def _parse_version(text: str) -> _Version | None:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def _import(name: str) -> ModuleType:
    return importlib.import_module(name)


def _plan_websocket_client() -> list[_Slot]:
    abnf = _import("websocket._abnf")
    utils = _import("websocket._utils")
    abnf_cls = abnf.ABNF
    return [
        _Slot(abnf, "_mask", "websocket._abnf._mask", websocket_client_mask_arrays),
        _Slot(abnf_cls, "mask", "websocket._abnf.ABNF.mask", staticmethod(websocket_client_mask)),
        _Slot(
            abnf, "validate_utf8", "websocket._abnf.validate_utf8", websocket_client_validate_utf8
        ),
        _Slot(
            utils,
            "_validate_utf8",
            "websocket._utils._validate_utf8",
            websocket_client_validate_utf8,
        ),
    ]


def _plan_wsproto() -> list[_Slot]:
    frame_protocol = _import("wsproto.frame_protocol")
    return [
        _Slot(
            frame_protocol,
            "XorMaskerSimple",
            "wsproto.frame_protocol.XorMaskerSimple",
            WsprotoXorMasker,
        ),
    ]


def _plan_tornado() -> list[_Slot]:
    websocket = _import("tornado.websocket")
    return [
        _Slot(
            websocket,
            "_websocket_mask",
            "tornado.websocket._websocket_mask",
            tornado_websocket_mask,
        ),
    ]


def _plan_autobahn() -> list[_Slot]:
    protocol = _import("autobahn.websocket.protocol")
    return [
        _Slot(
            protocol,
            "create_xor_masker",
            "autobahn.websocket.protocol.create_xor_masker",
            autobahn_create_xor_masker,
        ),
        _Slot(
            protocol,
            "Utf8Validator",
            "autobahn.websocket.protocol.Utf8Validator",
            AutobahnUtf8Validator,
        ),
    ]


def _plan_websockets() -> list[_Slot]:
    frames = _import("websockets.frames")
    slots = [_Slot(frames, "apply_mask", "websockets.frames.apply_mask", _apply_mask)]
    # The deprecated legacy implementation imports its own reference. It is
    # patched when the application already imported it (importing it here
    # would raise websockets' DeprecationWarning for everyone).
    legacy = sys.modules.get("websockets.legacy.framing")
    if legacy is not None:
        slots.append(
            _Slot(legacy, "apply_mask", "websockets.legacy.framing.apply_mask", _apply_mask)
        )
    return slots


def _plan_aiohttp() -> list[_Slot]:
    writer = _import("aiohttp._websocket.writer")
    reader = _import("aiohttp._websocket.reader")
    slots = [
        _Slot(
            writer,
            "websocket_mask",
            "aiohttp._websocket.writer.websocket_mask",
            aiohttp_websocket_mask,
        ),
    ]
    # The compiled reader (reader_c) cimports its mask function: nothing to
    # patch there. The pure-Python reader looks the name up at call time, so
    # it is patched when it is the reader aiohttp actually uses.
    reader_py = sys.modules.get("aiohttp._websocket.reader_py")
    if reader_py is not None and reader.WebSocketReader is reader_py.WebSocketReader:
        slots.append(
            _Slot(
                reader_py,
                "websocket_mask",
                "aiohttp._websocket.reader_py.websocket_mask",
                aiohttp_websocket_mask,
            )
        )
    return slots


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target(
            "websocket-client",
            "websocket",
            (1, 8),
            (2,),
            "masking (ABNF.mask, _mask) and UTF-8 validation",
        ),
        Target("wsproto", "wsproto", (1, 2), (2,), "XorMaskerSimple (masking)"),
        Target("tornado", "tornado", (6, 4), (7,), "_websocket_mask (masking)"),
        Target(
            "autobahn", "autobahn", (25, 6), (27,), "create_xor_masker (masking) and Utf8Validator"
        ),
        Target("websockets", "websockets", (14,), (18,), "apply_mask (masking)"),
        Target("aiohttp", "aiohttp", (3, 11), (4,), "the writer's websocket_mask (masking)"),
    )
}

_PLANS: dict[str, Callable[[], list[_Slot]]] = {
    "websocket-client": _plan_websocket_client,
    "wsproto": _plan_wsproto,
    "tornado": _plan_tornado,
    "autobahn": _plan_autobahn,
    "websockets": _plan_websockets,
    "aiohttp": _plan_aiohttp,
}

_ALIASES = {
    "websocket": "websocket-client",
    "websocket_client": "websocket-client",
    "websocketclient": "websocket-client",
}

# name -> list of (slot, original raw attribute value)
_active: dict[str, list[tuple[_Slot, object]]] = {}
_lock = threading.RLock()


def _canonical(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TARGETS:
        known = ", ".join(sorted(TARGETS))
        raise ValueError(f"fastws cannot patch {name!r}; known targets: {known}")
    return key


def _installed_version(target: Target) -> str | None:
    try:
        return importlib.metadata.version(target.name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _raw(owner: Any, attr: str) -> object:
    """Return ``owner.attr`` as stored (a class's staticmethod object, not the function)."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if attr in klass.__dict__:
                return klass.__dict__[attr]
        raise AttributeError(attr)
    return getattr(owner, attr)


def _version_problem(target: Target, version: str | None) -> str | None:
    if version is None:
        return f"the installed version of {target.name} is unknown"
    parsed = _parse_version(version)
    if parsed is None:
        return f"cannot parse the version of {target.name} ({version!r})"
    if not target.minimum <= parsed < target.below:
        return f"{target.name} {version} is outside the tested range {target.tested_range()}"
    return None


def patch(name: str, *, force: bool = False) -> dict[str, object]:
    """Make one library use the fastws kernels.

    Args:
        name: the library, e.g. ``"wsproto"`` or ``"websocket-client"`` (see
            :data:`TARGETS`).
        force: patch even when the installed version is unknown or outside
            the tested range.

    Returns:
        What was replaced: qualified name -> original object. Empty when the
        version check refused to patch. Patching an already patched library
        returns the same mapping again and changes nothing.

    Warns:
        PatchWarning: the version is untested (and nothing was patched), or
            fastws runs its pure-Python kernels (patched, but possibly slower
            than the library's own C code).

    Raises:
        ValueError: ``name`` is not a known target.
        TargetNotInstalledError: the library is not installed or cannot be
            imported (an :class:`ImportError`).
        PatchError: the library does not have an attribute the patch
            replaces (its internals changed).
    """
    key = _canonical(name)
    target = TARGETS[key]
    with _lock:
        if key in _active:
            return {slot.qualname: original for slot, original in _active[key]}
        version = _installed_version(target)
        try:
            _import(target.module)
        except ImportError as exc:
            raise TargetNotInstalledError(
                f"cannot patch {target.name}: it is not installed or does not import ({exc})"
            ) from exc
        problem = _version_problem(target, version)
        if problem is not None and not force:
            warnings.warn(
                f"fastws did not patch {target.name}: {problem}; pass force=True to patch anyway",
                PatchWarning,
                stacklevel=2,
            )
            return {}
        try:
            slots = _PLANS[key]()
        except ImportError as exc:
            raise PatchError(f"cannot patch {target.name}: {exc}") from exc
        except AttributeError as exc:
            raise PatchError(f"cannot patch {target.name}: {exc}") from exc
        applied: list[tuple[_Slot, object]] = []
        for slot in slots:
            try:
                original = _raw(slot.owner, slot.attr)
            except AttributeError:
                raise PatchError(
                    f"cannot patch {target.name} {version}: {slot.qualname} does not exist"
                ) from None
            applied.append((slot, original))
        for slot, _original in applied:
            setattr(slot.owner, slot.attr, slot.replacement)
        _active[key] = applied
        if _implementation == "python":
            warnings.warn(
                f"patched {target.name}, but fastws is using its pure-Python kernels "
                "(the C extension is not available): the patched code may be slower "
                "than the original",
                PatchWarning,
                stacklevel=2,
            )
        return {slot.qualname: original for slot, original in applied}


def unpatch(name: str) -> dict[str, object]:
    """Put back the original objects a previous :func:`patch` replaced.

    Args:
        name: the library, as given to :func:`patch`.

    Returns:
        What was restored: qualified name -> original object (empty when the
        library was not patched).

    Raises:
        ValueError: ``name`` is not a known target.
    """
    key = _canonical(name)
    with _lock:
        applied = _active.pop(key, None)
        if applied is None:
            return {}
        restored: dict[str, object] = {}
        for slot, original in applied:
            try:
                current = _raw(slot.owner, slot.attr)
            except AttributeError:
                current = None
            if current is not slot.replacement:
                warnings.warn(
                    f"{slot.qualname} was replaced by something else after fastws "
                    "patched it; restoring the original anyway",
                    PatchWarning,
                    stacklevel=2,
                )
            setattr(slot.owner, slot.attr, original)
            restored[slot.qualname] = original
        return restored


def patch_all(
    *,
    force: bool = False,
    missing: Literal["skip", "warn", "raise"] = "skip",
    names: Iterable[str] | None = None,
) -> dict[str, dict[str, object]]:
    """Patch every supported library that is installed.

    Args:
        force: patch even versions outside the tested ranges.
        missing: what to do about a library that is not installed: skip it
            quietly (the default: nothing there to speed up), ``"warn"``
            with a :class:`PatchWarning`, or ``"raise"``
            :class:`TargetNotInstalledError`.
        names: only these targets (default: all of :data:`TARGETS`).

    Returns:
        library name -> what :func:`patch` replaced, for every library that
        was patched. A library refused by the version check is absent (and
        a :class:`PatchWarning` says why).
    """
    result: dict[str, dict[str, object]] = {}
    for name in names if names is not None else TARGETS:
        key = _canonical(name)
        if missing != "raise" and not _is_importable(TARGETS[key].module):
            if missing == "warn":
                warnings.warn(
                    f"fastws did not patch {key}: it is not installed",
                    PatchWarning,
                    stacklevel=2,
                )
            continue
        with warnings.catch_warnings():
            # Report refusals at the caller of patch_all.
            warnings.simplefilter("ignore", PatchWarning)
            replaced = patch(key, force=force)
        if replaced:
            result[key] = replaced
        else:
            problem = _version_problem(TARGETS[key], _installed_version(TARGETS[key]))
            warnings.warn(
                f"fastws did not patch {key}: {problem}; pass force=True to patch anyway",
                PatchWarning,
                stacklevel=2,
            )
    if result and _implementation == "python":
        warnings.warn(
            f"patched {', '.join(result)}, but fastws is using its pure-Python kernels "
            "(the C extension is not available): the patched code may be slower "
            "than the original",
            PatchWarning,
            stacklevel=2,
        )
    return result


def unpatch_all() -> dict[str, dict[str, object]]:
    """Undo every patch in place.

    Returns:
        library name -> what was restored.
    """
    with _lock:
        names = list(_active)
    return {name: unpatch(name) for name in names}


def patched() -> list[str]:
    """Return the names of the libraries currently patched."""
    with _lock:
        return sorted(_active)


def _is_importable(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def status() -> list[dict[str, str]]:
    """Describe every target without patching anything.

    Returns:
        One row per target with the keys ``name``, ``version`` (installed,
        or ``"-"``), ``tested`` (range), ``state`` (``"patched"``, ``"would
        patch"``, ``"untested version"`` or ``"not installed"``) and
        ``replaces``.
    """
    rows: list[dict[str, str]] = []
    for key, target in TARGETS.items():
        version = _installed_version(target)
        if key in _active:
            state = "patched"
        elif version is None and not _is_importable(target.module):
            state = "not installed"
        elif _version_problem(target, version) is not None:
            state = "untested version"
        else:
            state = "would patch"
        rows.append(
            {
                "name": key,
                "version": version or "-",
                "tested": target.tested_range(),
                "state": state,
                "replaces": target.summary,
            }
        )
    return rows


def _print_status() -> None:
    print(f"fastws kernels: {_implementation}")
    rows = status()
    headers = ("name", "version", "tested", "state", "replaces")
    widths = [max(len(h), *(len(row[h]) for row in rows)) for h in headers]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(row[h].ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())


_USAGE = """\
usage: python -m fastws.patch                     show what would be patched
       python -m fastws.patch --version           print the version
       python -m fastws.patch -m module [args...]  patch_all(), then run a module
       python -m fastws.patch script.py [args...]  patch_all(), then run a script"""


def _main(argv: list[str] | None = None) -> int:
    """Command line: show the status, or patch everything and run a program.

    Args:
        argv: the arguments after ``python -m fastws.patch``.
    """
    import runpy

    args = sys.argv[1:] if argv is None else argv
    if not args:
        _print_status()
        print()
        print("Enable at start-up with:  import fastws.patch; fastws.patch.patch_all()")
        print("or run a program patched: python -m fastws.patch -m module [args...]")
        return 0
    if args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0
    if args[0] == "--version":
        from fastws import __version__

        print(f"fastws {__version__}")
        return 0
    if args[0] == "-m" and len(args) < 2:
        print("fastws.patch: error: -m needs a module name\n" + _USAGE, file=sys.stderr)
        return 2
    if args[0] != "-m" and (args[0].startswith("-") or not os.path.isfile(args[0])):
        what = "unknown option" if args[0].startswith("-") else "no such script"
        print(f"fastws.patch: error: {what}: {args[0]}\n{_USAGE}", file=sys.stderr)
        return 2
    patch_all()
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(args)
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    # Run the command in the ``fastws.patch`` module itself, not in this
    # ``__main__`` copy, so that the program sees the patch state.
    from fastws import patch as _patch_module

    raise SystemExit(_patch_module._main())

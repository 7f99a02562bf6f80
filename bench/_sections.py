"""The sections of ``bench/RESULTS.md`` that the benchmark scripts write.

A section named ``NAME`` is the text from ``<!-- NAME-results:start -->`` to
``<!-- NAME-results:end -->``, markers included. Each benchmark script
(``echo/run.py``, ``pubsub/run.py``, ``sync/run.py``, ``uvicorn/run.py``)
writes its own with :func:`write` and leaves the rest of the file as it is;
``report.py``, which rewrites the whole file, carries over with
:func:`find` the sections it does not render itself. The hand-written block
between ``<!-- kept:start -->`` and ``<!-- kept:end -->`` stays last: a new
section goes before it.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
KEPT_START = "<!-- kept:start -->"
_SECTION = re.compile(
    r"<!-- (?P<name>[A-Za-z0-9_.-]+?)-results:start -->.*?<!-- (?P=name)-results:end -->",
    re.DOTALL,
)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the section ``name``."""
    return f"<!-- {name}-results:start -->", f"<!-- {name}-results:end -->"


def find(text: str) -> list[tuple[str, str]]:
    """Every section of ``text`` in order of appearance: ``(name, text with markers)``."""
    return [(m.group("name"), m.group(0)) for m in _SECTION.finditer(text)]


def replace(text: str, name: str, section: str, after: str | None = None) -> str:
    """``text`` with the section ``name`` replaced by ``section``.

    ``section`` must begin with the start marker and end with the end marker
    (trailing newlines aside). When ``text`` has no such section yet, the new
    one goes right after the section ``after`` if given and present, else
    right before the kept block if there is one, else at the end.
    """
    start, end = markers(name)
    section = section.rstrip("\n")
    if not (section.startswith(start) and section.endswith(end)):
        raise ValueError(f"a {name!r} section must run from {start!r} to {end!r}")
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + section + rest.split(end, 1)[1]
    if after is not None and markers(after)[1] in text:
        anchor = markers(after)[1]
        head, tail = text.split(anchor, 1)
        return head + anchor + "\n\n" + section + tail
    if KEPT_START in text:
        head, tail = text.split(KEPT_START, 1)
        return head.rstrip("\n") + "\n\n" + section + "\n\n" + KEPT_START + tail
    return text.rstrip("\n") + "\n\n" + section + "\n"


def write(name: str, section: str, after: str | None = None, path: Path = RESULTS_MD) -> None:
    """Replace (or add) the section ``name`` of ``path``; see :func:`replace`."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(replace(text, name, section, after))

"""The ``run`` fixture of the asyncio tests (asyncio and uvloop loops), shared here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_asyncio_conftest", Path(__file__).resolve().parent.parent / "asyncio" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_asyncio_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_asyncio_conftest)

loop_name = _asyncio_conftest.loop_name
run = _asyncio_conftest.run

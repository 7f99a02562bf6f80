"""Run uvicorn's own WebSocket tests against ``fastws.uvicorn.FastWSProtocol``.

tools/test_uvicorn.sh copies this file to ``tests/protocols/conftest.py`` of
the pinned uvicorn sdist. It replaces uvicorn's ``ws_protocol_cls`` fixture
(every test that takes it runs on fastws's class, under each HTTP
implementation uvicorn offers). With ``FASTWS_UVICORN_COMPARE=1`` uvicorn's
own implementations run too, for comparison.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from uvicorn.importer import import_from_string

from fastws.uvicorn import FastWSProtocol

_CLASSES = [pytest.param("fastws.uvicorn:FastWSProtocol", id="fastws")]
if os.environ.get("FASTWS_UVICORN_COMPARE"):
    _CLASSES += [
        pytest.param("uvicorn.protocols.websockets.wsproto_impl:WSProtocol", id="wsproto"),
        pytest.param(
            "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol",
            id="websockets-sansio",
        ),
    ]


@pytest.fixture(params=_CLASSES)
def ws_protocol_cls(request: pytest.FixtureRequest) -> type:
    return import_from_string(request.param)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _fastws_where_the_tests_name_websockets_sansio(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The one shim: a few tests name uvicorn's websockets-sansio class directly.

    Two tests build their server with ``ws=WebSocketsSansIOProtocol`` instead
    of the fixture (an oversized header line must get 431, an upgrade request
    with a body 400; ``ws_max_size`` gives 1009), and two keepalive tests
    check ``isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol))``.
    The test module's name is pointed at fastws's class, so that those tests
    exercise it as well (when fastws's class is the one under test).
    """
    if "ws_protocol_cls" in request.fixturenames:
        if request.getfixturevalue("ws_protocol_cls") is not FastWSProtocol:
            yield
            return
    module = request.module
    if module is not None and hasattr(module, "WebSocketsSansIOProtocol"):
        monkeypatch.setattr(module, "WebSocketsSansIOProtocol", FastWSProtocol)
    yield

"""HTTP Basic authentication with basic_auth(), as websockets shows."""

import base64

from websockets.asyncio.client import connect
from websockets.asyncio.server import basic_auth, serve
from websockets.exceptions import InvalidStatus


async def handler(websocket):
    await websocket.send(f"Hello {websocket.username}!")


async def check_credentials(username, password):
    return password == "iloveyou"


def authorization(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def main(port):
    results = {}
    for name, auth in [
        ("pair", basic_auth(realm="my dev server", credentials=("hello", "iloveyou"))),
        (
            "list",
            basic_auth(realm="my dev server", credentials=[("a", "b"), ("hello", "iloveyou")]),
        ),
        ("check", basic_auth(realm="my dev server", check_credentials=check_credentials)),
    ]:
        async with serve(handler, "127.0.0.1", port, process_request=auth):
            uri = f"ws://127.0.0.1:{port}/"
            async with connect(uri, additional_headers=authorization("hello", "iloveyou")) as ws:
                results[name] = [await ws.recv()]
            for headers in [{}, authorization("hello", "wrong"), {"Authorization": "Bearer x"}]:
                try:
                    async with connect(uri, additional_headers=headers):
                        pass
                except InvalidStatus as exc:
                    response = exc.response
                    results[name].append(
                        (response.status_code, response.headers["WWW-Authenticate"])
                    )
    return results

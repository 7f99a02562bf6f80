"""Authentication with process_request and a token in the query string, as websockets shows."""

import http
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

TOKENS = {"s3cret": "alice"}


def get_query_param(path, key):
    query = urlparse(path).query
    params = parse_qs(query)
    values = params.get(key, [])
    if len(values) == 1:
        return values[0]


async def query_param_auth(connection, request):
    token = get_query_param(request.path, "token")
    if token is None:
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing token\n")
    user = TOKENS.get(token)
    if user is None:
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Invalid token\n")
    connection.username = user


async def handler(websocket):
    await websocket.send(f"Hello {websocket.username}!")


async def main(port):
    results = {}
    async with serve(handler, "127.0.0.1", port, process_request=query_param_auth):
        async with connect(f"ws://127.0.0.1:{port}/?token=s3cret") as websocket:
            results["ok"] = await websocket.recv()
        for name, query in [("missing", ""), ("invalid", "?token=nope")]:
            try:
                async with connect(f"ws://127.0.0.1:{port}/{query}"):
                    pass
            except InvalidStatus as exc:
                results[name] = (exc.response.status_code, exc.response.body.decode())
    return results

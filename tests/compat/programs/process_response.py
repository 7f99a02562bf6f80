"""Extra response headers with process_response, and a custom Server header."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus


def process_response(connection, request, response):
    response.headers["X-Blessing"] = "May the network be with you"


async def health_check(connection, request):
    if request.path == "/healthz":
        return connection.respond(200, "OK\n")


async def handler(websocket):
    await websocket.send(websocket.request.headers.get("X-Client", "none"))


async def main(port):
    results = {}
    async with serve(
        handler,
        "127.0.0.1",
        port,
        process_request=health_check,
        process_response=process_response,
        server_header="compat-test",
    ):
        uri = f"ws://127.0.0.1:{port}/"
        async with connect(uri, additional_headers={"X-Client": "yes"}) as websocket:
            results["message"] = await websocket.recv()
            headers = websocket.response.headers
            results["headers"] = [headers["X-Blessing"], headers["Server"]]
            results["status"] = websocket.response.status_code
        try:
            async with connect(f"ws://127.0.0.1:{port}/healthz"):
                pass
        except InvalidStatus as exc:
            results["healthz"] = (exc.response.status_code, exc.response.body)
    return results

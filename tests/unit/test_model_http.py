"""runtime.model_http: the model client's transport keeps httpcore2's idle-connection check
(a connection the server closed while idle is dropped, not reused) while making it cheap."""

from __future__ import annotations

import asyncio

import httpx2

from runtime.egress import EgressPolicy
from runtime.model_client import ModelClient
from runtime.model_http import PooledTransport
from tests.support import fixtures_openai
from tests.support.scripted_openai import ScriptedOpenAI

scripted_openai = fixtures_openai.scripted_openai

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class ClosingServer:
    """A real HTTP/1.1 server on loopback that answers one request per connection with a
    keep-alive response, then closes the connection (as a server whose idle timeout is
    short does). Counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
        writer.close()
        await writer.wait_closed()


def test_the_cheap_idle_check_is_installed() -> None:
    # Fails when an httpx2/httpcore2 upgrade builds its pool differently: the transport
    # still works, but every model request pays the expensive check again.
    assert PooledTransport().cheap_idle_check


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    server = ClosingServer()
    async with server as url:
        transport = PooledTransport()
        async with httpx2.AsyncClient(transport=transport) as client:
            for _ in range(3):
                response = await client.get(url)
                assert response.status_code == 200 and response.text == "ok"
                await asyncio.sleep(0.05)  # the server's FIN arrives while the connection idles
    # Each request found its old connection readable (closed) and opened a new one.
    assert server.connections == 3


async def test_an_open_idle_connection_is_reused(scripted_openai: ScriptedOpenAI) -> None:
    transport = PooledTransport()
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(3):
            response = await client.get(f"{scripted_openai.base_url}/models")
            assert response.status_code == 200
        assert len(transport._pool.connections) == 1  # one connection served all three


def test_model_clients_use_it_trusted_and_guarded() -> None:
    trusted = ModelClient("http://127.0.0.1:9/v1")
    guarded = ModelClient("http://127.0.0.1:9/v1", egress=EgressPolicy())
    assert isinstance(trusted._client._client._transport, PooledTransport)
    assert isinstance(guarded._client._client._transport._inner, PooledTransport)

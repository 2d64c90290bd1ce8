"""Oversized request headers, as a client sees them from a real Hypercorn server configured
as ``runwright serve`` configures it (web/header_limits.py): up to 16 KiB of request line
and headers are served; over it the app answers 431 in the API's error shape; over
Hypercorn's own bound (64 KiB; always over 128 KiB) the server answers a bare 431 (no body,
connection closed) before the app sees the request, as README and the OpenAPI say."""

from __future__ import annotations

import asyncio
import json

from tests.support.server import hypercorn_on_loopback
from web.header_limits import MAX_HEAD_BYTES, SERVER_HEAD_BYTES

LINE = b"GET /healthz HTTP/1.1\r\n"
FIXED = b"Host: t\r\nX-Pad: \r\n\r\n"


def _request(head_size: int) -> bytes:
    """A GET /healthz whose head (request line, headers, final CRLF) is ``head_size`` bytes."""
    pad = head_size - len(LINE) - len(FIXED)
    return LINE + b"Host: t\r\nX-Pad: " + b"a" * pad + b"\r\n\r\n"


async def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; returns (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 20)
        return int(lines[0].split()[1]), headers, body
    finally:
        writer.close()
        await writer.wait_closed()


async def test_oversized_headers_get_the_documented_answers(settings):
    assert len(_request(1000)) == 1000
    async with hypercorn_on_loopback(settings) as (base, _):
        port = int(base.rsplit(":", 1)[1])

        status, _, _ = await _exchange(port, _request(MAX_HEAD_BYTES))
        assert status == 200  # at the bound: served

        status, headers, body = await _exchange(port, _request(MAX_HEAD_BYTES + 1))
        assert status == 431
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {
            "detail": {
                "code": "REQUEST_HEADERS_TOO_LARGE",
                "message": "The request line and headers exceed 16384 bytes; send smaller headers.",
            }
        }
        assert headers.get("x-request-id")  # answered by the app, like any error

        status, headers, body = await _exchange(port, _request(SERVER_HEAD_BYTES - 1024))
        assert status == 431 and json.loads(body)["detail"]["code"] == "REQUEST_HEADERS_TOO_LARGE"

        # Once Hypercorn holds more than its bound of a head not yet complete, it answers
        # its bare 431, which no hook can give a body. (The head is cut there so that the
        # server has read every byte sent: a close with unread bytes would be a reset.)
        cut = _request(2 * SERVER_HEAD_BYTES)[: SERVER_HEAD_BYTES + 1]
        status, headers, body = await _exchange(port, cut)
        assert status == 431
        assert body == b"" and headers["content-length"] == "0"
        assert headers["connection"].lower() == "close"


async def test_the_openapi_document_states_the_limit(client):
    spec = await (await client.get("/openapi.json")).get_json()
    for operations in spec["paths"].values():
        for operation in operations.values():
            described = operation["responses"]["431"]["description"]
            assert "16384" in described and "65536" in described and "131072" in described

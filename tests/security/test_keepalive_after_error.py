"""A connection stays usable after an early error answer (issue 9 item 5): a POST with a
body and a bad token gets its 401 and the client's next request on the same HTTP/1.1
connection is answered too. Driven with a raw socket against a real Hypercorn server."""

from __future__ import annotations

import asyncio
import contextlib
import json

from tests.support.server import hypercorn_on_loopback


async def _read_response(
    reader: asyncio.StreamReader, early: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    head = early + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, body


async def test_second_request_after_401_on_a_post_with_body(settings):
    """Both ways a client sends a body: with its headers, and after them (as a client does
    that waits for an early answer, e.g. on ``Expect: 100-continue``). Before the fix the
    server answered 401 before the late body arrived and then dropped the connection."""
    async with hypercorn_on_loopback(settings) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for late_body in (False, True, False):
                body = json.dumps({"name": "x" * 2000, "slug": "keep-alive"}).encode()
                head = (
                    b"POST /admin/apps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bad\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                early = b""
                if late_body:
                    writer.write(head)
                    await writer.drain()
                    # Give the server the chance to answer before the body (the old code
                    # did, within milliseconds); a fixed server waits for the body instead.
                    with contextlib.suppress(TimeoutError):
                        early = await asyncio.wait_for(reader.read(1), 1.0)
                    writer.write(body)
                else:
                    writer.write(head + body)
                await writer.drain()
                status, headers, payload = await _read_response(reader, early)
                assert status == 401
                assert json.loads(payload) == {"detail": "Could not validate principal token"}
                assert headers.get("connection", "").lower() != "close"

                writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                await writer.drain()
                status, _, payload = await _read_response(reader)
                assert status == 200, payload
        finally:
            writer.close()


async def test_oversized_body_is_refused_and_the_connection_closed(settings):
    """A declared body over MAX_CONTENT_LENGTH is not read: the answer says
    ``Connection: close`` and the server closes it, rather than reading 16 MiB."""
    async with hypercorn_on_loopback(settings) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /admin/apps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bad\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % (64 << 20)
            )
            await writer.drain()
            status, headers, _ = await _read_response(reader)
            assert status == 401
            assert headers.get("connection", "").lower() == "close"
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()


async def test_idle_connection_outlives_a_clients_keepalive_expiry(settings):
    """The server keeps an idle connection open longer than clients keep theirs (httpx 5 s,
    ``runwright.client`` 4 s). With Hypercorn's 5 s default, a client reusing a connection
    idle for about 5 s raced the server's close and lost the request (a connection reset on
    a create under load). Here the connection sits idle past httpx's expiry, then serves."""
    from runwright.client._core import KEEPALIVE_EXPIRY

    httpx_default_expiry = 5.0
    assert KEEPALIVE_EXPIRY < httpx_default_expiry < settings.http_keep_alive_seconds
    async with hypercorn_on_loopback(settings) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            assert (await _read_response(reader))[0] == 200
            # Idle past httpx's expiry: the server must not close (reading sees no EOF).
            with contextlib.suppress(TimeoutError):
                closed = await asyncio.wait_for(reader.read(1), httpx_default_expiry + 1.5)
                raise AssertionError(f"the server closed an idle connection early: {closed!r}")
            writer.write(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            assert (await _read_response(reader))[0] == 200
        finally:
            writer.close()

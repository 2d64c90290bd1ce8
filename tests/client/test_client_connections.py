"""What the asyncio client's streams do with their connections: a stream read to its
terminal event leaves its connection in the pool for the next call (one TCP connection
carries creates and streams alike), and a server that keeps the response open after the
terminal event does not hold the caller (the wait for the body's end is bounded); every
client shares one TLS context, which still verifies certificates."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runwright.client import AsyncClient, RetryPolicy, TransportError
from runwright.client._core import STREAM_DRAIN_SECONDS, STREAM_READ_TIMEOUT, tls_context
from tests.client.conftest import Live
from tests.support.relay import Relay

DONE: list[dict] = [{"delta": "ok"}]
ONCE = RetryPolicy(attempts=1)


async def test_one_connection_carries_runs_and_their_streams(live: Live):
    async with AsyncClient(live.base_url, live.token) as direct:
        app = await direct.create_app("Conn", f"conn-{uuid.uuid4().hex[:10]}")
    async with Relay(live.port).running() as relay:
        async with AsyncClient(relay.base_url, live.token) as rw:
            for _ in range(3):
                run = await rw.create_run(app.id, "go", engine="scripted", script=DONE)
                events = [e async for e in rw.stream(app.id, run.run_id)]
                assert events[-1].event == "run.completed"
    # Every create and every stream went over the first connection: each stream was read
    # to the end of its response, so its connection went back to the pool.
    assert len(relay.requests) == 1
    assert relay.requests[0].count(b"/stream HTTP/1.1") == 3


@contextlib.asynccontextmanager
async def _open_ended_sse(run_id: uuid.UUID) -> AsyncIterator[str]:
    """A loopback HTTP server whose every answer is an SSE response carrying one terminal
    event and then never ending (no last chunk): what a misbehaving server or proxy might
    do. Yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            envelope = json.dumps({
                "event": "run.completed", "run_id": str(run_id), "seq": 1,
                "ts": "2026-01-01T00:00:00+00:00", "payload": {},
            })  # fmt: skip
            frame = f"id: 1\ndata: {envelope}\n\n".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                + f"{len(frame):x}\r\n".encode()
                + frame
                + b"\r\n"
            )
            await writer.drain()
            await reader.read()  # until the client closes the connection
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async with _serving(handle) as port:
        yield f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def _serving(handle, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve ``handle`` on a loopback port (yielded); on exit, close the listener and wait
    for every handler to end (a handler left pending would outlive the test's loop)."""
    handlers: set[asyncio.Task] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await handle(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=10)


async def test_a_stream_left_open_after_its_terminal_event_ends_in_bounded_time():
    run_id = uuid.uuid4()
    async with _open_ended_sse(run_id) as base, AsyncClient(base, "t") as rw:
        started = time.monotonic()
        events = [e async for e in rw.stream(uuid.uuid4(), run_id)]
        took = time.monotonic() - started
    assert [(e.seq, e.event) for e in events] == [(1, "run.completed")]
    # The stream ended after the drain's bound, not after the read timeout's.
    assert STREAM_DRAIN_SECONDS <= took < STREAM_READ_TIMEOUT / 4


def test_clients_share_one_verifying_tls_context():
    context = tls_context()
    assert context is tls_context()  # built once per process, not once per client
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded


def _self_signed(tmp: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return server


async def test_the_shared_tls_context_still_refuses_an_unknown_certificate(tmp_path: Path):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # never reached with a refused handshake; harmless otherwise
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async with _serving(handle, _self_signed(tmp_path)) as port:
        async with AsyncClient(f"https://127.0.0.1:{port}", "t", retry=ONCE) as rw:
            with pytest.raises(TransportError) as refused:
                await rw.list_runs(uuid.uuid4())
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)

"""A scripted OpenAI-compatible chat-completions server on loopback, for tests and benchmarks.

The server speaks just enough HTTP/1.1 (keep-alive, ``Content-Length`` or chunked request
bodies, chunked responses) for the official ``openai`` SDK and plain ``httpx`` clients:

- ``GET /v1/models`` lists :attr:`ScriptedOpenAI.model_ids`;
- ``POST /v1/chat/completions`` answers with the next queued :class:`Reply` (stream or not,
  as the request's ``stream`` flag says); an empty queue answers with :attr:`default` or,
  when that is None, HTTP 500 "scripted server: no reply queued" so a test sees its gap.

It runs its own asyncio loop in a daemon thread, so it serves sync tests, async tests and
benchmarks alike and never competes with the code under test for the test's loop. Every
request body is recorded (:attr:`ScriptedOpenAI.requests`) and every client disconnect that
happens before a response is complete is counted (:attr:`ScriptedOpenAI.disconnects`, with
:meth:`ScriptedOpenAI.wait_for_disconnect` for async tests).

Example::

    server.push(tool_call_reply(ScriptedToolCall("coding_agent_read_file", {"path": "a.md"})))
    server.push(text_reply("Done.", chunk_size=2, delay=0.01))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RecordedRequest",
    "Reply",
    "ScriptedOpenAI",
    "ScriptedToolCall",
    "error_reply",
    "hang_reply",
    "text_reply",
    "tool_call_reply",
]

_MAX_HEADER_BYTES = 64 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# ---- the script ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """One tool call the scripted model makes.

    Attributes:
        name: Function name (e.g. ``coding_agent_read_file``).
        arguments: A dict (sent as JSON) or a raw string (sent verbatim, so tests can send
            broken JSON).
        id: The call id; generated (``call_<n>``) when None.
        pieces: How many pieces the arguments string is streamed in (at least 1).
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    pieces: int = 3

    def arguments_text(self) -> str:
        """The arguments as the wire string."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted response to one chat-completions request.

    Build these with :func:`text_reply`, :func:`tool_call_reply`, :func:`error_reply` or
    :func:`hang_reply`.

    Attributes:
        text_chunks: Assistant text, one streamed ``delta.content`` per item.
        tool_calls: Tool calls, streamed after the text the way OpenAI does (id and name in
            the first chunk of a call, then the arguments in pieces).
        finish_reason: Sent in the last chunk; None means ``tool_calls`` when there are tool
            calls, else ``stop``.
        delay: Seconds to wait before each chunk after the first (and between argument
            pieces).
        first_delay: Seconds to wait before the response headers (time to first byte).
        status: HTTP status; anything but 200 sends ``{"error": {"message", "type", "code"}}``.
        error_message: The error body's message (status != 200).
        hang_after: When set, send the headers and this many stream chunks, then send
            nothing more until the client disconnects or the server stops. 0 hangs right
            after the headers.
        hang_before_headers: Never answer at all (the client sees a read timeout).
        usage: Sent as ``usage`` (non-stream, or stream with ``include_usage``).
    """

    text_chunks: tuple[str, ...] = ()
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    finish_reason: str | None = None
    delay: float = 0.0
    first_delay: float = 0.0
    status: int = 200
    error_message: str = ""
    hang_after: int | None = None
    hang_before_headers: bool = False
    usage: dict[str, int] | None = None

    @property
    def text(self) -> str:
        """The whole assistant text."""
        return "".join(self.text_chunks)

    def final_reason(self) -> str:
        """The ``finish_reason`` this reply ends with."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


def _split(text: str, chunk_size: int) -> tuple[str, ...]:
    if not text:
        return ()
    size = max(1, chunk_size)
    return tuple(text[i : i + size] for i in range(0, len(text), size))


def text_reply(
    text: str,
    *,
    chunks: Sequence[str] | None = None,
    chunk_size: int = 4,
    delay: float = 0.0,
    first_delay: float = 0.0,
    finish_reason: str | None = None,
    hang_after: int | None = None,
) -> Reply:
    """A plain assistant answer.

    Args:
        text: The answer (ignored when ``chunks`` is given).
        chunks: Exact stream chunks; default splits ``text`` every ``chunk_size`` characters.
        chunk_size: Characters per chunk when splitting.
        delay: Seconds between chunks.
        first_delay: Seconds before the response starts.
        finish_reason: Overrides ``stop`` (e.g. ``length``).
        hang_after: Stop sending after this many chunks and hang (see :class:`Reply`).
    """
    parts = tuple(chunks) if chunks is not None else _split(text, chunk_size)
    return Reply(
        text_chunks=parts,
        delay=delay,
        first_delay=first_delay,
        finish_reason=finish_reason,
        hang_after=hang_after,
    )


def tool_call_reply(
    *calls: ScriptedToolCall,
    text: str = "",
    chunk_size: int = 4,
    delay: float = 0.0,
    first_delay: float = 0.0,
) -> Reply:
    """A response that calls tools (optionally after some text)."""
    return Reply(
        text_chunks=_split(text, chunk_size),
        tool_calls=tuple(calls),
        delay=delay,
        first_delay=first_delay,
    )


def error_reply(
    status: int, message: str = "scripted failure", *, first_delay: float = 0.0
) -> Reply:
    """An HTTP error with an OpenAI-shaped body ``{"error": {"message": message, ...}}``."""
    return Reply(status=status, error_message=message, first_delay=first_delay)


def hang_reply(*, after_chunks: int | None = None, text: str = "") -> Reply:
    """A response that never finishes.

    Args:
        after_chunks: None never sends headers; an int sends headers and that many chunks of
            ``text`` (split every 4 characters) and then hangs.
        text: Text to stream before hanging.
    """
    if after_chunks is None:
        return Reply(hang_before_headers=True)
    return Reply(text_chunks=_split(text, 4), hang_after=after_chunks)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received.

    Attributes:
        method: HTTP method.
        path: Request target (path and query).
        headers: Header names lower-cased.
        body: The parsed JSON body (None when absent or not JSON).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any


Responder = Callable[[dict[str, Any]], Reply]


class _ClientGone(Exception):
    """The client closed the connection before the response was complete."""


# ---- the server -----------------------------------------------------------------------------


class ScriptedOpenAI:
    """The scripted server. Thread-safe to script and inspect from any thread.

    Args:
        model_ids: Ids listed by ``GET /v1/models``.
        host: Interface to bind (loopback by default).

    Use :meth:`start` / :meth:`stop` or ``with ScriptedOpenAI() as server:``.
    """

    def __init__(self, model_ids: Iterable[str] = ("scripted-model",), host: str = "127.0.0.1"):
        self.model_ids: tuple[str, ...] = tuple(model_ids)
        self.host = host
        self.port = 0
        self.default: Reply | Responder | None = None
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply | Responder] = deque()
        self._lock = threading.Lock()
        self._disconnects = 0
        self._completed = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` — what an OpenAI client's ``base_url`` takes."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ScriptedOpenAI:
        """Bind a free port and serve in a daemon thread.

        Raises:
            RuntimeError: the server did not come up within ``timeout`` seconds.
        """
        if self._thread is not None:
            raise RuntimeError("scripted server already started")
        self._thread = threading.Thread(target=self._run, name="scripted-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("scripted OpenAI server did not start")
        if self._start_error is not None:
            raise RuntimeError("scripted OpenAI server failed to start") from self._start_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every open connection, then join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("scripted OpenAI server did not stop")
        self._thread = None

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------------

    def push(self, *replies: Reply | Responder) -> None:
        """Queue replies (or callables ``(request_body) -> Reply``) for the next requests."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Replies still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the chat-completions requests received so far, in order."""
        return [r.body for r in list(self.requests) if r.path.endswith("/chat/completions")]

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before they were complete."""
        with self._lock:
            return self._disconnects

    @property
    def completed(self) -> int:
        """Chat-completions responses sent in full."""
        with self._lock:
            return self._completed

    async def wait_for_disconnect(self, count: int = 1, within: float = 5.0) -> None:
        """Wait (on the caller's loop) until :attr:`disconnects` reaches ``count``.

        Raises:
            TimeoutError: it did not within ``within`` seconds.
        """
        await self._wait_until(lambda: self._disconnects >= count, within, f"disconnect #{count}")

    async def wait_for_requests(self, count: int = 1, within: float = 5.0) -> None:
        """Wait until ``count`` chat-completions requests have arrived.

        Raises:
            TimeoutError: they did not within ``within`` seconds.
        """
        await self._wait_until(lambda: len(self.bodies) >= count, within, f"request #{count}")

    async def _wait_until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                if condition():
                    return
                self._waiters.append((loop, fut))
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                raise TimeoutError(f"scripted server: no {what} within {within} s") from None

    def _notify(self) -> None:
        """Wake every waiter (they re-check their condition). Call with the lock held."""
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # the waiter's loop is gone
                pass

    def _note_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1
            self._notify()

    def _note_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._notify()

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            item = self._queue.popleft() if self._queue else self.default
        if item is None:
            return error_reply(500, "scripted server: no reply queued")
        return item(body) if callable(item) else item

    # -- the loop thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported through start()
            self._start_error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(
            self._on_connection, self.host, 0, limit=_MAX_HEADER_BYTES
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _on_connection(
        self, stream: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        reader = _Input(stream)
        try:
            while await self._handle_one(reader, writer):
                pass
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # server stopping
        finally:
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle_one(self, reader: _Input, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n", _MAX_HEADER_BYTES)
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            await _send_json(writer, 413, {"error": {"message": "headers too large"}}, False)
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await _send_json(writer, 400, {"error": {"message": "bad request line"}}, False)
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.read_body(headers)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._note_request(RecordedRequest(method, target, headers, body))
        keep_alive = headers.get("connection", "").lower() != "close"
        path = target.split("?", 1)[0].rstrip("/")

        if method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "scripted"} for m in self.model_ids]
            await _send_json(writer, 200, {"object": "list", "data": data}, keep_alive)
            return keep_alive
        if method == "POST" and path.endswith("/chat/completions"):
            if not isinstance(body, dict):
                await _send_json(writer, 400, _error_body("body must be a JSON object"), keep_alive)
                return keep_alive
            reply = self._next_reply(body)
            return await self._answer(reader, writer, body, reply, keep_alive)
        await _send_json(writer, 404, _error_body(f"no route {method} {path}"), keep_alive)
        return keep_alive

    async def _answer(
        self,
        reader: _Input,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        reply: Reply,
        keep_alive: bool,
    ) -> bool:
        watcher = asyncio.create_task(reader.watch_eof())
        try:
            if reply.hang_before_headers:
                await _wait_or_gone(watcher, None)
            if reply.first_delay:
                await _wait_or_gone(watcher, reply.first_delay)
            if reply.status != 200:
                await _send_json(writer, reply.status, _error_body(reply.error_message), keep_alive)
            elif body.get("stream"):
                await self._stream(writer, watcher, body, reply, keep_alive)
            else:
                await _send_json(writer, 200, self._completion(body, reply), keep_alive)
        except _ClientGone:
            self._note_disconnect()
            raise
        finally:
            watcher.cancel()
            try:
                await watcher
            except (asyncio.CancelledError, _ClientGone):
                pass
        with self._lock:
            self._completed += 1
        return keep_alive

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        watcher: asyncio.Task[None],
        body: dict[str, Any],
        reply: Reply,
        keep_alive: bool,
    ) -> None:
        head = _status_line(200) + (
            "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1"))
        await _drain(writer, watcher)
        frames = self._frames(body, reply)
        for index, frame in enumerate(frames):
            if reply.hang_after is not None and index >= reply.hang_after:
                await _wait_or_gone(watcher, None)
            if index > 0 and reply.delay:
                await _wait_or_gone(watcher, reply.delay)
            writer.write(_chunk(b"data: " + frame + b"\n\n"))
            await _drain(writer, watcher)
        if reply.hang_after is not None:
            await _wait_or_gone(watcher, None)
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await _drain(writer, watcher)

    def _frames(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        """The JSON payloads of the stream's ``data:`` frames (without ``[DONE]``)."""
        cid = f"chatcmpl-scripted-{next(self._ids)}"
        model = str(body.get("model", self.model_ids[0] if self.model_ids else "scripted"))
        created = int(time.time())

        def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return json.dumps(chunk).encode()

        frames = [frame({"role": "assistant", "content": ""})]
        frames += [frame({"content": piece}) for piece in reply.text_chunks]
        for index, call in enumerate(reply.tool_calls):
            call_id = call.id or f"call_{next(self._ids)}"
            first = {"index": index, "id": call_id, "type": "function"}
            first["function"] = {"name": call.name, "arguments": ""}
            frames.append(frame({"tool_calls": [first]}))
            for piece in _pieces(call.arguments_text(), call.pieces):
                more = {"index": index, "function": {"arguments": piece}}
                frames.append(frame({"tool_calls": [more]}))
        frames.append(frame({}, reply.final_reason()))
        options = body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            usage = reply.usage or _usage(body, reply)
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            frames.append(json.dumps(chunk).encode())
        return frames

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_text()},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": f"chatcmpl-scripted-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "scripted")),
            "choices": [{"index": 0, "message": message, "finish_reason": reply.final_reason()}],
            "usage": reply.usage or _usage(body, reply),
        }


# ---- helpers ------------------------------------------------------------------------------


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted_error", "code": None}}


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages", []))) // 4
    completion = len(reply.text) // 4 + sum(len(c.arguments_text()) // 4 for c in reply.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _pieces(text: str, count: int) -> list[str]:
    if not text:
        return [""]
    count = max(1, min(count, len(text)))
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _send_json(
    writer: asyncio.StreamWriter, status: int, payload: Any, keep_alive: bool
) -> None:
    data = json.dumps(payload).encode()
    head = _status_line(status) + (
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + data)
    await writer.drain()


class _Input:
    """The request side of one connection, buffered so the disconnect watcher loses no
    bytes a client sends early (e.g. its next keep-alive request)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buf = bytearray()

    async def _fill(self) -> None:
        data = await self._reader.read(65536)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self._buf), None)
        self._buf += data

    async def readuntil(self, sep: bytes, limit: int) -> bytes:
        while (end := self._buf.find(sep)) < 0:
            if len(self._buf) > limit:
                raise asyncio.LimitOverrunError("header too large", len(self._buf))
            await self._fill()
        out = bytes(self._buf[: end + len(sep)])
        del self._buf[: end + len(sep)]
        return out

    async def readexactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def watch_eof(self) -> None:
        """Return when the client closes its side; keep whatever it sends meanwhile."""
        while True:
            try:
                data = await self._reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            self._buf += data

    async def read_body(self, headers: dict[str, str]) -> bytes:
        """The request body, by ``Content-Length`` or chunked transfer coding."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await self.readuntil(b"\r\n", _MAX_HEADER_BYTES)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.readuntil(b"\r\n", _MAX_HEADER_BYTES)) != b"\r\n":
                        pass  # trailers, up to the blank line
                    return b"".join(parts)
                parts.append(await self.readexactly(size))
                await self.readexactly(2)
        length = int(headers.get("content-length", "0") or 0)
        return await self.readexactly(length) if length else b""


async def _wait_or_gone(watcher: asyncio.Task[None], seconds: float | None) -> None:
    """Sleep ``seconds`` (forever when None) unless the client disconnects first.

    Raises:
        _ClientGone: the client closed the connection.
    """
    done, _ = await asyncio.wait({watcher}, timeout=seconds)
    if done:
        raise _ClientGone()


async def _drain(writer: asyncio.StreamWriter, watcher: asyncio.Task[None]) -> None:
    if watcher.done() or writer.is_closing():
        raise _ClientGone()
    try:
        await writer.drain()
    except ConnectionError as exc:
        raise _ClientGone() from exc

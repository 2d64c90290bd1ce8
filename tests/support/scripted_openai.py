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
from collections.abc import Callable, Iterable
from typing import Any

from tests.support.http_wire import (
    MAX_HEADER_BYTES,
    ClientGone,
    RequestInput,
    chunked,
    drain,
    send_json,
    status_line,
    wait_or_gone,
)
from tests.support.openai_script import (
    RecordedRequest,
    Reply,
    Responder,
    ScriptedToolCall,
    error_reply,
    hang_reply,
    text_reply,
    tool_call_reply,
)

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

GATE_POLL_SECONDS = 0.02  # how often a gated reply looks at its event (Reply.gate)

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
        #: Whether a stream asked with ``stream_options.include_usage`` gets its usage
        #: chunk; False plays a compatible server that never reports usage.
        self.send_usage = True
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

    async def wait_for_completed(self, count: int = 1, within: float = 5.0) -> None:
        """Wait until ``count`` chat-completions responses were sent in full (the client
        can see a response end before the server thread has counted it).

        Raises:
            TimeoutError: they were not within ``within`` seconds.
        """
        await self._wait_until(lambda: self._completed >= count, within, f"response #{count}")

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
            self._on_connection, self.host, 0, limit=MAX_HEADER_BYTES
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
        reader = RequestInput(stream)
        try:
            while await self._handle_one(reader, writer):
                pass
        except (ClientGone, ConnectionError, asyncio.IncompleteReadError):
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

    async def _handle_one(self, reader: RequestInput, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n", MAX_HEADER_BYTES)
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            await send_json(writer, 413, {"error": {"message": "headers too large"}}, False)
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await send_json(writer, 400, {"error": {"message": "bad request line"}}, False)
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
            await send_json(writer, 200, {"object": "list", "data": data}, keep_alive)
            return keep_alive
        if method == "POST" and path.endswith("/chat/completions"):
            if not isinstance(body, dict):
                await send_json(writer, 400, _error_body("body must be a JSON object"), keep_alive)
                return keep_alive
            reply = self._next_reply(body)
            return await self._answer(reader, writer, body, reply, keep_alive)
        await send_json(writer, 404, _error_body(f"no route {method} {path}"), keep_alive)
        return keep_alive

    async def _answer(
        self,
        reader: RequestInput,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        reply: Reply,
        keep_alive: bool,
    ) -> bool:
        watcher = asyncio.create_task(reader.watch_eof())
        try:
            if reply.hang_before_headers:
                await wait_or_gone(watcher, None)
            while reply.gate is not None and not reply.gate.is_set():
                await wait_or_gone(watcher, GATE_POLL_SECONDS)
            if reply.first_delay:
                await wait_or_gone(watcher, reply.first_delay)
            if reply.status != 200:
                await send_json(writer, reply.status, _error_body(reply.error_message), keep_alive)
            elif body.get("stream"):
                await self._stream(writer, watcher, body, reply, keep_alive)
            else:
                await send_json(writer, 200, self._completion(body, reply), keep_alive)
        except ClientGone:
            self._note_disconnect()
            raise
        finally:
            watcher.cancel()
            try:
                await watcher
            except (asyncio.CancelledError, ClientGone):
                pass
        with self._lock:
            self._completed += 1
            self._notify()
        return keep_alive

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        watcher: asyncio.Task[None],
        body: dict[str, Any],
        reply: Reply,
        keep_alive: bool,
    ) -> None:
        head = status_line(200) + (
            "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1"))
        await drain(writer, watcher)
        frames = self._frames(body, reply)
        for index, frame in enumerate(frames):
            if reply.hang_after is not None and index >= reply.hang_after:
                await wait_or_gone(watcher, None)
            if index > 0 and reply.delay:
                await wait_or_gone(watcher, reply.delay)
            writer.write(chunked(b"data: " + frame + b"\n\n"))
            await drain(writer, watcher)
        if reply.hang_after is not None:
            await wait_or_gone(watcher, None)
        writer.write(chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await drain(writer, watcher)

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
        if self.send_usage and isinstance(options, dict) and options.get("include_usage"):
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

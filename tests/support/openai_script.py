"""The script of the scripted OpenAI-compatible server: what it answers, request by request.

Build replies with :func:`text_reply`, :func:`tool_call_reply`, :func:`error_reply` and
:func:`hang_reply`; queue them with :meth:`tests.support.scripted_openai.ScriptedOpenAI.push`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RecordedRequest",
    "Reply",
    "Responder",
    "ScriptedToolCall",
    "error_reply",
    "hang_reply",
    "text_reply",
    "tool_call_reply",
]


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
        gate: When set, answer only once the test sets this event (before the headers):
            a run waits in its model call until the test lets it go, with no timing.
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
    gate: threading.Event | None = None

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
    usage: dict[str, int] | None = None,
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
        usage: The usage to report (default: estimated from the request and reply sizes).
    """
    parts = tuple(chunks) if chunks is not None else _split(text, chunk_size)
    return Reply(
        text_chunks=parts,
        delay=delay,
        first_delay=first_delay,
        finish_reason=finish_reason,
        hang_after=hang_after,
        usage=usage,
    )


def tool_call_reply(
    *calls: ScriptedToolCall,
    text: str = "",
    chunk_size: int = 4,
    delay: float = 0.0,
    first_delay: float = 0.0,
    usage: dict[str, int] | None = None,
) -> Reply:
    """A response that calls tools (optionally after some text); ``usage`` as for
    :func:`text_reply`."""
    return Reply(
        text_chunks=_split(text, chunk_size),
        tool_calls=tuple(calls),
        delay=delay,
        first_delay=first_delay,
        usage=usage,
    )


def call(name: str, **arguments: Any) -> Reply:
    """A model turn calling one tool, ``name`` with ``arguments`` (the common case of
    :func:`tool_call_reply`)."""
    return tool_call_reply(ScriptedToolCall(name, arguments))


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


def per_prompt(scripts: dict[str, list[Reply]]) -> Responder:
    """A responder answering several runs at once by their prompts: a run's n-th model call
    (n = the tool results in its messages so far) gets ``scripts[prompt][n]``, whatever
    order the runs' calls arrive in (so runs on different nodes can share one server)."""

    def answer(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        prompt = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        step = sum(1 for m in messages if m["role"] == "tool")
        return scripts[prompt][step]

    return answer


def calls_for(bodies: list[Any], prompt: str) -> int:
    """How many of the recorded request ``bodies`` are model calls of the run whose prompt
    is ``prompt`` (the last user message)."""
    count = 0
    for body in bodies:
        users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
        count += bool(users) and users[-1] == prompt
    return count

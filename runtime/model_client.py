"""The OpenAI chat-completions protocol, streamed, through the official ``openai`` SDK.

One :class:`ModelClient` talks to one OpenAI-compatible endpoint (a :class:`ModelTarget`
binding: ``base_url`` plus its key). Its
:meth:`ModelClient.stream` yields :class:`TextDelta` values as tokens arrive, then every
assembled :class:`ToolCall`, then one :class:`StreamEnd`. Every failure — connection refused,
HTTP 4xx/5xx, timeout, a broken stream — is raised as one typed :class:`ModelError` whose
message names the endpoint (docs/design.md section 5: "model endpoint down -> run failed with a
clear diagnostic").

Cancelling the task that iterates :meth:`ModelClient.stream` closes the HTTP response, so the
upstream sees the disconnect and stops generating.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import unicodedata
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
import openai

from runtime.egress import REFUSED_MESSAGE, EgressPolicy, EgressRefused, EgressTransport
from runtime.engine import ModelTarget
from runtime.model_http import PooledTransport

__all__ = [
    "NO_API_KEY",
    "EncodedTools",
    "ModelClient",
    "ModelError",
    "ModelEvent",
    "StreamEnd",
    "TextDelta",
    "ToolCall",
    "provider_message",
    "safe_excerpt",
]

NO_API_KEY = "not-needed"
"""Sent as the bearer key when the binding names no key variable (local servers)."""

_CONNECT_TIMEOUT_CAP = 10.0
_MESSAGE_CAP = 500
_EXCERPT_CAP = 160
# Bounds of one streamed response (text plus tool-call arguments, in characters, and tool
# calls): a tenant's endpoint is untrusted, and without them it could stream arguments into
# this process's memory until the request timeout, or ask for thousands of tool runs in one
# turn. Far above what a model asked for max_tokens (1,024 by default) writes; 4 M
# characters hold more than a dozen of the largest patches (RUNWRIGHT_MAX_PATCH_BYTES).
MAX_RESPONSE_CHARS = 4_000_000
MAX_TOOL_CALLS = 128
# Control (Cc), format (Cf: bidi overrides, zero-width), surrogates, private use, unassigned.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

log = logging.getLogger(__name__)


class ResponseTooLarge(ValueError):
    """A streamed response passed :data:`MAX_RESPONSE_CHARS` or :data:`MAX_TOOL_CALLS`."""


class ModelError(Exception):
    """The model endpoint failed; the message names the endpoint and the cause.

    Attributes:
        endpoint: The binding's base URL.
        kind: ``connection``, ``timeout``, ``status``, ``protocol`` or ``config``.
        status: The HTTP status for ``kind == "status"``, else None.
    """

    def __init__(self, message: str, *, endpoint: str, kind: str, status: int | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.kind = kind
        self.status = status


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Assistant text as it streams in."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call, assembled from the streamed pieces.

    Attributes:
        id: The provider's call id (generated when the provider sent none).
        name: The function name.
        arguments: The raw JSON arguments string, exactly as the model wrote it.
    """

    id: str
    name: str
    arguments: str

    def as_message_item(self) -> dict[str, Any]:
        """The item for an assistant message's ``tool_calls`` list."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The stream finished.

    Attributes:
        finish_reason: ``stop``, ``tool_calls``, ``length``, ... (None if never sent).
        usage: The provider's usage object when it sent one.
    """

    finish_reason: str | None
    usage: dict[str, Any] | None = None


ModelEvent = TextDelta | ToolCall | StreamEnd


@dataclass(frozen=True, slots=True)
class EncodedTools:
    """Function-tool specs with their JSON made once: a toolpack's specs are the same for
    every request, and encoding them (~6.6 KB for the native toolpack) was the largest part
    of building a request body. Pass it as ``tools`` to :meth:`ModelClient.stream`.

    Attributes:
        specs: the OpenAI function-tool specs.
        json: their JSON array, as the request body carries it.
    """

    specs: tuple[dict[str, Any], ...]
    json: str

    @classmethod
    def of(cls, specs: Sequence[dict[str, Any]]) -> EncodedTools:
        """Encode ``specs`` (JSON values only)."""
        return cls(tuple(specs), _dumps(list(specs)))


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ModelClient:
    """A streaming chat-completions client for one endpoint.

    Args:
        base_url: The OpenAI-compatible base URL (e.g. ``http://127.0.0.1:4810/v1``).
        api_key: The bearer key; None sends :data:`NO_API_KEY`. Kept out of every message
            (an upstream error body that echoes it is redacted).
        egress: For a tenant's endpoint: connections go through
            :class:`runtime.egress.EgressTransport` (resolved and checked at connect time),
            and a refused or failed connection reads the same to the tenant. None (an
            operator's endpoint): a plain client, with the transport failure in the message.
        timeout: Seconds allowed for each read (and for the whole non-stream request);
            the connect timeout is ``min(timeout, 10)``.
        max_retries: SDK retries for connection errors, 408/409/429 and 5xx. Default 0: a
            failure surfaces at once and the run's restart policy decides.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        egress: EgressPolicy | None = None,
        timeout: float = 120.0,
        max_retries: int = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.guarded = egress is not None
        self._where = f"model endpoint {_display_url(self.base_url)}"
        self._secret = api_key or None
        # The SDK's default client (its limits, redirects, environment proxies) on our
        # transport: the pool's idle checks cost a third of a run's engine CPU otherwise
        # (runtime/model_http.py).
        transport: httpx2.AsyncBaseTransport
        if egress is not None:
            transport = EgressTransport(egress, PooledTransport(trust_env=False))
        else:
            transport = PooledTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
        http_client = openai.DefaultAsyncHttpxClient(transport=transport)
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or NO_API_KEY,
            timeout=openai.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT_CAP)),
            max_retries=max_retries,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"ModelClient({self.base_url!r}, guarded={self.guarded})"

    @classmethod
    def for_target(
        cls,
        target: ModelTarget,
        *,
        timeout: float,
        egress: EgressPolicy,
        max_retries: int = 0,
    ) -> ModelClient:
        """A client for a run's pinned model binding (contract 4, docs/security.md).

        A tenant's model (``operator_trusted`` False) gets the egress policy; an operator's
        model is trusted and connects directly.

        Raises:
            ModelError: ``kind="config"`` when the binding's credentials cannot be used
                (``target.credential_error``); nothing was sent.
        """
        if target.credential_error is not None:
            raise ModelError(
                f"model endpoint {_display_url(target.base_url)}: {target.credential_error}",
                endpoint=target.base_url,
                kind="config",
            )
        return cls(
            target.base_url,
            api_key=target.api_key,
            egress=None if target.operator_trusted else egress,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def list_models(self) -> list[str]:
        """The ids ``GET /models`` lists.

        Raises:
            ModelError: the endpoint failed.
        """
        try:
            page = await self._client.models.list()
            return [m.id for m in page.data]
        except (openai.OpenAIError, ValueError) as exc:
            raise self._translate(exc) from exc

    async def stream(
        self,
        *,
        model: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | EncodedTools | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        include_usage: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> AsyncGenerator[ModelEvent, None]:
        """Stream one chat completion.

        Args:
            model: The provider's model id (``ModelTarget.provider_model_id``).
            messages: OpenAI chat messages (``role``/``content``/``tool_calls``/...).
            tools: OpenAI function-tool specs (or :class:`EncodedTools`, encoded once);
                None or empty sends no tools.
            temperature: Sampling temperature; None leaves the provider default.
            max_tokens: Completion cap in tokens; None leaves the provider default.
            include_usage: Ask for a final usage chunk (``stream_options``); not every
                compatible server supports it.
            extra: Extra body fields sent verbatim.

        Yields:
            :class:`TextDelta` per non-empty content piece, then each :class:`ToolCall` in
            index order, then exactly one :class:`StreamEnd`.

        Raises:
            ModelError: connection refused, HTTP error (with the provider's message),
                timeout, or a malformed stream.
        """
        body: dict[str, Any] = {"model": model, "messages": list(messages), "stream": True}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        if extra:
            body.update(extra)
        encoded = _dumps(body)
        if isinstance(tools, EncodedTools):
            if tools.specs and "tools" not in body:  # the object's last member, spliced in
                encoded = f'{encoded[:-1]},"tools":{tools.json}}}'
        elif tools and "tools" not in body:
            encoded = _dumps({**body, "tools": list(tools)})

        calls: dict[int, _PartialCall] = {}
        received = 0  # characters of text and arguments so far (MAX_RESPONSE_CHARS)
        finish: str | None = None
        usage: dict[str, Any] | None = None
        try:
            # The SDK's own request path (its client, errors, SSE decoding and stream
            # close), without what costs CPU per run and per chunk: ``create`` walks the
            # messages and tool schemas through its type transform on every request, and
            # the stream builds a pydantic model per chunk. Our body is JSON already, and
            # each chunk is read as the dict it is, every field type-checked below
            # (docs/benchmarks.md, "Native engine CPU").
            response = await self._client.post(
                "/chat/completions", content=encoded.encode(), cast_to=object, stream=True,
                stream_cls=openai.AsyncStream[object],
            )  # fmt: skip
            async with response as chunks:
                async for chunk in chunks:
                    if not isinstance(chunk, dict):
                        raise ValueError("a stream chunk is not an object")
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    for choice in _items(chunk.get("choices")):
                        if choice.get("finish_reason"):
                            finish = str(choice["finish_reason"])
                        delta = choice.get("delta")
                        if not isinstance(delta, dict):
                            continue
                        content = delta.get("content")
                        if content:
                            if not isinstance(content, str):
                                raise ValueError("delta content is not a string")
                            received += len(content)
                            if received > MAX_RESPONSE_CHARS:
                                raise ResponseTooLarge("text")
                            yield TextDelta(content)
                        for piece in _items(delta.get("tool_calls")):
                            index = piece.get("index", 0)
                            if not isinstance(index, int):
                                raise ValueError("a tool call index is not an integer")
                            received += _merge(calls.setdefault(index, _PartialCall()), piece)
                            if received > MAX_RESPONSE_CHARS or len(calls) > MAX_TOOL_CALLS:
                                raise ResponseTooLarge("tool calls")
        except (openai.OpenAIError, ValueError) as exc:
            raise self._translate(exc) from exc
        for index in sorted(calls):
            part = calls[index]
            call_id = part.id or f"call_{uuid.uuid4().hex[:12]}"
            yield ToolCall(id=call_id, name=part.name, arguments="".join(part.arguments))
        yield StreamEnd(finish_reason=finish, usage=usage)

    def _translate(self, exc: Exception) -> ModelError:
        """One :class:`ModelError` for any SDK failure, naming the endpoint.

        What an upstream sent reaches the message only as a short escaped excerpt with the
        key redacted (issue 9 item 3). For a guarded (tenant) endpoint, every failure to
        connect — refused by the egress policy, unresolvable, refused, connect timeout —
        reads the same, so the run error is no port scanner; the precise cause is logged.
        """
        where = self._where
        connect_failure = isinstance(exc, openai.APIConnectionError) and (
            not isinstance(exc, openai.APITimeoutError) or _connect_timeout(exc)
        )
        if self.guarded and connect_failure:
            refused = _find(exc, EgressRefused)
            log.info("%s: connection failed: %s", where,
                     refused.reason if refused else _root_cause(exc))  # fmt: skip
            return ModelError(
                f"{where} could not be reached (connection failed, or {REFUSED_MESSAGE})",
                endpoint=self.base_url,
                kind="connection",
            )
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"{where} timed out (no response within {self.timeout:g} s)",
                endpoint=self.base_url,
                kind="timeout",
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = _root_cause(exc)
            return ModelError(
                f"{where} is unreachable: {cause}", endpoint=self.base_url, kind="connection"
            )
        if isinstance(exc, openai.APIStatusError):
            detail = self._excerpt(provider_message(exc.body))
            return ModelError(
                f"{where} answered HTTP {exc.status_code}" + (f": {detail}" if detail else ""),
                endpoint=self.base_url,
                kind="status",
                status=exc.status_code,
            )
        if isinstance(exc, ResponseTooLarge):
            return ModelError(
                f"{where} sent a response larger than this server accepts (over "
                f"{MAX_RESPONSE_CHARS} characters or {MAX_TOOL_CALLS} tool calls)",
                endpoint=self.base_url,
                kind="protocol",
            )
        if isinstance(exc, openai.APIError):
            return ModelError(
                f"{where} failed mid-stream: {self._excerpt(exc.message)}",
                endpoint=self.base_url,
                kind="protocol",
            )
        return ModelError(
            f"{where} sent a malformed response ({type(exc).__name__})",
            endpoint=self.base_url,
            kind="protocol",
        )

    def _excerpt(self, text: str) -> str:
        """``text`` as a short, escaped, quoted excerpt with the key redacted ("" if empty)."""
        if self._secret:
            text = text.replace(self._secret, "[redacted]")
        return safe_excerpt(text)


def safe_excerpt(text: str, limit: int = _EXCERPT_CAP, *, quote: bool = True) -> str:
    """What an untrusted server said, fit for a run's error: whitespace collapsed, at most
    ``limit`` characters, control and format characters (terminal escapes, bidi overrides)
    escaped as ``\\uXXXX``, in double quotes unless ``quote`` is False; "" for empty
    text."""
    text = " ".join(text.split())
    if not text:
        return ""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    escaped = "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _UNSAFE_CATEGORIES or ch in '"\\' else ch
        for ch in text
    )
    return f'"{escaped}"' if quote else escaped


def _dumps(value: Any) -> str:
    """Compact JSON as the SDK sends it (UTF-8, no NaN)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _connect_timeout(exc: BaseException) -> bool:
    return _find(exc, httpx2.ConnectTimeout) is not None


E = TypeVar("E", bound=BaseException)


def _find(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in ``exc``'s cause/context chain."""
    seen: BaseException | None = exc
    for _ in range(32):  # chains are short; a cycle must not hang us
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _display_url(url: str) -> str:
    """``url`` without credentials or query (an operator may put a token in either)."""
    try:
        parsed = httpx2.URL(url)
        return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx2.InvalidURL, TypeError, ValueError):
        return "(invalid URL)"


def _items(value: object) -> list[dict[str, Any]]:
    """The objects of a chunk's list field (``choices``, ``tool_calls``); absent or null
    is empty.

    Raises:
        ValueError: the field is not a list of objects (a malformed stream).
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("a stream chunk list field is not a list of objects")
    return value


def _merge(part: _PartialCall, piece: dict[str, Any]) -> int:
    """Fold one streamed tool-call piece into its partial call (OpenAI sends id and name
    in the first piece of a call and the arguments in later pieces); return the number of
    characters it added.

    Raises:
        ValueError: a field has the wrong type (a malformed stream).
    """
    call_id = piece.get("id")
    if call_id and not part.id:
        part.id = _text(call_id)
    function = piece.get("function")
    if function is None:
        return 0
    if not isinstance(function, dict):
        raise ValueError("a tool call function is not an object")
    name, arguments = function.get("name"), function.get("arguments")
    added = 0
    if name and not part.name:
        part.name = _text(name)
        added += len(part.name)
    if arguments:
        part.arguments.append(_text(arguments))
        added += len(part.arguments[-1])
    return added


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a tool call field is not a string")
    return value


def provider_message(body: object) -> str:
    """The human message of an OpenAI-style error body (``{message}`` or a string); the
    SDK hands over the body's ``error`` object when there is one."""
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(message, str):
            return message
        if message is not None:
            return json.dumps(message)
        return json.dumps(body)
    if isinstance(body, str):
        return body
    return ""


def _root_cause(exc: BaseException) -> str:
    """A short cause for a transport failure: the OS error (``Connection refused``) when
    there is one in the chain, else the innermost exception's text."""
    seen: BaseException | None = exc
    inner = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve host ({seen.strerror or seen})"
        if isinstance(seen, OSError) and seen.errno:
            return f"{os.strerror(seen.errno)} ({type(seen).__name__})"
        inner = seen
        seen = seen.__cause__ or seen.__context__
    text = str(inner) or type(inner).__name__
    return _cap(text if inner is not exc else "connection error")


def _cap(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CAP else text[: _MESSAGE_CAP - 3] + "..."

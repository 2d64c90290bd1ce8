"""Tool calls for the local model, with a grammar when the model's own JSON fails (issue 13
item 4).

llama-cpp-python's server renders a GGUF's own chat template, tools included, but returns
whatever the model writes as plain text: a small model that answers with a Hermes-style
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block (the format Qwen2.5's
template teaches; small models often drop the tags) never reaches an OpenAI client as a
tool call. This module is a chat handler for that server which:

1. renders the prompt with the model's own template (``tokenizer.chat_template``), passing
   the tools and the earlier tool calls and ``tool`` messages the way the template expects;
2. samples greedily (:data:`TEMPERATURE`) and streams text as it comes; a reply whose
   first character is ``<``, ``{`` or a code fence may be a tool call and is held until it
   is complete (sampling stops as soon as it parses as a call, or at ``</tool_call>``);
3. returns a call that parses and names an offered tool as an OpenAI tool call
   (``finish_reason: "tool_calls"``); a reply meant as a call (:func:`attempts_call`) that
   does not parse is sampled again under a GBNF grammar (built with llama-cpp-python's
   JSON-schema converter) that admits only a call of an offered tool with arguments
   following its schema; any other held reply is sent as text. ``tool_choice`` naming a
   function, or ``"required"``, uses the grammar from the start.

Why not the grammar every time: llama.cpp checks a grammar against every token of the
vocabulary at every step; with Qwen's 151,936 tokens that cost about 2 s per token on two
busy cores, against 0.3 s without (docs/local-model.md), and the model's own calls usually
parse.

The module runs as the local model server: ``python -m runtime.local_tool_calls
<llama_cpp.server options>`` registers the handler under :data:`HANDLER_NAME` and starts
llama-cpp-python's server, so ``--chat_format runwright-tool-calls`` selects it. It needs the
``[local]`` extra; nothing else in Runwright imports it.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import llama_cpp.llama_chat_format as chat_format
from llama_cpp import llama_grammar

__all__ = [
    "HANDLER_NAME",
    "attempts_call",
    "looks_like_call",
    "main",
    "null_content_fix",
    "parse_tool_call",
    "tool_call_grammar",
    "tool_calls_handler",
]

HANDLER_NAME = "runwright-tool-calls"
"""The ``--chat_format`` name of :func:`tool_calls_handler`."""

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FENCE = "```"
TEMPERATURE = 0.0
"""The local model is sampled greedily, whatever the request says: a small model picks
wrong tools and breaks edits when sampled hot (OpenAI clients, the native engine among
them, usually send no temperature, which llama-cpp-python's server turns into 0.8), and a
greedy model answers the same prompt the same way, which `runwright demo` and its test
rely on (docs/local-model.md)."""


def tool_call_grammar(tools: list[dict[str, Any]]) -> str:
    """The GBNF grammar of one ``<tool_call>`` block calling one of ``tools``.

    Args:
        tools: OpenAI function tools (``{"type": "function", "function": {name,
            parameters}}``).

    Returns:
        Grammar text whose ``root`` rule is the block.

    Raises:
        ValueError: a tool's parameter schema cannot be converted to a grammar.
    """
    variants = []
    for tool in tools:
        function = tool["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        variants.append({
            "type": "object",
            "properties": {"name": {"const": function["name"]}, "arguments": parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })  # fmt: skip
    schema = {"oneOf": variants}
    converted = llama_grammar.json_schema_to_gbnf(json.dumps(schema), ["name", "arguments"])
    # The converter's entry rule is `root`; rename it so our own root can wrap it.
    call_rules = "\n".join(
        "call-json" + line[len("root") :] if line.startswith("root ::=") else line
        for line in converted.splitlines()
    )
    return f'root ::= "{OPEN}\\n" call-json "\\n{CLOSE}"\n{call_rules}\n'


def parse_tool_call(text: str, names: set[str] | None = None) -> tuple[str, str] | None:
    """``(name, arguments JSON)`` of the first call in ``text``: a ``<tool_call>`` block or a
    bare ``{"name": ..., "arguments": {...}}`` object, either maybe inside a Markdown code
    fence. None when there is no complete, valid
    call (for example one cut short by ``max_tokens``) or, with ``names``, when it names no
    tool among them."""
    body = _unfenced(text)
    if body.startswith(OPEN):
        # Sampling stops at the closing tag (it is a stop string), so it is usually absent;
        # the JSON object must be complete either way.
        body = body[len(OPEN) :].split(CLOSE, 1)[0]
    try:
        call, _ = json.JSONDecoder().raw_decode(body.strip())
    except ValueError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    if names is not None and call["name"] not in names:
        return None
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):  # some models send the OpenAI string form
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return call["name"], json.dumps(arguments, ensure_ascii=False)


def _unfenced(text: str) -> str:
    """``text`` stripped, without a Markdown code fence around it (```` ```json ... ``` ````):
    the 0.5B model sometimes writes its call that way (docs/local-model.md)."""
    body = text.strip()
    if body.startswith(FENCE):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.split(FENCE, 1)[0].strip()
    return body


def looks_like_call(text: str) -> bool:
    """Whether a reply that starts with ``text`` may be a tool call rather than prose (it
    is held until complete, then :func:`attempts_call` decides): it starts with ``<``,
    ``{`` or a code fence."""
    head = text.lstrip()
    return head.startswith(("<", "{", "`"))


def attempts_call(text: str) -> bool:
    """Whether a whole reply that did not parse as a call was meant as one (and is worth a
    grammar repair): a ``<tool_call>`` block, or JSON naming a function. Other JSON is the
    model's text: a small model answers a tool result by echoing it (``{"ok": true, ...}``),
    and repairing that into a call made it repeat its last call (docs/local-model.md)."""
    head = _unfenced(text)
    return head.startswith(OPEN) or (head.startswith("{") and '"name"' in head)


def _template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: tool-call arguments as objects, not the
    JSON strings the OpenAI protocol carries, and ``None`` content as empty text."""
    out = []
    for message in messages:
        item = dict(message)
        if item.get("content") is None:
            item["content"] = ""
        calls = []
        for call in item.get("tool_calls") or ():
            function = dict(call.get("function") or {})
            try:
                function["arguments"] = json.loads(function.get("arguments") or "{}")
            except ValueError:
                pass  # keep the model's text as it was
            calls.append({**call, "function": function})
        if calls:
            item["tool_calls"] = calls
        out.append(item)
    return out


def _formatter(llama: Any) -> chat_format.Jinja2ChatFormatter:
    metadata = llama.metadata
    template = metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError(f"{HANDLER_NAME}: the model has no chat template")

    def token(key: str) -> str:
        ident = metadata.get(key)
        return llama._model.token_get_text(int(ident)) if ident is not None else ""

    return chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=token("tokenizer.ggml.eos_token_id"),
        bos_token=token("tokenizer.ggml.bos_token_id"),
        stop_token_ids=[llama.token_eos()],
    )


def tool_calls_handler(
    *,
    llama: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
    temperature: float = 0.2,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
    **kwargs: Any,
) -> Any:
    """The llama-cpp-python chat handler (see the module docstring).

    Takes the keyword arguments llama-cpp-python passes to chat handlers; sampling options
    other than those named pass through to ``Llama.create_completion``.

    Returns:
        A chat completion dict, or an iterator of chat completion chunks when ``stream``.
    """
    formatter = _formatter(llama)
    offered = list(tools or []) if tool_choice != "none" else []
    forced = tool_choice == "required" or isinstance(tool_choice, dict)
    if offered and isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        offered = [t for t in offered if t["function"]["name"] == name] or offered
    # llama-cpp-python types these as its TypedDicts; ours are the same JSON shapes.
    rendered = formatter(messages=_template_messages(messages), tools=offered or None)  # type: ignore[arg-type]
    stops = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
    options = {
        key: value
        for key, value in kwargs.items()
        if key in {"top_p", "top_k", "min_p", "typical_p", "seed", "presence_penalty",
                   "frequency_penalty", "model", "logit_bias"}
    }  # fmt: skip
    # With tools offered, sampling ends at the first call's closing tag: only that call is
    # returned, and a small model otherwise goes on writing more calls until max_tokens
    # (measured: 120 tokens instead of 45 for one call).
    stops += [CLOSE] if offered else []
    options.update(
        temperature=TEMPERATURE,
        # The server's default repeat penalty (1.1) works against a tool call, which copies
        # paths and text from the prompt and the conversation.
        repeat_penalty=1.0,
        max_tokens=max_tokens,
        stop=stops + ([rendered.stop] if isinstance(rendered.stop, str) else []),
        stopping_criteria=rendered.stopping_criteria,
    )

    meter = _Meter(llama)

    def complete(prompt: str, grammar: Any = None, streamed: bool = False) -> Any:
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        meter.prompt_tokens = len(tokens)  # the same prompt on a repair: counted once
        result = llama.create_completion(prompt=tokens, grammar=grammar, stream=streamed,
                                         **options)  # fmt: skip
        if streamed:
            return meter.counted(result)
        meter.sampled.append(result["choices"][0].get("text") or "")
        return result

    def constrained_call() -> tuple[str, str] | None:
        grammar = llama_grammar.LlamaGrammar.from_string(tool_call_grammar(offered), verbose=False)
        text = complete(rendered.prompt, grammar)["choices"][0]["text"]
        return parse_tool_call(text, names)

    names = {t["function"]["name"] for t in offered}
    if offered and forced:
        call = constrained_call()
        pieces: Iterator[dict[str, Any]] = iter(())
        if stream:
            return _stream_chunks(pieces, call=call, usage=meter.usage)
        return _whole(None, call=call)
    if stream:
        repair = constrained_call if offered else None
        pieces = complete(rendered.prompt, streamed=True)
        return _stream_chunks(pieces, names, repair, usage=meter.usage)
    completion = complete(rendered.prompt)
    text = completion["choices"][0].get("text") or ""
    call = None
    if offered and looks_like_call(text):
        call = parse_tool_call(text, names)
        if call is None and attempts_call(text):
            call = constrained_call()
    return _whole(completion, call=call)


class _Meter:
    """Token counts of one request, for the stream's usage (the server's own streams
    report none): the prompt as tokenized, and the text sampled (re-tokenized at the end,
    which can differ from the sampled tokens by a token or so at piece boundaries)."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.prompt_tokens = 0
        self.sampled: list[str] = []

    def counted(self, pieces: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``pieces``, keeping their text; closing this closes them (stops sampling)."""
        try:
            for piece in pieces:
                self.sampled.append(piece["choices"][0].get("text") or "")
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def usage(self) -> dict[str, int]:
        """OpenAI's ``usage`` object."""
        text = "".join(self.sampled).encode("utf-8")
        completion = len(self.llama.tokenize(text, add_bos=False, special=True)) if text else 0
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}  # fmt: skip


def _chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _call_item(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_{uuid.uuid4().hex[:16]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _stream_chunks(
    pieces: Iterator[dict[str, Any]],
    names: set[str] | None = None,
    repair: Any = None,
    call: tuple[str, str] | None = None,
    usage: Any = None,
) -> Iterator[dict[str, Any]]:
    """Text streams as it is sampled; a reply that starts like a call is held until it is
    complete, then sent as one tool-call delta (``repair()`` re-samples it under the grammar
    when it was meant as a call but does not parse; otherwise it is sent as text). ``call``
    is an already decided call (no ``pieces``). The last chunk carries ``usage()``, when
    given, as OpenAI's ``usage``."""
    ident, model = f"chatcmpl-{uuid.uuid4().hex[:16]}", "local"
    yield _chunk(ident, model, {"role": "assistant"}, None)
    held: list[str] | None = None  # not None once the reply is known to be a call
    seen = ""
    finish: str | None = None
    for piece in pieces:
        model = piece.get("model", model)
        choice = piece["choices"][0]
        text = choice.get("text") or ""
        finish = choice.get("finish_reason") or finish
        if held is None and repair is not None and not seen.strip() and text.strip():
            if looks_like_call(text):
                held = []
        seen += text
        if held is not None:
            held.append(text)
            if "}" in text and parse_tool_call("".join(held), names) is not None:
                # A complete call: stop sampling here. A call without tags has no stop
                # string, and a small model goes on to imitate the tool's answer.
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()
                break
        elif text:
            yield _chunk(ident, model, {"content": text}, None)
    if held is not None:
        whole = "".join(held)
        call = parse_tool_call(whole, names)
        if call is None and attempts_call(whole):
            call = repair()
        if call is None:  # not even the grammar produced a call: show what came
            yield _chunk(ident, model, {"content": whole}, None)
    if call is not None:
        item = {"index": 0, **_call_item(*call)}
        yield _chunk(ident, model, {"tool_calls": [item]}, None)
        finish = "tool_calls"
    last = _chunk(ident, model, {}, finish or "stop")
    if usage is not None:
        last["usage"] = usage()
    yield last


def _whole(completion: dict[str, Any] | None, call: tuple[str, str] | None) -> dict[str, Any]:
    choice = completion["choices"][0] if completion else {}
    text = choice.get("text") or ""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = choice.get("finish_reason") or "stop"
    if call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [_call_item(*call)]}
        finish = "tool_calls"
    return {
        "id": "chat" + (completion["id"] if completion else uuid.uuid4().hex[:16]),
        "object": "chat.completion",
        "created": completion["created"] if completion else int(time.time()),
        "model": completion["model"] if completion else "local",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": completion.get("usage") if completion else None,
    }


def null_content_fix(app: Any) -> Any:
    """ASGI middleware: ``"content": null`` in chat messages becomes ``""``.

    OpenAI clients send an assistant turn that only calls tools with ``content: null``;
    llama-cpp-python's request model accepts only strings there and answers HTTP 500.
    """

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not scope.get("path", "").endswith("/completions"):
            await app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            data = json.loads(body)
            for item in data.get("messages") or ():
                if isinstance(item, dict) and "content" in item and item["content"] is None:
                    item["content"] = ""
            body = json.dumps(data).encode()
        except (ValueError, AttributeError, TypeError):
            pass  # not JSON we understand: the server answers it as it would
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return wrapped


def main(argv: list[str] | None = None) -> None:
    """Register the handler, then run llama-cpp-python's server with ``argv`` (its app
    wrapped in :func:`null_content_fix`)."""
    chat_format.LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        # Same call shape as llama-cpp-python's handler protocol, with plain dicts.
        HANDLER_NAME,
        tool_calls_handler,  # type: ignore[arg-type]
        overwrite=True,
    )
    import llama_cpp.server.__main__ as server_main

    create_app = server_main.create_app
    server_main.create_app = lambda **kwargs: null_content_fix(create_app(**kwargs))  # type: ignore[assignment]
    sys.argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    server_main.main()


if __name__ == "__main__":
    main()

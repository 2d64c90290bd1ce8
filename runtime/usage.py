"""Usage accounting (issue 12 item 3): token counts as endpoints report them, and the run's
``usage`` object.

Counts are taken only from what the model's endpoint (or OpenCode) reported: a count it did
not send stays None ("unknown"), never estimated. A value that is not a whole number in
0..2**31-1 is treated as not sent (a hostile endpoint cannot store nonsense or overflow a
column).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.engine import UsageReported

MAX_COUNT = 2**31 - 1

Counts = tuple[int | None, int | None, int | None]
"""``(prompt_tokens, completion_tokens, total_tokens)``."""


def count(value: Any) -> int | None:
    """``value`` as a token count, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_COUNT else None


def openai_counts(usage: Mapping[str, Any] | None) -> Counts:
    """The counts of an OpenAI ``usage`` object (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``; sent in the last chunk of a stream asked with
    ``stream_options={"include_usage": true}``). ``total_tokens`` missing but both others
    present: their sum (the OpenAI definition of the total)."""
    if not isinstance(usage, Mapping):
        return None, None, None
    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    total = count(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = count(prompt + completion)
    return prompt, completion, total


def opencode_counts(tokens: Mapping[str, Any] | None) -> Counts:
    """The counts of an OpenCode ``step-finish`` part's ``tokens``
    (``{input, output, reasoning, cache: {read, write}}``; ``input`` leaves out cached
    prompt tokens): prompt = input + cache read + cache write, completion = output +
    reasoning, total = their sum. A part without ``input`` / ``output`` reports nothing."""
    if not isinstance(tokens, Mapping):
        return None, None, None
    cache = tokens.get("cache")
    if not isinstance(cache, Mapping):
        cache = {}
    given = count(tokens.get("input"))
    output = count(tokens.get("output"))
    prompt = None if given is None else count(
        given + (count(cache.get("read")) or 0) + (count(cache.get("write")) or 0)
    )  # fmt: skip
    completion = None if output is None else count(output + (count(tokens.get("reasoning")) or 0))
    total = None if prompt is None or completion is None else count(prompt + completion)
    return prompt, completion, total


def usage_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """The run's ``usage`` (run object, ``usage.updated``) from its ``usage_*`` columns.

    ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens``: sums over the model calls
    that reported them, null while none did; ``model_calls``: model calls that completed;
    ``model_calls_without_usage``: those whose endpoint reported no counts (the sums leave
    them out); ``model_seconds`` / ``tool_seconds``: wall time of model calls (where
    known) and tool calls; ``tool_calls``: tool calls that ended.
    """
    return {
        "prompt_tokens": row.get("usage_prompt_tokens"),
        "completion_tokens": row.get("usage_completion_tokens"),
        "total_tokens": row.get("usage_total_tokens"),
        "model_calls": row.get("usage_model_calls") or 0,
        "model_calls_without_usage": row.get("usage_model_calls_unreported") or 0,
        "model_seconds": (row.get("usage_model_ms") or 0) / 1000,
        "tool_calls": row.get("usage_tool_calls") or 0,
        "tool_seconds": (row.get("usage_tool_ms") or 0) / 1000,
    }


def usage_updated(report: UsageReported, row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``usage.updated`` payload for a recorded model call ``report``
    (:class:`runtime.engine.UsageReported`) and the run row with its new sums:
    ``{"call": {model, prompt_tokens, completion_tokens, total_tokens, seconds}, "usage":
    <the run's usage>}``."""
    return {
        "call": {
            "model": report.name,
            "prompt_tokens": report.prompt_tokens,
            "completion_tokens": report.completion_tokens,
            "total_tokens": report.total_tokens,
            "seconds": None if report.seconds is None else round(report.seconds, 3),
        },
        "usage": usage_object(row),
    }

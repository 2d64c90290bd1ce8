"""Chat history normalisation, prompt append and budget compaction (contract section 5).

Applied once, at run creation (the reference normalised twice with the same rules); the
result is stored in ``input_params.messages``. Compaction follows the contract exactly,
including its non-contiguous walk, because clients rely on which turns survive.
"""

from __future__ import annotations

from typing import Any

ROLES = frozenset({"user", "assistant", "system"})


def normalize_messages(items: Any) -> list[dict[str, str]]:
    """Keep ``{role, content}`` items whose role is user/assistant/system (lower-cased,
    stripped) and whose stripped content is non-empty, in order; drop everything else."""
    out: list[dict[str, str]] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, dict):
            continue
        role = str(item.get("role") or "").strip().lower()
        content = str(item.get("content") or "").strip()
        if role in ROLES and content:
            out.append({"role": role, "content": content})
    return out


def append_prompt(messages: list[dict[str, str]], prompt: str) -> list[dict[str, str]]:
    """Append the prompt as the last user turn unless it already is exactly that."""
    turn = {"role": "user", "content": prompt}
    if messages and messages[-1] == turn:
        return list(messages)
    return [*messages, turn]


def compact(messages: list[dict[str, Any]], budget_chars: int) -> list[dict[str, Any]]:
    """Fit the history into ``budget_chars`` characters of content.

    Returns the list unchanged when it fits. Otherwise walks from newest to oldest: the
    newest message is always kept, each older one is kept if its cost fits what is left
    (a skipped message does not stop the walk), and a system note
    "Context compacted: N earlier message(s) omitted to stay within budget." is prepended
    (not counted in the budget).

    A session's history (docs/design.md 10) also holds tool calls: an assistant message with
    ``tool_calls`` and the ``tool`` results that answer it are kept or dropped together
    (a model endpoint refuses a call without its result), costing their contents plus the
    calls' argument strings. Plain ``{role, content}`` histories (contract 5) have no such
    groups, so for them this is exactly the contract's walk.
    """
    units = _units(messages)
    costs = [sum(_cost(m) for m in unit) for unit in units]
    if sum(costs) <= budget_chars or not messages:
        return list(messages)
    kept = [units[-1]]
    remaining = budget_chars - costs[-1]
    for unit, cost in zip(reversed(units[:-1]), reversed(costs[:-1]), strict=True):
        if cost <= remaining:
            kept.append(unit)
            remaining -= cost
    kept.reverse()
    flat = [m for unit in kept for m in unit]
    dropped = len(messages) - len(flat)
    note = {
        "role": "system",
        "content": (
            f"Context compacted: {dropped} earlier message(s) omitted to stay within budget."
        ),
    }
    return [note, *flat]


def _cost(message: dict[str, Any]) -> int:
    """Characters of content, plus the argument strings of tool calls."""
    content = message.get("content")
    cost = len(content) if isinstance(content, str) else 0
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        cost += len(arguments) if isinstance(arguments, str) else 0
    return cost


def _units(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages grouped for compaction: an assistant message with ``tool_calls`` together
    with the ``tool`` messages right after it; every other message alone."""
    units: list[list[dict[str, Any]]] = []
    for message in messages:
        if (
            message.get("role") == "tool"
            and units
            and (units[-1][0].get("tool_calls") and units[-1][0].get("role") == "assistant")
        ):
            units[-1].append(message)
        else:
            units.append([message])
    return units


def prepare_messages(items: Any, prompt: str, budget_chars: int) -> list[dict[str, str]]:
    """Normalise, append the prompt, compact: what a new run stores (contract 5)."""
    return compact(append_prompt(normalize_messages(items), prompt), budget_chars)

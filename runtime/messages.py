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


def compact(messages: list[dict[str, str]], budget_chars: int) -> list[dict[str, str]]:
    """Fit the history into ``budget_chars`` characters of content.

    Returns the list unchanged when it fits. Otherwise walks from newest to oldest: the
    newest message is always kept, each older one is kept if its cost fits what is left
    (a skipped message does not stop the walk), and a system note
    "Context compacted: N earlier message(s) omitted to stay within budget." is prepended
    (not counted in the budget).
    """
    if sum(len(m["content"]) for m in messages) <= budget_chars or not messages:
        return list(messages)
    kept = [messages[-1]]
    remaining = budget_chars - len(messages[-1]["content"])
    for message in reversed(messages[:-1]):
        cost = len(message["content"])
        if cost <= remaining:
            kept.append(message)
            remaining -= cost
    kept.reverse()
    dropped = len(messages) - len(kept)
    note = {
        "role": "system",
        "content": (
            f"Context compacted: {dropped} earlier message(s) omitted to stay within budget."
        ),
    }
    return [note, *kept]


def prepare_messages(items: Any, prompt: str, budget_chars: int) -> list[dict[str, str]]:
    """Normalise, append the prompt, compact: what a new run stores (contract 5)."""
    return compact(append_prompt(normalize_messages(items), prompt), budget_chars)

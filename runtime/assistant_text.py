"""Final assistant text: extraction from an engine's output and the prompt-aware fallbacks
(contract section 3.5)."""

from __future__ import annotations

from typing import Any

GREETING_REPLY = (
    "Hi. I can edit app code, run checks, and explain changes. What would you like to change?"
)
CAPABILITIES_REPLY = (
    "I can inspect and edit files, run targeted checks/tests, and create or restore "
    "checkpoints. Tell me what you want to build or fix."
)
DEFAULT_REPLY = (
    "I can help with code changes, debugging, and verification in this app workspace. "
    "Tell me your goal."
)
_GREETINGS = frozenset({"hi", "hello", "hey", "yo", "shalom"})


def coerce_text(value: Any) -> str | None:
    """Strings stripped (empty -> None); lists joined with spaces; dicts probed in key order
    content, message, text, summary."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        parts = [t for t in (coerce_text(v) for v in value) if t]
        return " ".join(parts) or None
    if isinstance(value, dict):
        for key in ("content", "message", "text", "summary"):
            text = coerce_text(value.get(key))
            if text:
                return text
    return None


def extract_assistant_text(output: Any) -> str | None:
    """Look in ``state.last_agent_output``, ``last_agent_output``, then the last assistant/ai
    message of ``messages``."""
    if not isinstance(output, dict):
        return None
    state = output.get("state")
    if isinstance(state, dict):
        text = coerce_text(state.get("last_agent_output"))
        if text:
            return text
    text = coerce_text(output.get("last_agent_output"))
    if text:
        return text
    messages = output.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and (
                message.get("role") in ("assistant", "ai")
                or message.get("type") in ("assistant", "ai")
            ):
                text = coerce_text(message.get("content"))
                if text:
                    return text
    return None


def fallback_text(prompt: str) -> str:
    """The canned reply chosen from the lower-cased stripped prompt."""
    p = prompt.strip().lower()
    if p in _GREETINGS:
        return GREETING_REPLY
    if "what can you do" in p or p == "help" or "how can you help" in p:
        return CAPABILITIES_REPLY
    return DEFAULT_REPLY


def final_text(output: Any, prompt: str) -> str:
    """Extracted text, else the fallback."""
    return extract_assistant_text(output) or fallback_text(prompt)

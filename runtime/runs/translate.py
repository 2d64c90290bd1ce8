"""Engine events -> run event drafts (contract 3.3 and 3.4)."""

from __future__ import annotations

from typing import Any

from runtime.engine import Delta, PlanUpdated, ToolFinished, ToolStarted
from runtime.runs.events import EventDraft
from runtime.tools.diagnostics import tool_failure_diagnostics


class EventMapper:
    """Maps one session's engine events; remembers whether assistant text was streamed
    (the terminal sequence adds a final ``assistant.delta`` only when none was).

    ``replayed`` is the assistant text the run's log already holds for this turn: an
    earlier attempt streamed it before a crash, restart or hand-back stopped it. A
    restarted engine says it again from the start; that prefix is not logged twice (issue
    10: a run's log never holds the same text twice). Text past it is logged as usual; if
    the new attempt says something else, the rest is logged from where it differs and a
    ``plan.updated`` diagnostic says so (the log is append-only: what was sent stays).
    """

    def __init__(self, replayed: str = "") -> None:
        self.saw_text = bool(replayed.strip())
        self._replayed = replayed  # what the new attempt has yet to repeat
        self._diverged = False  # it said something else: report once, then log as usual

    def draft(self, event: Any) -> EventDraft | None:
        """Return the draft for a non-terminal engine event; None when it only repeats
        text the log already holds.

        Raises:
            TypeError: the engine yielded something that is not an engine event.
        """
        if isinstance(event, Delta):
            content = self._past_replayed(event.content)
            if not content:
                return None
            if content.strip():
                self.saw_text = True
            return EventDraft("assistant.delta", {"content": content})
        if isinstance(event, ToolStarted):
            return EventDraft(
                "tool.started", {"tool": event.tool, "span_id": event.span_id, "input": event.input}
            )
        if isinstance(event, ToolFinished):
            payload = {"tool": event.tool, "span_id": event.span_id, "output": event.output}
            diagnostics = event.diagnostics or tool_failure_diagnostics(event.output)
            if diagnostics:
                return EventDraft("tool.failed", payload, tuple(diagnostics))
            return EventDraft("tool.completed", payload)
        if isinstance(event, PlanUpdated):
            return EventDraft("plan.updated", dict(event.payload))
        raise TypeError(f"engine yielded an unknown event: {event!r}")

    def diverged(self) -> EventDraft | None:
        """The diagnostic to log once when a restarted attempt's text left the replayed
        text (None otherwise)."""
        if not self._diverged:
            return None
        self._diverged = False
        return EventDraft(
            "plan.updated",
            {"summary": "The restarted attempt's reply differs from the text streamed before"},
            ({"code": "RUN_REPLY_DIVERGED",
              "message": "Text before this event came from an interrupted attempt"},),
        )  # fmt: skip

    def _past_replayed(self, content: str) -> str:
        """``content`` without the part an earlier attempt already logged."""
        replayed = self._replayed
        if not replayed:
            return content
        if replayed.startswith(content):
            self._replayed = replayed[len(content) :]
            return ""
        if content.startswith(replayed):
            self._replayed = ""
            return content[len(replayed) :]
        same = 0
        while same < min(len(content), len(replayed)) and content[same] == replayed[same]:
            same += 1
        self._replayed = ""
        self._diverged = True
        return content[same:]

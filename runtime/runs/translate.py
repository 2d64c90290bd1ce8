"""Engine events -> run event drafts (contract 3.3 and 3.4)."""

from __future__ import annotations

from typing import Any

from runtime.engine import Delta, PlanUpdated, ToolFinished, ToolStarted
from runtime.runs.events import EventDraft
from runtime.tools.diagnostics import tool_failure_diagnostics


class EventMapper:
    """Maps one session's engine events; remembers whether assistant text was streamed
    (the terminal sequence adds a final ``assistant.delta`` only when none was)."""

    def __init__(self) -> None:
        self.saw_text = False

    def draft(self, event: Any) -> EventDraft:
        """Return the draft for a non-terminal engine event.

        Raises:
            TypeError: the engine yielded something that is not an engine event.
        """
        if isinstance(event, Delta):
            if event.content.strip():
                self.saw_text = True
            return EventDraft("assistant.delta", {"content": event.content})
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

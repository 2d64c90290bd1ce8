"""OpenCode ``/event`` frames -> engine events, and a finished session -> its result.

Pure functions and one small stateful :class:`Translator` per run; no I/O, so the recorded
payload shapes of docs/opencode.md section 5 test them directly. Rules (contract Appendix A, in our
words):

- only frames whose ``properties.sessionID`` is the run's session count;
- ``message.part.delta`` with ``field == "text"`` on an assistant text part -> :class:`Delta`;
  a finished text part whose text extends its deltas yields the missing tail;
- tool parts (``message.part.updated``, ``part.type == "tool"``): ``running`` ->
  :class:`ToolStarted`, ``completed`` -> :class:`ToolFinished`, ``error`` ->
  :class:`ToolFinished` with ``{"error": …}`` and diagnostics ``[{message, code}]``; each
  call id starts and finishes once;
- ``todo.updated`` -> :class:`PlanUpdated`;
- a ``step-finish`` part (one model step) -> :class:`UsageReported` with its token counts
  (``runtime.usage.opencode_counts``); a finished tool part whose state has ``time.start``
  and ``time.end`` -> :class:`UsageReported` with the tool's wall time;
- ``session.error`` -> :class:`SessionFailed` (``OPENCODE_SESSION_ERROR``);
- ``session.status`` ``retry`` -> :class:`Retrying`; ``session.idle`` / status ``idle`` ->
  :class:`Idle`; ``permission.asked`` / ``question.asked`` -> :class:`Asked`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from runtime.engine import (
    Completed,
    Delta,
    EngineEvent,
    Failed,
    PlanUpdated,
    ToolFinished,
    ToolStarted,
    UsageReported,
)
from runtime.usage import opencode_counts

SESSION_ERROR = "OPENCODE_SESSION_ERROR"
ASSISTANT_ERROR = "OPENCODE_ASSISTANT_ERROR"
EMPTY_RESPONSE = "OPENCODE_EMPTY_RESPONSE"
TOOL_ERROR = "OPENCODE_TOOL_ERROR"


# ---- control signals (for the session loop, never forwarded) --------------------------------


@dataclass(frozen=True, slots=True)
class Idle:
    """The session went idle: settle the result from its messages."""


@dataclass(frozen=True, slots=True)
class Retrying:
    """OpenCode is retrying the upstream model call; ``message`` says why."""

    message: str
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """The model produced something (ends a retry period)."""


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """``session.error``: the run failed with ``failed``."""

    failed: Failed


@dataclass(frozen=True, slots=True)
class Asked:
    """``permission.asked`` (``kind == "permission"``) or ``question.asked``; needs a reply."""

    kind: str
    request: dict[str, Any]


Signal = Idle | Retrying | Progress | SessionFailed | Asked
Output = EngineEvent | Signal


# ---- the translator -----------------------------------------------------------------------


@dataclass
class Translator:
    """Turns one session's frames into outputs. Feed every frame of ``/event`` in order.

    Attributes:
        session_id: the run's OpenCode session (``ses_…``).
    """

    session_id: str
    _roles: dict[str, str] = field(default_factory=dict)
    _part_types: dict[str, str] = field(default_factory=dict)
    _delivered: dict[str, str] = field(default_factory=dict)
    _tools_started: set[str] = field(default_factory=set)
    _tools_finished: set[str] = field(default_factory=set)
    _models: dict[str, str] = field(default_factory=dict)
    _steps: set[str] = field(default_factory=set)

    def feed(self, frame: dict[str, Any]) -> list[Output]:
        """Translate one frame ``{"type", "properties"}``; other sessions' frames -> []."""
        kind = frame.get("type")
        props = frame.get("properties")
        if not isinstance(kind, str) or not isinstance(props, dict):
            return []
        if props.get("sessionID") != self.session_id:
            return []
        handler = _HANDLERS.get(kind)
        return handler(self, props) if handler else []

    # -- handlers ------------------------------------------------------------------------------

    def _message_updated(self, props: dict[str, Any]) -> list[Output]:
        info = props.get("info") or {}
        if info.get("id") and info.get("role"):
            self._roles[str(info["id"])] = str(info["role"])
        if info.get("id") and isinstance(info.get("modelID"), str):
            self._models[str(info["id"])] = info["modelID"]
        return []

    def _part_delta(self, props: dict[str, Any]) -> list[Output]:
        if props.get("field") != "text" or self._roles.get(str(props.get("messageID"))) == "user":
            return []
        part_id = str(props.get("partID"))
        if self._part_types.get(part_id, "text") != "text":
            return []  # reasoning and other non-answer parts
        delta = props.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        self._delivered[part_id] = self._delivered.get(part_id, "") + delta
        return [Progress(), Delta(delta)]

    def _part_updated(self, props: dict[str, Any]) -> list[Output]:
        part = props.get("part") or {}
        part_id = str(part.get("id"))
        part_type = str(part.get("type"))
        self._part_types[part_id] = part_type
        if part_type == "tool":
            return self._tool(part)
        if part_type == "step-finish":
            return self._step_finished(part_id, part)
        if part_type != "text" or self._roles.get(str(part.get("messageID"))) != "assistant":
            return []
        text = part.get("text")
        if (
            part.get("synthetic")
            or not isinstance(text, str)
            or not (part.get("time") or {}).get("end")
        ):
            return []
        sent = self._delivered.get(part_id, "")
        if len(text) <= len(sent) or not text.startswith(sent):
            return []  # complete, or deltas were lost mid-way (the result still has it all)
        self._delivered[part_id] = text
        return [Progress(), Delta(text[len(sent) :])]

    def _step_finished(self, part_id: str, part: dict[str, Any]) -> list[Output]:
        """A model step ended: its token counts (once per part; the call id is derived
        from the session and part, so a replayed frame is recorded once)."""
        if part_id in self._steps:
            return []
        self._steps.add(part_id)
        model = self._models.get(str(part.get("messageID")), "opencode")
        prompt, completion, total = opencode_counts(part.get("tokens"))
        call_id = uuid.uuid5(uuid.NAMESPACE_URL, f"opencode:{self.session_id}:{part_id}")
        return [UsageReported("model", model, None, prompt, completion, total, call_id)]

    def _tool(self, part: dict[str, Any]) -> list[Output]:
        call_id = str(part.get("callID") or part.get("id"))
        tool = str(part.get("tool") or "tool")
        state = part.get("state") or {}
        status = state.get("status")
        out: list[Output] = []
        if status not in ("running", "completed", "error") or call_id in self._tools_finished:
            return out
        out.append(Progress())
        if call_id not in self._tools_started:
            self._tools_started.add(call_id)
            out.append(ToolStarted(tool=tool, span_id=call_id, input=state.get("input") or {}))
        if status == "completed":
            self._tools_finished.add(call_id)
            output = {"output": state.get("output", ""), "title": state.get("title", "")}
            out.append(ToolFinished(tool=tool, span_id=call_id, output=output))
            out.extend(self._tool_time(call_id, tool, state))
        elif status == "error":
            self._tools_finished.add(call_id)
            message = str(state.get("error") or "Tool failed")
            out.append(
                ToolFinished(
                    tool=tool,
                    span_id=call_id,
                    output={"error": message},
                    diagnostics=[{"message": message, "code": TOOL_ERROR}],
                )
            )
            out.extend(self._tool_time(call_id, tool, state))
        return out

    def _tool_time(self, call_id: str, tool: str, state: dict[str, Any]) -> list[Output]:
        """The tool call's wall time from its state's ``time.start`` / ``time.end`` (epoch
        milliseconds); nothing when OpenCode did not say."""
        times = state.get("time")
        if not isinstance(times, dict):
            return []
        start, end = times.get("start"), times.get("end")
        if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
            return []
        seconds = max(0.0, (float(end) - float(start)) / 1000)
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"opencode:{self.session_id}:tool:{call_id}")
        return [UsageReported("tool", tool, seconds, call_id=key)]

    def _todo(self, props: dict[str, Any]) -> list[Output]:
        return [PlanUpdated({"source": "opencode", "todos": props.get("todos") or []})]

    def _status(self, props: dict[str, Any]) -> list[Output]:
        status = props.get("status") or {}
        if status.get("type") == "retry":
            return [
                Retrying(str(status.get("message") or "retrying"), int(status.get("attempt") or 0))
            ]
        if status.get("type") == "idle":
            return [Idle()]
        return []

    def _idle(self, props: dict[str, Any]) -> list[Output]:
        return [Idle()]

    def _error(self, props: dict[str, Any]) -> list[Output]:
        return [SessionFailed(session_failure(props.get("error")))]

    def _permission(self, props: dict[str, Any]) -> list[Output]:
        return [Asked("permission", props)]

    def _question(self, props: dict[str, Any]) -> list[Output]:
        return [Asked("question", props)]


_HANDLERS = {
    "message.updated": Translator._message_updated,
    "message.part.delta": Translator._part_delta,
    "message.part.updated": Translator._part_updated,
    "todo.updated": Translator._todo,
    "session.status": Translator._status,
    "session.idle": Translator._idle,
    "session.error": Translator._error,
    "permission.asked": Translator._permission,
    "question.asked": Translator._question,
}


# ---- results -----------------------------------------------------------------------------


def error_message(error: Any) -> tuple[str, str]:
    """``(name, message)`` of an OpenCode error object ``{"name", "data": {"message"}}``."""
    if not isinstance(error, dict):
        return "UnknownError", str(error or "unknown error")
    name = str(error.get("name") or "UnknownError")
    data = error.get("data") or {}
    message = data.get("message") if isinstance(data, dict) else None
    if name == "MessageAbortedError":
        return name, "OpenCode session was aborted"
    return name, str(message or name)


def session_failure(error: Any) -> Failed:
    """A ``session.error`` as :class:`Failed`: an ``APIError`` keeps the provider's message.

    Diagnostics: ``[{"code": "OPENCODE_SESSION_ERROR", "message", "error": name,
    "status_code"?}]``.
    """
    name, message = error_message(error)
    diagnostic: dict[str, Any] = {"code": SESSION_ERROR, "message": message, "error": name}
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict) and isinstance(data.get("statusCode"), int):
        diagnostic["status_code"] = data["statusCode"]
    return Failed(message, [diagnostic])


def _text_of(message: dict[str, Any]) -> str:
    parts = message.get("parts") or []
    texts = [
        p.get("text", "")
        for p in parts
        if isinstance(p, dict) and p.get("type") == "text" and not p.get("synthetic")
    ]
    return "".join(t for t in texts if isinstance(t, str)).strip()


def settle(messages: list[dict[str, Any]], session_id: str) -> Completed | Failed:
    """The run's result from ``GET /session/{id}/message`` once the session is idle.

    Looks at the assistant messages after the last user message: the last one's error
    fails the run (``OPENCODE_ASSISTANT_ERROR``); otherwise the latest non-empty assistant
    text completes it (``output = {"last_agent_output", "opencode_session_id", "finish"}``,
    contract 3.5); no text at all fails it (``OPENCODE_EMPTY_RESPONSE``).
    """
    last_user = max(
        (i for i, m in enumerate(messages) if (m.get("info") or {}).get("role") == "user"),
        default=-1,
    )
    replies = [
        m for m in messages[last_user + 1 :] if (m.get("info") or {}).get("role") == "assistant"
    ]
    if replies and (replies[-1].get("info") or {}).get("error"):
        name, message = error_message(replies[-1]["info"]["error"])
        return Failed(message, [{"code": ASSISTANT_ERROR, "message": message, "error": name}])
    for reply in reversed(replies):
        text = _text_of(reply)
        if text:
            output = {
                "last_agent_output": text,
                "opencode_session_id": session_id,
                "finish": (replies[-1].get("info") or {}).get("finish"),
            }
            return Completed(output)
    message = "OpenCode finished without an assistant reply"
    return Failed(message, [{"code": EMPTY_RESPONSE, "message": message}])

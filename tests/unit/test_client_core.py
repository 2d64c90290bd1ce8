"""runwright.client's I/O-free core: what is retried, the stream cursor's repeat rule, the
Idempotency-Key's form, and how error answers become exceptions."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from runwright.client import Conflict, NotFound, ValidationFailed
from runwright.client._core import (
    RetryPolicy,
    StreamCursor,
    cancel_run,
    create_app,
    create_run,
    error_of,
    get_run,
    resume_run,
    sf_string,
)

APP, RUN = uuid.uuid4(), uuid.uuid4()


def _envelope(seq: int, event: str = "assistant.delta") -> str:
    return json.dumps({"event": event, "run_id": str(RUN), "app_id": str(APP), "seq": seq,
                       "ts": "2026-01-01T00:00:00+00:00", "stage": "assistant",
                       "payload": {}, "diagnostics": []})  # fmt: skip


def test_the_cursor_yields_each_seq_once_and_resumes_after_the_last():
    cursor = StreamCursor(after=2)
    assert cursor.accept(_envelope(2)) is None
    assert cursor.accept(_envelope(3)).seq == 3  # type: ignore[union-attr]
    assert cursor.accept(_envelope(3)) is None
    assert cursor.headers() == {"Last-Event-ID": "3"}
    assert not cursor.finished
    assert cursor.accept(_envelope(4, "run.completed")).terminal  # type: ignore[union-attr]
    assert cursor.finished
    assert StreamCursor().headers() == {}


def test_only_calls_safe_to_repeat_are_retried_after_they_may_have_arrived():
    read_error = httpx.ReadError("reset")
    refused = httpx.ConnectError("refused")
    for call in (get_run(APP, RUN), cancel_run(APP, RUN), create_run(APP, "x")):
        assert call.retry_error(read_error) and call.retry_status(502)
    resume = resume_run(APP, RUN, {})  # its Idempotency-Key makes a repeat harmless
    assert resume.retry_error(read_error) and resume.retry_status(502)
    one_shot = create_app("a", "a")
    assert not one_shot.retry_error(read_error) and not one_shot.retry_status(502)
    assert one_shot.retry_error(refused) and one_shot.retry_status(503)
    assert one_shot.retry_status(429)
    assert not get_run(APP, RUN).retry_status(500)


def test_resume_sends_a_key_of_its_own():
    first = resume_run(APP, RUN, {"go": 1})
    assert first.headers["Idempotency-Key"] != resume_run(APP, RUN).headers["Idempotency-Key"]
    assert resume_run(APP, RUN, idempotency_key="r1").headers["Idempotency-Key"] == '"r1"'


def test_create_sends_one_structured_field_key():
    first = create_run(APP, "x")
    assert first.headers["Idempotency-Key"] != create_run(APP, "x").headers["Idempotency-Key"]
    assert create_run(APP, "x", idempotency_key="k1").headers["Idempotency-Key"] == '"k1"'
    assert create_run(APP, "x", webhook="https://h.example/w").json_body == {
        "input": "x", "webhook": "https://h.example/w"
    }  # fmt: skip
    assert sf_string('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        sf_string("é")


def test_retry_after_is_honoured_and_capped():
    policy = RetryPolicy(backoff=0.1, max_backoff=1.0, max_retry_after=5.0)
    answer = httpx.Response(503, headers={"Retry-After": "2"})
    assert policy.delay(1, answer) == 2.0
    assert policy.delay(1, httpx.Response(429, headers={"Retry-After": "99"})) == 5.0
    assert 0 <= policy.delay(10) <= 1.0


def test_error_answers_keep_the_detail():
    request = httpx.Request("GET", "http://x/")
    missing = error_of(httpx.Response(404, json={"detail": "Coding-agent run not found"},
                                      request=request), "GET", "/p")  # fmt: skip
    assert isinstance(missing, NotFound) and missing.detail == "Coding-agent run not found"
    conflict = error_of(httpx.Response(409, json={"detail": {"code": "REVISION_CONFLICT",
                        "message": "stale"}}, request=request), "POST", "/p")  # fmt: skip
    assert isinstance(conflict, Conflict) and conflict.code == "REVISION_CONFLICT"
    assert "REVISION_CONFLICT: stale" in str(conflict)
    items = [{"type": "missing", "loc": ["body", "input"], "msg": "Field required"}]
    invalid = error_of(httpx.Response(422, json={"detail": items}, request=request), "POST", "/p")
    assert isinstance(invalid, ValidationFailed) and "body.input: Field required" in str(invalid)
    text = error_of(httpx.Response(502, text="<html>bad gateway</html>", request=request),
                    "GET", "/p")  # fmt: skip
    assert text.detail == "<html>bad gateway</html>"  # type: ignore[attr-defined]

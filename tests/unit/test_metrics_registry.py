"""The metrics module on its own: one registry per instance, model-call outcomes recorded
once, tokens counted only when reported and positive, the database view rendered or left
out."""

from __future__ import annotations

import uuid

from prometheus_client import generate_latest

from runtime.metrics import Metrics
from runtime.model_client import StreamEnd, TextDelta
from tests.support.metrics import parse, value


def _samples(metrics: Metrics):
    return parse(generate_latest(metrics.registry).decode())


def test_each_instance_has_its_own_registry():
    first, second = Metrics(), Metrics()
    first.tokens(5, None)
    assert value(_samples(first), "runwright_model_tokens_total", {"kind": "prompt"}) == 5
    assert value(_samples(second), "runwright_model_tokens_total", {"kind": "prompt"}) == 0


def test_a_model_call_is_recorded_once_with_its_outcome():
    metrics = Metrics()
    ok = metrics.model_call()
    ok.item(TextDelta("a"))
    ok.item(TextDelta("b"))
    ok.item(StreamEnd("stop", {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}))
    ok.ok()
    ok.close()
    failed = metrics.model_call()
    failed.failed("timeout")
    failed.close()
    cancelled = metrics.model_call()
    cancelled.item(TextDelta("a"))
    cancelled.close()  # neither ok() nor failed(): the stream was abandoned

    samples = _samples(metrics)
    for outcome in ("ok", "error", "cancelled"):
        count = value(samples, "runwright_model_request_seconds_count", {"outcome": outcome})
        assert count == 1, outcome
    assert value(samples, "runwright_model_first_token_seconds_count") == 2
    assert value(samples, "runwright_model_errors_total", {"kind": "timeout"}) == 1
    # Tokens are the run actor's to count (with the run's usage), not the request timer's.
    assert value(samples, "runwright_model_tokens_total", {"kind": "prompt"}) == 0


def test_tokens_not_reported_or_zero_count_nothing():
    metrics = Metrics()
    metrics.tokens(None, 0)
    metrics.tokens(None, None)
    metrics.tokens(3, 4)
    samples = _samples(metrics)
    assert value(samples, "runwright_model_tokens_total", {"kind": "prompt"}) == 3
    assert value(samples, "runwright_model_tokens_total", {"kind": "completion"}) == 4


def test_the_database_view_is_rendered_or_left_out():
    metrics = Metrics()
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    metrics.set_database_view(
        [
            ("queued", "native", tenant_a, 2),
            ("queued", "scripted", tenant_a, 1),
            ("running", "native", tenant_b, 4),
        ]
    )
    samples = _samples(metrics)
    assert value(samples, "runwright_database_up") == 1
    assert value(samples, "runwright_runs", {"status": "queued", "engine": "native"}) == 2
    assert value(samples, "runwright_runs", {"status": "running", "engine": "native"}) == 4
    assert value(samples, "runwright_queue_depth", {"tenant_id": str(tenant_a)}) == 3
    assert ("runwright_queue_depth", frozenset({("tenant_id", str(tenant_b))})) not in samples

    metrics.set_database_view(None)  # the read failed: no stale numbers
    samples = _samples(metrics)
    assert value(samples, "runwright_database_up") == 0
    assert not [name for name, _ in samples if name in ("runwright_runs", "runwright_queue_depth")]

"""Scrape ``GET /metrics`` in tests and read values with the Prometheus text parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-token-for-tests-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_headers(token: str = METRICS_TOKEN) -> dict[str, str]:
    """The scraper's ``Authorization`` header."""
    return {"Authorization": f"Bearer {token}"}


async def scrape(client: Any, token: str = METRICS_TOKEN) -> Samples:
    """``GET /metrics`` (must answer 200) parsed into ``{(sample name, labels): value}``."""
    response = await client.get("/metrics", headers=metrics_headers(token))
    assert response.status_code == 200, await response.get_data(as_text=True)
    return parse(await response.get_data(as_text=True))


async def scrape_until(
    client: Any, settled: Callable[[Samples], bool], *, within: float = 60.0
) -> Samples:
    """Scrape until ``settled(samples)`` holds (for gauges that follow an event a client
    sees first, e.g. an actor retiring after its terminal event); the last scrape is
    returned, so the caller's asserts show the values when it never settled."""
    deadline = asyncio.get_running_loop().time() + within
    samples = await scrape(client)
    while not settled(samples) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        samples = await scrape(client)
    return samples


def parse(text: str) -> Samples:
    """Prometheus text exposition -> ``{(sample name, labels): value}``."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, labels: dict[str, str] | None = None) -> float:
    """The sample's value, 0.0 when the series is absent (a counter never incremented or a
    label set never seen)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)

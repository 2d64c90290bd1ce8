"""What a run's error tells a tenant about the endpoint it named (issue 9 items 3 and 6).

Here the operator allows loopback (as if it were an in-house network), so connections are
really made: a refused destination, a closed port and a live non-HTTP service read the
same (the error is no port scanner), and an HTTP error body reaches the run only as a
short, escaped excerpt.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.listener import canned_server, http_response
from tests.support.runs import create_run, read_stream, wait_status

UNREACHABLE = (
    "could not be reached (connection failed, or not allowed by the server's egress policy)"
)


@pytest.fixture
def settings(make_settings):
    return make_settings(egress_allowed_networks=("127.0.0.0/8",))


async def _failed_run(client, db, owner, base_url: str) -> tuple[dict[str, Any], str]:
    model, _ = await models_store.create_model(
        db, tenant_id=owner.tenant_id, name=f"probe-{uuid.uuid4().hex[:6]}",
        bindings=[BindingSpec("openai", "m", base_url)],
    )  # fmt: skip
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="hi", model_id=str(model.id))
    done = await wait_status(client, app["id"], run["run_id"], owner.headers,
                             {"completed", "failed"}, within=60)  # fmt: skip
    assert done["status"] == "failed"
    text, _ = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    return done, text


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def test_refused_closed_and_non_http_endpoints_read_the_same(client, db, owner):
    async with canned_server(b"SSH-2.0-OpenSSH_9.6 secret-banner\r\n") as ssh:
        probes = [
            "http://169.254.169.254/latest/meta-data",  # metadata: refused even when allowed
            _closed_port_url(),
            ssh.url(),  # something listens, and it is not HTTP
        ]
        errors = []
        for base_url in probes:
            run, stream = await _failed_run(client, db, owner, base_url)
            assert "secret-banner" not in run["error"] + stream
            errors.append(run["error"].replace(base_url, "<url>"))
        assert ssh.accepted >= 1  # it was really reached
    assert errors == [f"model endpoint <url> {UNREACHABLE}"] * 3


async def test_an_error_body_reaches_the_run_as_a_short_escaped_excerpt(client, db, owner):
    body = (
        b"<html><title>\x1b[2J\x1b[31mpwned\xe2\x80\xae</title>"  # ANSI escapes, bidi override
        + b"<p>internal detail</p>" * 500
        + b"</html>"
    )
    async with canned_server(http_response(502, body)) as upstream:
        run, stream = await _failed_run(client, db, owner, upstream.url())
    error = run["error"]
    assert error.startswith(f'model endpoint {upstream.url()} answered HTTP 502: "')
    excerpt = error.split(": ", 1)[1]
    assert len(excerpt) <= 2 + 160 * 6  # quoted, at most 160 characters, each escaped at most
    assert "\x1b" not in error and "\u202e" not in error
    assert "\\u001b[2J" in error and "\\u202e" in error
    assert error.count("internal detail") < 10

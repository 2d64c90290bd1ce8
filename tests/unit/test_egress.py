"""runtime.egress (the policy for tenant-chosen destinations) and runtime.secret_box."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

import httpx2
import pytest

from runtime.egress import EgressPolicy, EgressRefused, EgressTransport
from runtime.secret_box import SecretBox, SecretBoxError, load_secret_box, new_key_text
from runtime.settings import SettingsError, load_settings
from tests.support.listener import canned_server, http_response

DEFAULT = EgressPolicy()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "10.1.2.3", "172.31.0.1",
        "192.168.0.1", "100.64.0.1", "100.127.255.254", "169.254.169.254", "169.254.1.1",
        "fe80::1", "fc00::1", "fd00:ec2::254", "224.0.0.1", "239.1.2.3", "ff02::1",
        "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "192.0.0.192",
        "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1",
        "::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b:1::a00:1", "fec0::1", "3fff::1",
        "5f00::1", "192.0.0.100",
    ],
)  # fmt: skip
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    assert DEFAULT.address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.address_problem(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_a_range_but_never_metadata() -> None:
    policy = EgressPolicy.from_strings(["*"], ["127.0.0.0/8", "169.254.0.0/16"])
    assert policy.address_problem(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.address_problem(ipaddress.ip_address("169.254.1.1")) is None
    assert policy.address_problem(ipaddress.ip_address("169.254.169.254")) is not None
    assert policy.address_problem(ipaddress.ip_address("10.0.0.1")) is not None


def test_host_patterns() -> None:
    policy = EgressPolicy(("api.openai.com", "*.example.com"))
    assert policy.host_allowed("api.openai.com") and policy.host_allowed("API.OpenAI.com.")
    assert policy.host_allowed("a.b.example.com")
    assert not policy.host_allowed("example.com")  # the apex is not below itself
    assert not policy.host_allowed("evilexample.com")
    assert not policy.host_allowed("api.openai.com.evil.net")
    with pytest.raises(EgressRefused) as info:
        policy.check_url("https://elsewhere.net/v1")
    assert str(info.value) == "not allowed by the server's egress policy"
    assert "not in the egress allow-list" in info.value.reason


async def test_the_transport_connects_to_the_checked_address_with_the_original_host() -> None:
    policy = EgressPolicy.from_strings(["*"], ["127.0.0.0/8"])
    async with canned_server(http_response(200, b"ok", "text/plain")) as server:
        async with httpx2.AsyncClient(transport=EgressTransport(policy)) as client:
            response = await client.get(f"http://localhost:{server.port}/probe")
        assert response.status_code == 200 and response.text == "ok"
        assert str(response.request.url) == f"http://localhost:{server.port}/probe"
    head = server.requests[0].decode().lower()
    assert f"host: localhost:{server.port}" in head


async def test_the_transport_refuses_before_connecting() -> None:
    async with canned_server(http_response(200, b"ok")) as server:
        async with httpx2.AsyncClient(transport=EgressTransport(DEFAULT)) as client:
            for url in (f"http://localhost:{server.port}/", f"http://127.0.0.1:{server.port}/"):
                with pytest.raises(EgressRefused):
                    await client.get(url)
        assert server.accepted == 0


async def test_a_redirect_inside_is_refused_too() -> None:
    """An allowed endpoint that redirects to the metadata address: the redirect hop is
    checked like the first request (and the metadata address is never allowed)."""
    policy = EgressPolicy.from_strings(["*"], ["127.0.0.1/32", "169.254.0.0/16"])
    redirect = (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/latest/\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    async with canned_server(redirect) as outside:
        transport = EgressTransport(policy)
        async with httpx2.AsyncClient(transport=transport, follow_redirects=True) as client:
            with pytest.raises(EgressRefused) as info:
                await client.get(f"http://127.0.0.1:{outside.port}/")
    assert outside.accepted == 1
    assert "metadata" in info.value.reason


def test_settings_validate_lists() -> None:
    settings = load_settings(
        egress_allowed_networks="10.1.0.0/16, 127.0.0.1",
        model_key_env_allowlist="OPENAI_API_KEY,OTHER_KEY",
    )
    assert settings.egress_allowed_networks == ("10.1.0.0/16", "127.0.0.1")
    assert settings.key_env_allowed("OTHER_KEY") and not settings.key_env_allowed("PATH")
    for bad in ({"egress_allowed_networks": "not-a-net"}, {"model_key_env_allowlist": "A-B"},
                {"secrets_key": "too-short"}):  # fmt: skip
        with pytest.raises(SettingsError):
            load_settings(**bad)


def test_secret_box_binds_the_context_and_the_key() -> None:
    box = SecretBox(os.urandom(32))
    sealed = box.seal("sk-abc", context=b"model-1")
    assert b"sk-abc" not in sealed and box.seal("sk-abc", context=b"model-1") != sealed
    assert box.open(sealed, context=b"model-1") == "sk-abc"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context=b"model-2")
    with pytest.raises(SecretBoxError):
        SecretBox(os.urandom(32)).open(sealed, context=b"model-1")
    assert "sk-abc" not in repr(box)


def test_secret_box_key_file_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_secret_box(None, tmp_path / "data")
    path = tmp_path / "data" / "secrets_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_secret_box(None, tmp_path / "data")
    assert second.open(first.seal("x", context=b"c"), context=b"c") == "x"
    assert [p.name for p in path.parent.iterdir()] == ["secrets_key"]  # no staging leftovers
    configured = new_key_text()
    assert load_secret_box(configured, tmp_path / "elsewhere") is not None
    assert not (tmp_path / "elsewhere").exists()

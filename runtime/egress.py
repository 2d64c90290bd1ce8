"""The egress policy for destinations a tenant chooses (model ``base_url``, later webhooks).

docs/design.md section 7 and issue 9 item 3: the operator is trusted, tenants are not. A URL a
tenant supplies may only reach hosts the operator's allow-list names, and by default never
an address inside the operator's own network: loopback, private (RFC 1918, IPv6 ULA),
link-local, CGNAT (100.64/10), multicast, unspecified, reserved and documentation ranges,
and the cloud metadata endpoints. Addresses embedded in IPv6 (IPv4-mapped, 6to4, NAT64,
Teredo) are checked as the IPv4 address they carry.

The check is made where the connection is made: :class:`EgressTransport` resolves the host,
refuses unless *every* address passes, then connects to a checked address itself (the host
name goes along as TLS SNI and the ``Host`` header), so a DNS answer that changes between
the check and the connect (rebinding) cannot steer the request. Redirects go through the
transport again. Registration uses :meth:`EgressPolicy.check_url` for an early 4xx.

A refusal is :class:`EgressRefused`. Its ``str`` is the same short sentence for every
cause (not allowed, does not resolve, resolves to a private address), so what a tenant reads
is no oracle for which internal names exist; ``reason`` holds the precise cause for the
operator's log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx2

__all__ = [
    "METADATA_ADDRESSES",
    "REFUSED_MESSAGE",
    "EgressPolicy",
    "EgressRefused",
    "EgressTransport",
    "IPAddress",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED_MESSAGE = "not allowed by the server's egress policy"
"""What a tenant reads for any refusal (the cause goes to the log only)."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean instance metadata
        "169.254.169.253",  # AWS VPC DNS resolver
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::253",  # AWS VPC DNS resolver over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "192.0.0.192",  # Oracle Cloud metadata (a 192.0.0.0/24 address Python calls global)
    )
)
"""Cloud metadata and resolver endpoints: refused for tenants even when an allowed network
covers them (they hand out the host's own credentials)."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Global unicast IPv6 is 2000::/3 (RFC 4291 2.4; the IANA IPv6 address space registry): the
# rest is reserved or special (IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, site-local
# fec0::/10, SRv6 5f00::/16), and Python 3.11's ``is_global`` calls much of it global.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
# Ranges IANA's special-purpose registries mark not globally reachable that Python 3.11's
# ``is_global`` misses: the local-use NAT64 prefix (RFC 8215: it reaches whatever IPv4
# address a local translator maps it to), IPv6 documentation (RFC 9637) and the IETF
# protocol assignments 192.0.0.0/24 (RFC 6890).
_NOT_GLOBAL: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "3fff::/20", "192.0.0.0/24")
)
_SCHEMES = frozenset({"http", "https"})
_MAX_ADDRESSES = 16  # connection attempts per request, over the resolved addresses


class EgressRefused(httpx2.TransportError):
    """A destination the egress policy refuses.

    ``str(exc)`` is :data:`REFUSED_MESSAGE` (safe for tenants); ``reason`` names the cause
    for the operator's log (e.g. ``"10.0.0.5 is a private address"``).
    """

    def __init__(self, reason: str, *, request: httpx2.Request | None = None) -> None:
        super().__init__(REFUSED_MESSAGE, request=request)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which destinations tenant-chosen URLs may reach.

    Args:
        allowed_hosts: Host patterns, case-insensitive: ``*`` (any host), an exact name or
            IP literal (``api.openai.com``, ``203.0.113.9``), or ``*.example.com`` (any name
            below ``example.com``, not the apex). A host outside every pattern is refused.
        allowed_networks: CIDRs (``127.0.0.0/8``, ``10.1.2.0/24``) whose addresses are
            allowed although they fall in a refused range (an in-house model gateway, a
            test server on loopback). :data:`METADATA_ADDRESSES` stay refused regardless.
        resolve_timeout: Seconds allowed for one DNS resolution.

    Source: issue 9 item 3; the ranges are IANA's special-purpose registries (RFC 6890)
    as Python's ``ipaddress.is_global`` encodes them, plus multicast and the metadata set.
    """

    allowed_hosts: tuple[str, ...] = ("*",)
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve_timeout: float = 5.0
    _patterns: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_patterns", tuple(p.strip().lower().rstrip(".") for p in self.allowed_hosts)
        )

    @classmethod
    def from_strings(
        cls, hosts: Iterable[str], networks: Iterable[str], *, resolve_timeout: float = 5.0
    ) -> EgressPolicy:
        """Build from setting strings.

        Raises:
            ValueError: a network is not a valid CIDR.
        """
        nets = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)
        return cls(tuple(hosts), nets, resolve_timeout)

    # --- pure checks -------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (an ASCII name or IP literal) matches the allow-list."""
        host = host.lower().rstrip(".")
        for pattern in self._patterns:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    def address_problem(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when a tenant may connect to it."""
        if address in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if any(address in net for net in self.allowed_networks):
            return None
        for candidate in _with_embedded(address):
            if candidate in METADATA_ADDRESSES:
                return f"{address} embeds the cloud metadata address {candidate}"
            if candidate.is_multicast:
                return f"{address} is a multicast address"
            if not _is_global(candidate):
                return f"{address} is a {_range_name(candidate)} address"
        return None

    def check_url(self, url: str | httpx2.URL) -> httpx2.URL:
        """The static part of the check: scheme, no credentials, an allowed host, and (for
        an IP literal) an allowed address. Names are resolved by :meth:`resolve`.

        Returns:
            The parsed URL.

        Raises:
            EgressRefused: the URL is malformed or refused.
        """
        try:
            parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError) as exc:
            raise EgressRefused(f"malformed URL: {exc}") from None
        if parsed.scheme not in _SCHEMES:
            raise EgressRefused(f"scheme {parsed.scheme!r} is not http or https")
        if parsed.userinfo:
            raise EgressRefused("the URL carries credentials")
        host = _ascii_host(parsed)
        if not host:
            raise EgressRefused("the URL has no host")
        if not self.host_allowed(host):
            raise EgressRefused(f"host {host} is not in the egress allow-list")
        literal = _literal(host)
        if literal is not None:
            problem = self.address_problem(literal)
            if problem:
                raise EgressRefused(problem)
        return parsed

    # --- resolution --------------------------------------------------------------------

    async def resolve(self, url: str | httpx2.URL) -> list[IPAddress]:
        """Check ``url`` and resolve its host; every address must pass.

        Returns:
            The checked addresses in resolver order (at least one).

        Raises:
            EgressRefused: the URL is refused, the name does not resolve (in time), or any
                address it resolves to is refused.
        """
        parsed = self.check_url(url)
        host = _ascii_host(parsed)
        literal = _literal(host)
        if literal is not None:
            return [literal]
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.resolve_timeout
            )
        except (OSError, UnicodeError, TimeoutError) as exc:
            raise EgressRefused(f"host {host} does not resolve: {exc or 'timeout'}") from None
        addresses: list[IPAddress] = []
        for family, _type, _proto, _name, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            problem = self.address_problem(address)
            if problem:
                raise EgressRefused(f"host {host} resolves to {address}: {problem}")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise EgressRefused(f"host {host} has no IP address")
        return addresses


class EgressTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport that only connects to addresses the policy checked.

    Each request's host is resolved and checked (:meth:`EgressPolicy.resolve`); the request
    is then sent to the first checked address (the next on a connect error) with the
    original host as ``Host`` header and TLS server name, so certificates are verified
    against the name and DNS cannot rebind between check and connect. Environment proxies
    are never used (a proxy would hide the real destination from the check).

    Hand it to the OpenAI SDK as ``http_client=openai.DefaultAsyncHttpxClient(
    transport=EgressTransport(policy))``.

    Args:
        policy: The egress policy.
        inner: The transport that does the I/O (default: a plain ``AsyncHTTPTransport``
            with ``trust_env=False``).
    """

    def __init__(
        self, policy: EgressPolicy, inner: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner or httpx2.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request`` to a checked address.

        Raises:
            EgressRefused: the destination is refused (nothing was sent).
            httpx2.ConnectError: no checked address accepted the connection.
        """
        try:
            addresses = await self.policy.resolve(request.url)
        except EgressRefused as exc:
            raise EgressRefused(exc.reason, request=request) from None
        host = _ascii_host(request.url)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
        failure: httpx2.ConnectError | None = None
        for address in addresses[:_MAX_ADDRESSES]:
            pinned = httpx2.Request(
                request.method,
                request.url.copy_with(host=str(address)),
                headers=request.headers,  # keeps Host: <name>
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx2.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        """Close the inner transport's connection pool."""
        await self._inner.aclose()


def _ascii_host(url: httpx2.URL) -> str:
    """The host as sent on the wire (IDNA-encoded), without IPv6 brackets."""
    return url.raw_host.decode("ascii").strip("[]").lower()


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _with_embedded(address: IPAddress) -> Sequence[IPAddress]:
    """``address`` and any IPv4 address it carries (mapped, 6to4, NAT64, Teredo client)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.append(address.teredo[1])
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_global(address: IPAddress) -> bool:
    """Whether ``address`` is globally reachable: Python's ``is_global``, narrowed to
    global unicast for IPv6 (and the well-known NAT64 prefix, which DNS64 answers on an
    IPv6-only host use; its IPv4 address is checked too) and without :data:`_NOT_GLOBAL`."""
    if isinstance(address, ipaddress.IPv6Address) and not (
        address in _GLOBAL_UNICAST_V6 or address in _NAT64
    ):
        return False
    return address.is_global and not any(address in net for net in _NOT_GLOBAL)


def _range_name(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared (CGNAT)"
    if address.is_private:
        return "private"
    if address.is_reserved or getattr(address, "is_site_local", False):
        return "reserved"
    return "non-global"


_CGNAT = ipaddress.ip_network("100.64.0.0/10")

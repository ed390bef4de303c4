"""SSRF guard: agent-configured URLs may only reach public addresses.

An agent's `base_url` is user input, and the runtime sits inside a private
network next to the platform API, the database and a cloud metadata service.
Two checks keep it out of there:

1. `vet_url` before any request: the URL must be http(s) (ws(s) for sockets),
   carry no credentials, and every address its host resolves to must be public.
   This gives the user a clear sentence before anything is sent.
2. `GuardedBackend`, the network backend under every provider HTTP connection,
   resolves the host again at connect time, checks every address and connects
   to the checked address itself. A DNS answer that changes between the two
   checks (rebinding) therefore cannot reach a private address.

The operator may allow loopback and private ranges (a local Ollama or vLLM)
with OPENDOT_ALLOW_PRIVATE_BASE_URLS; cloud metadata, multicast and unspecified
addresses stay refused regardless, since no model server lives there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from runtime.pipeline.errors import ConfigRefused, ProviderUnavailable

# (host, port) -> resolved IP address strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack instance metadata
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
# IPv6 forms Python's `is_global` calls public although they carry an IPv4
# address in their low 32 bits or are not public at all: IPv4-compatible
# (::a.b.c.d, deprecated, still routed to IPv4 by some stacks), IPv4-translated
# (::ffff:0:a.b.c.d, SIIT), and site-local (fec0::/10, deprecated "private").
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
# Local-use NAT64 (RFC 8215): the operator's own translator, prefix length
# unknown, so where the IPv4 address sits cannot be told; never public.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")

ALLOW_HINT = "an operator can allow it with OPENDOT_ALLOW_PRIVATE_BASE_URLS=true"


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(ip: IpAddress) -> ipaddress.IPv4Address | None:
    """IPv4 hidden inside an IPv6 address (mapped, NAT64, 6to4)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _V4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_COMPATIBLE and int(ip) > 1:  # not :: (unspecified) nor ::1 (loopback)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def classify(address: str) -> str | None:
    """Why `address` is not public ("loopback", "private", ...), or None when it is."""
    ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    inner = _embedded_v4(ip)
    if inner is not None:
        return classify(str(inner))
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private or ip in _SITE_LOCAL:
        return "private-network"
    if ip in _LOCAL_NAT64:
        return "reserved"
    if not ip.is_global:
        return "reserved"
    return None


# Never reachable, even when the operator allows private addresses.
_ALWAYS_REFUSED = frozenset({"cloud metadata", "unspecified", "multicast"})


def refusal(address: str, *, allow_private: bool) -> str | None:
    kind = classify(address)
    if kind is None or (allow_private and kind not in _ALWAYS_REFUSED):
        return None
    return kind


def _same(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False


def _sentence(what: str, host: str, address: str, kind: str) -> str:
    resolved = "is" if _same(host, address) else f"resolves to {address},"
    if kind in _ALWAYS_REFUSED:
        return (
            f"{what} host {host} {resolved} a {kind} address, "
            "which is never reachable from agent configuration."
        )
    return (
        f"{what} host {host} {resolved} a {kind} address; the runtime only calls "
        f"public addresses ({ALLOW_HINT})."
    )


def check_addresses(
    addresses: Iterable[str], *, host: str, allow_private: bool, provider: str, what: str
) -> list[str]:
    """Every address must pass; one private answer refuses the host."""
    checked = list(addresses)
    if not checked:
        raise ConfigRefused(provider, f"{what} host {host} did not resolve to any address.")
    for address in checked:
        kind = refusal(address, allow_private=allow_private)
        if kind is not None:
            raise ConfigRefused(provider, _sentence(what, host, address, kind))
    return checked


def precheck_url(
    url: str,
    *,
    allow_private: bool,
    provider: str,
    what: str = "base_url",
    schemes: tuple[str, ...] = ("http", "https"),
) -> str:
    """The checks that need no DNS (scheme, credentials, literal addresses); the host."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigRefused(provider, f"{what} is not a valid URL ({exc}).") from None
    if parts.scheme.lower() not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ConfigRefused(provider, f"{what} must start with {allowed}.")
    if parts.username is not None or parts.password is not None:
        raise ConfigRefused(
            provider, f"{what} may not carry credentials; store the key as a secret instead."
        )
    host = parts.hostname
    if not host:
        raise ConfigRefused(provider, f"{what} has no host name.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        try:
            # getaddrinfo encodes the name with IDNA and raises UnicodeError (not
            # OSError) on an empty or over-long label or an invalid character.
            host.encode("idna")
        except UnicodeError:
            raise ConfigRefused(
                provider, f"{what} host {host!r} is not a valid host name."
            ) from None
        return host
    check_addresses(
        [str(literal)], host=host, allow_private=allow_private, provider=provider, what=what
    )
    return host


async def vet_url(
    url: str,
    *,
    allow_private: bool,
    provider: str,
    what: str = "base_url",
    schemes: tuple[str, ...] = ("http", "https"),
    resolver: Resolver | None = None,
) -> list[str]:
    """Refuse a URL that is not http(s) or whose host is not public; return its addresses."""
    host = precheck_url(
        url, allow_private=allow_private, provider=provider, what=what, schemes=schemes
    )
    parts = urlsplit(url.strip())
    port = parts.port or (443 if parts.scheme.lower() in ("https", "wss") else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await (resolver or system_resolver)(host, port)
        except UnicodeError:
            raise ConfigRefused(
                provider, f"{what} host {host!r} is not a valid host name."
            ) from None
        except OSError as exc:
            # Usually a transient DNS failure: worth a retry or the next provider.
            raise ProviderUnavailable(
                provider, f"{what} host {host} does not resolve ({exc})."
            ) from None
    return check_addresses(
        addresses, host=host, allow_private=allow_private, provider=provider, what=what
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and pins every outgoing TCP connection."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._resolver = resolver or system_resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self._resolver(host, port)
            except UnicodeError:
                raise httpcore.ConnectError(f"{host!r} is not a valid host name") from None
        checked = check_addresses(
            addresses,
            host=host,
            allow_private=self.allow_private,
            provider="netguard",
            what="connection",
        )
        last: Exception | None = None
        for address in checked:
            try:
                # Connect to the address we checked, not the name: TLS still
                # verifies the certificate against the URL's host (SNI).
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from provider calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connection pool built on `GuardedBackend`.

    Environment proxies are ignored on purpose: a proxy would make the guard
    check the proxy's address instead of the provider's.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=40)
        super().__init__(limits=limits)
        self.backend = GuardedBackend(allow_private=allow_private, resolver=resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )

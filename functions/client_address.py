"""The client address: the one definition every limit and record uses.

Where the API runs decides where the address comes from:

- On AWS Lambda behind API Gateway, Mangum puts the gateway's `sourceIp` in
  the ASGI scope's `client`: the address of the TCP connection that reached
  AWS, which the caller cannot choose. That is the answer; an
  `X-Forwarded-For` the caller sent is *not* trusted.
- Behind a proxy or load balancer of your own (nginx, an ALB, a CDN), the
  connection comes from the proxy. List the proxies' addresses or networks in
  `OPENDOT_TRUSTED_PROXIES`; then the answer is the right-most address of
  `X-Forwarded-For` (with the peer appended) that is not a trusted proxy, which
  is the last hop a proxy you trust actually saw. Entries further left were
  written by the caller and are ignored, so nobody can dodge a limit, or aim
  one at somebody else, by sending the header themselves.

With no trusted proxies (the default) the header is never read. uvicorn's own
proxy-header rewriting is off in `opendot api` so this module alone decides.

Limits key IPv6 callers by their /64 network (`limit_key`): one subscriber
usually holds a whole /64, so keying by the full address would give an
attacker 2^64 fresh budgets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32` -> networks; ValueError names a bad one."""
    networks: list[IPNetwork] = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"'{text}' is not an IP address or network") from exc
    return tuple(networks)


def _parse(text: str) -> IPAddress | None:
    value = text.strip().strip('"')
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def resolve(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[IPNetwork]) -> str:
    """The client address from the connection's peer and its X-Forwarded-For values."""
    current = _parse(peer or "")
    if current is None:
        return UNKNOWN
    if not proxies or not _trusted(current, proxies):
        return str(current)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # A hop we cannot read: the proxy we trust saw `current` send it.
            break
        current = address
        if not _trusted(current, proxies):
            break
    return str(current)


def client_address(connection: HTTPConnection, proxies: Sequence[IPNetwork]) -> str:
    """The address of whoever made this request (see the module docstring)."""
    peer = connection.client.host if connection.client else None
    return resolve(peer, connection.headers.getlist("x-forwarded-for"), proxies)


def limit_key(address: str) -> str:
    """What per-address limits count by: the IPv4 address, or the IPv6 /64."""
    parsed = _parse(address)
    if parsed is None:
        return UNKNOWN
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64)))
    return str(parsed)

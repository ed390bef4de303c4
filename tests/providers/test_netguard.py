"""SSRF guard: private, loopback, link-local and metadata addresses are refused before
any connection, and again at connect time so DNS rebinding cannot get through."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import pytest

from runtime.pipeline.errors import ConfigRefused
from runtime.providers.netguard import GuardedBackend, GuardedTransport, classify, vet_url


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private-network"),
        ("172.16.5.4", "private-network"),
        ("192.168.1.1", "private-network"),
        ("fd12:3456::1", "private-network"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private-network"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:a00:1::", "private-network"),
        ("198.51.100.7", "private-network"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        # IPv6 forms that Python's is_global calls public.
        ("::127.0.0.1", "loopback"),
        ("::a9fe:a9fe", "cloud metadata"),
        ("::ffff:0:a00:1", "private-network"),
        ("::ffff:0:7f00:1", "loopback"),
        ("fec0::1", "private-network"),
        ("64:ff9b:1::a00:1", "reserved"),
        ("::8.8.8.8", None),
    ],
)
def test_classify(address: str, kind: str | None) -> None:
    assert classify(address) == kind


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:11434/v1", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://10.0.0.1/v1", "10.0.0.1 is a private-network address"),
        ("http://[::1]:8000/v1", "::1 is a loopback address"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://0.0.0.0:8788/api", "unspecified"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("gopher://example.com/", "must start with http:// or https://"),
        ("https://user:pw@api.example.com/v1", "may not carry credentials"),
        ("https:///v1", "has no host"),
        # IDNA refuses these inside getaddrinfo with UnicodeError, not OSError.
        ("http://" + "a" * 64 + ".example.com/v1", "is not a valid host name"),
        ("http://a..b/v1", "is not a valid host name"),
        ("http://.../v1", "is not a valid host name"),
        ("http://\udcff.example/v1", "is not a valid host name"),
    ],
)
async def test_vet_url_refuses(url: str, expected: str) -> None:
    with pytest.raises(ConfigRefused) as info:
        await vet_url(url, allow_private=False, provider="llm")
    assert expected in str(info.value)


async def test_hostname_resolving_to_loopback_is_refused() -> None:
    # `localhost` goes through the real resolver.
    with pytest.raises(ConfigRefused, match=r"localhost resolves to .*loopback"):
        await vet_url("http://localhost:8788/api", allow_private=False, provider="llm")


async def test_one_private_answer_refuses_the_host() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(ConfigRefused, match=r"10\.1\.2\.3"):
        await vet_url("https://mixed.example", allow_private=False, provider="p", resolver=resolver)


async def test_operator_can_allow_private_but_never_metadata() -> None:
    assert await vet_url("http://127.0.0.1:1/v1", allow_private=True, provider="p") == ["127.0.0.1"]
    assert await vet_url("http://10.0.0.1/v1", allow_private=True, provider="p") == ["10.0.0.1"]
    with pytest.raises(ConfigRefused, match="never reachable"):
        await vet_url("http://169.254.169.254/", allow_private=True, provider="p")


async def test_message_names_the_operator_setting() -> None:
    with pytest.raises(ConfigRefused, match="OPENDOT_ALLOW_PRIVATE_BASE_URLS"):
        await vet_url("http://192.168.0.10/", allow_private=False, provider="p")


class _NoConnect(httpcore.AsyncNetworkBackend):
    """Fails the test if the guard ever lets a connection through."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append(host)
        raise AssertionError(f"connection to {host} should have been refused")


async def test_rebinding_is_caught_at_connect_time() -> None:
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    # First look (vet_url) sees a public address ...
    assert await vet_url(
        "http://rebind.example/", allow_private=False, provider="p", resolver=rebinding
    ) == ["93.184.216.34"]
    # ... the connection's own look sees the metadata address and never connects.
    inner = _NoConnect()
    backend = GuardedBackend(allow_private=False, resolver=rebinding, inner=inner)
    with pytest.raises(ConfigRefused, match="cloud metadata"):
        await backend.connect_tcp("rebind.example", 80)
    assert inner.attempts == []


async def test_backend_refuses_an_unencodable_host_name_as_a_connect_error() -> None:
    # Reached only if a URL skipped vet_url; httpx maps ConnectError, not UnicodeError.
    inner = _NoConnect()
    backend = GuardedBackend(allow_private=False, inner=inner)
    with pytest.raises(httpcore.ConnectError, match="not a valid host name"):
        await backend.connect_tcp("a..b", 80)
    assert inner.attempts == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/", "http://[::1]:9/", "http://10.0.0.1/", "http://localhost:9/"]
)
async def test_guarded_transport_refuses_before_connecting(url: str) -> None:
    transport = GuardedTransport(allow_private=False)
    inner = _NoConnect()
    transport.backend._inner = inner
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(ConfigRefused):
            await client.get(url)
    assert inner.attempts == []


async def test_guarded_transport_connects_to_the_checked_address(unit: float) -> None:
    """Pinning: the connection goes to the resolved, checked IP; Host stays the name."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def resolver(host: str, port: int) -> list[str]:
        assert host == "model.example"
        return ["127.0.0.1"]

    try:
        transport = GuardedTransport(allow_private=True, resolver=resolver)
        async with httpx.AsyncClient(transport=transport, timeout=5 * unit) as client:
            response = await client.get(f"http://model.example:{port}/v1/models")
        assert response.text == "ok"
        assert b"host: model.example" in seen[0].lower()
        # Without the operator's permission the same name is refused.
        refusing = GuardedTransport(allow_private=False, resolver=resolver)
        async with httpx.AsyncClient(transport=refusing) as client:
            with pytest.raises(ConfigRefused, match=r"model\.example resolves to 127\.0\.0\.1"):
                await client.get(f"http://model.example:{port}/v1/models")
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()

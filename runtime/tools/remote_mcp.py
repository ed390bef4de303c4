"""Remote MCP servers (streamable HTTP) as tools, through the official `mcp` SDK.

An owner adds `{name, url, bearerSecret, allow}`; the runtime lists the
server's tools (all pages) and calls them with the SDK's `ClientSession` over
`streamable_http_client`. The SDK speaks httpx2, so its client gets its own
guarded network backend (`GuardedBackend2`): every address it dials is checked
like the providers' (no private, loopback or metadata address unless the
operator allows private ones, never metadata), the URL is vetted before the
first byte, and redirects leave the origin never (the SDK's own rule).

Connections are short: one to list (the list is kept `LIST_TTL_S` per server
and owner in the process), one per call, so a device's per-turn sockets do not
hold remote sessions open. `mcp` is imported here only, and only the runtime
extra installs it: `functions/` never sees it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import httpcore2
import httpx2

from runtime.pipeline.errors import ProviderError
from runtime.protocol.mcp import MAX_DESCRIPTION_CHARS, MAX_TOOLS
from runtime.providers.keys import KeyResolver
from runtime.providers.netguard import Resolver, check_addresses, system_resolver, vet_url
from runtime.tools.box import ToolDef, ToolError, ToolOutput

LIST_TTL_S = 300.0
CONNECT_TIMEOUT_S = 5.0


class GuardedBackend2(httpcore2.AsyncNetworkBackend):
    """`netguard.GuardedBackend` for the httpx2 stack the `mcp` SDK uses."""

    def __init__(self, *, allow_private: bool, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolver = resolver or system_resolver
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await self._resolver(host, port)
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
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not reachable from tool calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    *, allow_private: bool, headers: Mapping[str, str], resolver: Resolver | None = None
) -> httpx2.AsyncClient:
    transport = httpx2.AsyncHTTPTransport()
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(),
        network_backend=GuardedBackend2(allow_private=allow_private, resolver=resolver),
    )
    return httpx2.AsyncClient(
        transport=transport,
        headers=dict(headers),
        trust_env=False,  # a proxy would make the guard check the proxy, not the server
        follow_redirects=False,
        timeout=httpx2.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
    )


_LISTS: OrderedDict[tuple[str, str], tuple[float, list[ToolDef]]] = OrderedDict()


class RemoteMcpSource:
    """One owner's MCP servers for one session."""

    def __init__(
        self,
        servers: Sequence[Mapping[str, Any]],
        keys: KeyResolver,
        *,
        owner: str,
        allow_private: bool,
        resolver: Resolver | None = None,
    ) -> None:
        self._servers = {str(s["name"]): s for s in servers}
        self._keys = keys
        self._owner = owner
        self._allow_private = allow_private
        self._resolver = resolver
        self._tools: list[ToolDef] = []
        self.errors: list[str] = []

    def tools(self) -> Sequence[ToolDef]:
        return self._tools

    async def refresh(self) -> None:
        """List every server's tools (from the process cache when fresh)."""
        tools: list[ToolDef] = []
        self.errors = []
        for name, server in self._servers.items():
            key = (self._owner, f"{name}|{server['url']}")
            cached = _LISTS.get(key)
            if cached is not None and time.monotonic() - cached[0] < LIST_TTL_S:
                tools += cached[1]
                continue
            try:
                listed = await self._list(name, server)
            except ToolError as exc:
                self.errors.append(f"MCP server {name}: {exc}")
                continue
            _LISTS[key] = (time.monotonic(), listed)
            while len(_LISTS) > 1024:
                _LISTS.popitem(last=False)
            tools += listed
        self._tools = tools

    @contextlib.asynccontextmanager
    async def _session(self, name: str, server: Mapping[str, Any]) -> AsyncIterator[Any]:
        from mcp.client.session import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        url = str(server["url"])
        try:
            await vet_url(
                url,
                allow_private=self._allow_private,
                provider=f"MCP server {name}",
                what=f"MCP server {name} url",
                resolver=self._resolver,
            )
            headers: dict[str, str] = {}
            secret = server.get("bearerSecret")
            if secret:
                key = self._keys.resolve(str(secret), provider=f"MCP server {name}")
                if key is None:
                    raise ToolError(f"the secret {secret} has no value on this runtime")
                key.check_destination(url, f"MCP server {name}")
                headers["Authorization"] = f"Bearer {key.reveal()}"
        except ProviderError as exc:
            raise ToolError(str(exc).removeprefix(f"{exc.provider}: ")) from None
        client = guarded_client(
            allow_private=self._allow_private, headers=headers, resolver=self._resolver
        )
        try:
            async with (
                client,
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session
        except ToolError:
            raise
        except Exception as exc:
            # The SDK raises through anyio task groups; a refusal by the guard may
            # arrive wrapped. Either way the call failed, with a short reason.
            raise ToolError(f"the server could not be used ({_reason(exc)})") from None

    async def _list(self, name: str, server: Mapping[str, Any]) -> list[ToolDef]:
        allow = set(server.get("allow") or [])
        tools: list[ToolDef] = []
        async with self._session(name, server) as session:
            cursor: str | None = None
            for _ in range(16):
                from mcp.types import PaginatedRequestParams

                params = PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                for tool in page.tools:
                    if allow and tool.name not in allow:
                        continue
                    tools.append(
                        ToolDef(
                            key=f"mcp:{name}:{tool.name}",
                            name=f"{name}.{tool.name}",
                            source="mcp",
                            description=(tool.description or "")[:MAX_DESCRIPTION_CHARS],
                            parameters=dict(tool.input_schema or {"type": "object"}),
                        )
                    )
                cursor = page.next_cursor
                if not cursor or len(tools) >= MAX_TOOLS:
                    break
        return tools[:MAX_TOOLS]

    async def invoke(self, tool: ToolDef, arguments: dict[str, Any]) -> ToolOutput:
        server_name, _, tool_name = tool.key.removeprefix("mcp:").partition(":")
        async with self._session(server_name, self._servers[server_name]) as session:
            result = await session.call_tool(tool_name, arguments)
        parts: list[str] = []
        for block in result.content:
            text = getattr(block, "text", None)
            parts.append(text if isinstance(text, str) else f"[{block.type} omitted]")
        text = "\n".join(parts)
        if not text and result.structured_content is not None:
            import json

            text = json.dumps(result.structured_content, default=str)
        return ToolOutput(text, bool(result.is_error))


def _reason(exc: BaseException) -> str:
    inner: BaseException = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    if isinstance(inner, ProviderError):
        return str(inner).removeprefix(f"{inner.provider}: ")
    return type(inner).__name__

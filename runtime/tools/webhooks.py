"""Owner-defined webhooks as tools: name, description, JSON-schema parameters, URL,
method, and headers whose values may name the owner's sealed secrets.

Called through the same network guard as the providers: the URL is vetted
before each call (no private, loopback, link-local or metadata address unless
the operator allows private ones, and metadata never), the connection re-checks
every address it dials, plain http is refused unless private targets are
allowed, redirects are never followed (a 3xx is an error result, so nothing is
sent on to an address nobody vetted), and the answer is cut at
`MAX_RESPONSE_BYTES` and bounded in time by the tool's timeout.
GET and DELETE send the arguments as query parameters, the others as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from runtime.pipeline.errors import ConfigRefused, ProviderError
from runtime.providers.http import redact, shared_client
from runtime.providers.keys import KeyResolver
from runtime.providers.netguard import Resolver, vet_url
from runtime.tools.box import ToolDef, ToolError, ToolOutput

MAX_RESPONSE_BYTES = 6 * 1024  # below the 8 KiB a tool result may hold, so the cut note shows
DEFAULT_TIMEOUT_S = 10.0


def _sentence(exc: ProviderError) -> str:
    return str(exc).removeprefix(f"{exc.provider}: ")


class WebhookSource:
    def __init__(
        self,
        hooks: Sequence[Mapping[str, Any]],
        keys: KeyResolver,
        *,
        allow_private: bool,
        client: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._hooks = {str(h["name"]): h for h in hooks}
        self._keys = keys
        self._allow_private = allow_private
        self._client = client
        self._resolver = resolver
        self.secret_values: list[str] = []  # for redaction of call records

    def tools(self) -> Sequence[ToolDef]:
        return [
            ToolDef(
                key=f"webhook:{name}",
                name=name,
                source="webhook",
                description=str(hook.get("description") or ""),
                parameters=hook.get("parameters") or {"type": "object", "properties": {}},
                timeout_s=float(hook.get("timeoutS") or DEFAULT_TIMEOUT_S),
            )
            for name, hook in self._hooks.items()
        ]

    def _headers(self, hook: Mapping[str, Any], url: str) -> tuple[dict[str, str], list[str]]:
        headers: dict[str, str] = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
        secrets: list[str] = []
        for header in hook.get("headers") or []:
            name = str(header["name"])
            if "secret" in header:
                key = self._keys.resolve(str(header["secret"]), provider=f"webhook {hook['name']}")
                if key is None:
                    raise ToolError(f"the secret {header['secret']} has no value on this runtime")
                key.check_destination(url, f"webhook {hook['name']}")
                headers[name] = key.reveal()
                secrets.append(key.reveal())
            else:
                headers[name] = str(header["value"])
        return headers, secrets

    async def invoke(self, tool: ToolDef, arguments: dict[str, Any]) -> ToolOutput:
        hook = self._hooks[tool.name]
        url = str(hook["url"])
        what = f"webhook {tool.name}"
        try:
            if url.lower().startswith("http://") and not self._allow_private:
                raise ConfigRefused(what, f"{what} url must use https://.")
            await vet_url(
                url,
                allow_private=self._allow_private,
                provider=what,
                what=f"{what} url",
                resolver=self._resolver,
            )
            headers, secrets = self._headers(hook, url)
        except ProviderError as exc:
            raise ToolError(_sentence(exc)) from None
        self.secret_values = secrets
        method = str(hook.get("method") or "POST").upper()
        client = self._client or shared_client(allow_private=self._allow_private)
        if method in ("GET", "DELETE"):
            params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
            request = client.build_request(method, url, params=params, headers=headers)
        else:
            request = client.build_request(method, url, json=arguments, headers=headers)
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            message = f"{what} could not be reached ({type(exc).__name__})"
            raise ToolError(redact(message, secrets)) from None
        except ConfigRefused as exc:  # the connection-time guard
            raise ToolError(_sentence(exc)) from None
        try:
            body = bytearray()
            async for piece in response.aiter_raw():
                body += piece
                if len(body) > MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
        text = body[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
        if len(body) > MAX_RESPONSE_BYTES:
            text += f" …(cut at {MAX_RESPONSE_BYTES // 1024} KiB)"
        text = redact(text, secrets)
        if 300 <= response.status_code < 400:
            return ToolOutput(f"{what} answered with a redirect, which is not followed.", True)
        if response.status_code >= 400:
            return ToolOutput(f"{what} answered HTTP {response.status_code}: {text[:300]}", True)
        return ToolOutput(text or f"{what} answered HTTP {response.status_code}.")

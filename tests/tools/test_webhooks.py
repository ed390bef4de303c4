"""Webhook tools against a real loopback target (allowed by the operator setting in
this test), and the network guard refusing private and metadata targets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from runtime.providers.http import aclose_shared_clients
from runtime.providers.keys import KeyResolver
from runtime.providers.settings import ProviderSettings
from runtime.tools.box import CallRecord, ToolBox
from runtime.tools.webhooks import MAX_RESPONSE_BYTES, WebhookSource
from shared.secretbox import new_key_text, parse_key, seal
from tests.tools.servers import serve

USER = "00000000-0000-4000-8000-000000000001"
SECRET_VALUE = "garage-token-0123456789"


class Target:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], dict[str, str], bytes]] = []

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            body = await request.body()
            self.seen.append(
                (request.method, dict(request.headers), dict(request.query_params), body)
            )
            if request.url.path == "/big":
                return PlainTextResponse("x" * (MAX_RESPONSE_BYTES * 2))
            if request.url.path == "/moved":
                return RedirectResponse("http://169.254.169.254/latest/meta-data/", 302)
            if request.url.path == "/fail":
                return PlainTextResponse("nope", 500)
            return JSONResponse({"opened": True, "echo": SECRET_VALUE})

        return Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST", "DELETE"])])


def keys() -> tuple[KeyResolver, ProviderSettings]:
    key_text = new_key_text()
    settings = ProviderSettings(
        _env_file=None,  # type: ignore[call-arg]
        OPENDOT_SECRETS_KEY=key_text,  # type: ignore[call-arg]
    )
    sealed = seal(parse_key(key_text), SECRET_VALUE, f"{USER}:GARAGE_TOKEN")
    return KeyResolver(settings, {"GARAGE_TOKEN": sealed}, USER), settings


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    server = Target()
    async with serve(server.app()) as base:
        yield server, base
    await aclose_shared_clients()


def hook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "open_garage",
        "description": "Opens the garage.",
        "parameters": {"type": "object", "properties": {"door": {"type": "integer"}}},
        "url": url,
        "method": "POST",
        "headers": [{"name": "X-Token", "secret": "GARAGE_TOKEN"}],
        **extra,
    }


def box_for(
    hooks: list[dict[str, Any]], *, allow_private: bool
) -> tuple[ToolBox, list[CallRecord]]:
    resolver, _ = keys()
    records: list[CallRecord] = []
    source = WebhookSource(hooks, resolver, allow_private=allow_private)
    return ToolBox([source], secrets=[SECRET_VALUE], on_call=records.append), records


async def test_webhook_on_loopback_when_the_operator_allows_it(target: tuple[Target, str]) -> None:
    server, base = target
    box, records = box_for(
        [hook(base + "/garage"), hook(base + "/status", name="garage_status", method="GET")],
        allow_private=True,
    )
    result = await box.call("open_garage", '{"door": 2}', "c1")
    assert not result.is_error
    # The secret the target echoed back never reaches the model or the records.
    assert json.loads(result.output) == {"opened": True, "echo": "[redacted]"}
    method, headers, _, body = server.seen[0]
    assert method == "POST" and headers["x-token"] == SECRET_VALUE
    assert json.loads(body) == {"door": 2}
    got = await box.call("garage_status", {"door": 3})
    assert not got.is_error and server.seen[1][0] == "GET" and server.seen[1][2] == {"door": "3"}
    assert records[0].source == "webhook" and records[0].arguments == {"door": 2}


async def test_caps_redirects_and_errors(target: tuple[Target, str]) -> None:
    _, base = target
    box, _ = box_for(
        [
            hook(base + "/big", name="big"),
            hook(base + "/moved", name="moved"),
            hook(base + "/fail", name="fail"),
        ],
        allow_private=True,
    )
    big = await box.call("big", "{}")
    assert big.output.endswith("…(cut at 6 KiB)") and not big.is_error
    moved = await box.call("moved", "{}")
    assert moved.is_error and "redirect, which is not followed" in moved.output
    fail = await box.call("fail", "{}")
    assert fail.is_error and fail.output == "webhook fail answered HTTP 500: nope"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:9/x", "must use https://"),
        ("https://127.0.0.1:9/x", "loopback address"),
        ("https://10.1.2.3/x", "private-network address"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ],
)
async def test_private_and_metadata_targets_are_refused(url: str, fragment: str) -> None:
    box, records = box_for([hook(url)], allow_private=False)
    result = await box.call("open_garage", "{}")
    assert result.is_error and fragment in result.output
    assert records[0].error is not None


async def test_metadata_is_refused_even_when_private_is_allowed() -> None:
    box, _ = box_for([hook("http://169.254.169.254/latest")], allow_private=True)
    result = await box.call("open_garage", "{}")
    assert result.is_error and "never reachable" in result.output


async def test_an_unknown_secret_is_a_sentence() -> None:
    resolver, _ = keys()
    bad = hook("https://hooks.example.com/x", headers=[{"name": "X-Token", "secret": "NOPE"}])
    source = WebhookSource([bad], resolver, allow_private=False)

    async def public(_host: str, _port: int) -> list[str]:
        return ["93.184.215.14"]

    source._resolver = public
    result = await ToolBox([source]).call("open_garage", "{}")
    assert result.is_error and "NOPE" in result.output

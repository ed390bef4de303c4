"""The Lambda handler with real API Gateway events (HTTP API 2.0 and REST 1.0)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import typing
from collections.abc import Iterator
from typing import Any

import pytest

from functions.handler import LambdaHandler, make_handler
from tests.functions.conftest import make_settings

HEAVY = ("numpy", "openai", "azure", "librosa", "soxr", "onnxruntime")


class Context:
    aws_request_id = "req-1"
    function_name = "opendot-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:opendot-api"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def v2_event(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, query: str = ""
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [],
        "headers": {
            "content-type": "application/json",
            "host": "api.example.com",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.55",
                "userAgent": "pytest",
            },
            "requestId": "id-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600000000,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def v1_event(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    all_headers = {"Content-Type": "application/json", "Host": "api.example.com", **(headers or {})}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "id-2",
            "identity": {"sourceIp": "192.0.2.56", "userAgent": "pytest"},
            "accountId": "123456789012",
            "apiId": "abc123",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


@pytest.fixture
def handler(database_url: str) -> Iterator[LambdaHandler]:
    handle = make_handler(make_settings(database_url))
    yield handle
    db = handle.app.state.services.db  # type: ignore[attr-defined]
    loop = handle.state.get("loop")  # type: ignore[attr-defined]
    if loop is not None:
        loop.run_until_complete(db.close())
        loop.close()
    asyncio.set_event_loop(None)


def test_http_api_v2_and_rest_v1_share_one_warm_pool(handler: LambdaHandler) -> None:
    signup = handler(
        v2_event(
            "POST",
            "/api/auth/signup",
            {"email": "lambda@example.test", "password": "long enough pw"},
        ),
        Context(),
    )
    assert signup["statusCode"] == 201, signup
    token = json.loads(signup["body"])["accessToken"]
    bearer = {"authorization": f"Bearer {token}"}
    pool = handler.app.state.services.db._pool  # type: ignore[attr-defined]
    assert pool is not None

    state = handler(v2_event("GET", "/api/platform-state", headers=bearer), Context())
    assert state["statusCode"] == 200
    assert json.loads(state["body"])["userSettings"]["email"] == "lambda@example.test"

    created = handler(
        v1_event(
            "POST",
            "/api/agents",
            {"name": "From REST", "description": ""},
            {"Authorization": f"Bearer {token}"},
        ),
        Context(),
    )
    assert created["statusCode"] == 201, created
    assert "multiValueHeaders" in created
    assert handler.app.state.services.db._pool is pool  # type: ignore[attr-defined]

    unauthorized = handler(v1_event("GET", "/api/platform-state"), Context())
    assert unauthorized["statusCode"] == 401
    assert json.loads(unauthorized["body"]) == {"error": "A bearer token is required."}
    health = handler(v2_event("GET", "/health"), Context())
    assert json.loads(health["body"]) == {"ok": True}


def test_bad_input_through_lambda_is_4xx(handler: LambdaHandler) -> None:
    event = v2_event("POST", "/api/auth/login")
    event["body"] = "{not json"
    response = handler(event, Context())
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"error": "The request body is not valid JSON."}


def test_importing_the_handler_stays_light() -> None:
    code = (
        "import gc, sys, json; import functions.handler; "
        f"print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules],"
        " gc.isenabled(), gc.get_freeze_count()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, gc_enabled, frozen = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    # The collector is paused only while the app is built, then back on, with
    # what init built frozen out of its way.
    assert gc_enabled is True
    assert frozen > 10_000


def test_request_bodies_build_at_import() -> None:
    """Deferred schema builds are for responses only (see `functions.models.RequestBody`)."""
    from pydantic import BaseModel

    from functions.app import ROUTERS

    bodies = set()
    for route in (route for router in ROUTERS for route in router.routes):
        field = getattr(route, "body_field", None)
        if field is None:
            continue
        annotation = field.field_info.annotation
        for candidate in (annotation, *typing.get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                bodies.add(candidate)
    assert len(bodies) >= 15
    deferred = [m.__name__ for m in bodies if m.model_config.get("defer_build")]
    assert deferred == []
    assert all(m.__pydantic_complete__ for m in bodies)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://u:p@aws-0-eu.pooler.supabase.com:6543/postgres", True),
        ("postgresql://u:p@db.example.com:5432/postgres?pgbouncer=true", True),
        ("postgresql://u:p@db.example.com:5432/postgres", False),
    ],
)
def test_transaction_pooler_detection(uri: str, expected: bool) -> None:
    assert make_settings(uri).uses_transaction_pooler is expected
    assert make_settings(uri, OPENDOT_DB_POOLER=True).uses_transaction_pooler is True

"""`create_app(settings)`: the platform API as one FastAPI application.

Routers are listed here explicitly. Every error leaves as `{"error": "<sentence>"}`:
our own `ApiError`s, request validation (400, not FastAPI's 422 shape, as the
original API answered), database constraint hits (409/400, never 500), and
anything unexpected (500 with a generic sentence; details only in the log).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.body_limit import BodyLimit
from functions.db import Database
from functions.deps import Services
from functions.errors import ApiError, TooManyRequests
from functions.models import ErrorBody
from functions.routers import (
    agents,
    api_keys,
    auth,
    devices,
    firmware,
    health,
    history,
    internal_devices,
    internal_firmware,
    internal_runtime,
    platform_state,
    runtime_sessions,
    secrets,
    user_settings,
)
from functions.settings import ApiSettings
from functions.tokens_jwt import TokenVerifier
from shared.firmware.storage import build_storage

log = logging.getLogger("opendot.api")

ROUTERS = (
    health.router,
    auth.router,
    platform_state.router,
    agents.router,
    devices.router,
    firmware.router,
    history.router,
    runtime_sessions.router,
    user_settings.router,
    api_keys.router,
    secrets.router,
    internal_devices.router,
    internal_firmware.router,
    internal_runtime.router,
)

_UNIQUE_MESSAGES = {
    "devices_user_serial_key": "A device with this serial number is already paired.",
    "local_auth_credentials_email_key": "An account already exists for this email.",
    "app_users_provider_subject_key": "An account already exists for this email.",
    "agents_user_slug_key": "An agent with this name already exists.",
    "user_secrets_user_id_name_key": "A secret with this name already exists.",
    "firmware_rollouts_live_board_key": "This board already has a live rollout.",
}
# Guards that raise check_violation with a constraint name (triggers in the
# migrations), answered with their own status and sentence.
_CHECK_MESSAGES = {
    "devices_paired_serial_fixed": (
        409,
        "A paired device keeps the serial number it was paired with.",
    ),
    "devices_serial_of_known_hardware": (
        409,
        "That serial number belongs to a device that has already contacted this server.",
    ),
}
_STATUS_SENTENCES = {
    400: "The request is not valid.",
    401: "Authentication is required.",
    403: "This is not allowed.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    415: "Unsupported media type.",
}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_sentence(errors: list[Any]) -> str:
    if not errors:
        return "The request is not valid."
    first = errors[0]
    kind = first.get("type", "")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc)
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if kind == "missing":
        return f"{field} is required." if field else "A JSON body is required."
    message = str(first.get("msg", "is not valid")).rstrip(".")
    if kind == "value_error":
        # Our own validators raise whole sentences naming their field: pass them on
        # without pydantic's "Value error, " (the console shows them at the field).
        return message.removeprefix("Value error, ") + "."
    return f"{field}: {message}." if field else f"{message}."


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(exc.status, exc.message, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, _validation_sentence(list(exc.errors())))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if detail in (None, "Not Found", "Method Not Allowed") or exc.status_code in (404, 405):
        detail = _STATUS_SENTENCES.get(exc.status_code, detail or "Request failed.")
    return error_response(exc.status_code, str(detail), dict(exc.headers or {}) or None)


async def _postgres_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, asyncpg.PostgresError)
    if isinstance(exc, asyncpg.UniqueViolationError):
        name = getattr(exc, "constraint_name", None) or ""
        return error_response(409, _UNIQUE_MESSAGES.get(name, "That already exists."))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return error_response(409, "It refers to something that does not exist.")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return error_response(404, "Not found.")
    if isinstance(exc, asyncpg.CheckViolationError):
        known = _CHECK_MESSAGES.get(getattr(exc, "constraint_name", None) or "")
        if known is not None:
            return error_response(*known)
    if isinstance(exc, (asyncpg.CheckViolationError, asyncpg.NotNullViolationError)):
        return error_response(400, "A value is out of range or missing.")
    if isinstance(exc, asyncpg.DataError):
        return error_response(400, "A value has the wrong format or is too long.")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return error_response(503, "The database took too long to answer.")
    log.exception("database error", exc_info=exc)
    return error_response(500, "Internal server error.")


class CatchAll:
    """Outermost safety net: an unexpected exception becomes a 500 JSON answer.

    Starlette's own server-error middleware re-raises after answering, which
    would crash a Lambda invocation; this answers and stops there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "Internal server error.")
            await response(scope, receive, send)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="OpenDot platform API",
        version="1.0.0",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.services = Services(
        settings=settings,
        db=Database(settings),
        verifier=TokenVerifier(settings),
        firmware=build_storage(settings, settings.runtime_internal_secret.get_secret_value()),
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(asyncpg.PostgresError, _postgres_error)
    app.add_middleware(BodyLimit)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(CatchAll)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Describe errors as they really leave: `{error}` bodies, 400 instead of 422."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = original()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        error = {
            "description": "Error: one sentence in `error`.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path_item in doc.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                responses["400"] = error
                responses.setdefault("4XX", error)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

"""AWS Lambda entry point: `functions.handler.handler` (Mangum, lifespan off).

The app and its settings are built once per execution environment at import
(Lambda's init phase); the asyncpg pool is created lazily by the first request
and reused by every warm invocation, since Mangum keeps one event loop.
Nothing heavy is imported here: numpy, audio and provider SDKs stay in the
runtime package (a test checks `sys.modules` after this import).
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from functions.app import create_app
from functions.settings import ApiSettings

settings = ApiSettings()
app = create_app(settings)
_mangum = Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = _mangum(event, context)
    return result

"""AWS Lambda entry point: `functions.handler.handler` (Mangum, lifespan off).

The app and its settings are built once per execution environment at import
(Lambda's init phase); the asyncpg pool is created lazily by the first request
and reused by every warm invocation. Mangum drives each invocation on the
current event loop, so the handler pins one loop for the environment's life:
the pool belongs to that loop. Nothing heavy is imported here: numpy, audio
and provider SDKs stay in the runtime package (a test checks `sys.modules`).

The cyclic garbage collector is paused while this module imports and builds
the app: FastAPI, pydantic and cryptography allocate hundreds of thousands of
long-lived objects, and each automatic full collection re-walks all of them
(measured: about a fifth of the cold import). Nothing built at init is
garbage, so the survivors are then frozen (`gc.freeze`), which also keeps
every later collection from scanning them again during warm invocations.
"""

from __future__ import annotations

import gc

_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

import asyncio  # noqa: E402 - after pausing the collector, on purpose
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from mangum import Mangum  # noqa: E402

from functions.app import create_app  # noqa: E402
from functions.settings import ApiSettings  # noqa: E402

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(settings: ApiSettings) -> LambdaHandler:
    """A Lambda handler around a new app; its event loop is made on the first call.

    Mangum would create a loop in its constructor; deferring the adapter keeps
    importing this module free of side effects while the app itself (and every
    import it needs) is still built during Lambda's init phase.
    """
    app = create_app(settings)
    state: dict[str, Any] = {}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        loop: asyncio.AbstractEventLoop | None = state.get("loop")
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            state["loop"] = loop
            asyncio.set_event_loop(loop)
            state["adapter"] = Mangum(app, lifespan="off")
        asyncio.set_event_loop(loop)
        result: dict[str, Any] = state["adapter"](event, context)
        return result

    handle.app = app  # type: ignore[attr-defined]
    handle.state = state  # type: ignore[attr-defined]
    return handle


try:
    handler = make_handler(ApiSettings())
finally:
    gc.freeze()
    if _GC_WAS_ENABLED:
        gc.enable()

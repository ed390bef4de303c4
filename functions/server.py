"""`opendot api`: serve the platform API under uvicorn (default 0.0.0.0:8788)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functions.settings import ApiSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (PLATFORM_API_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (PLATFORM_API_PORT)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (POSTGRES_URI)")
    parser.add_argument(
        "--write-openapi",
        metavar="PATH",
        default=None,
        help="write the OpenAPI document to PATH and exit",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: `opendot --help` must not pay for FastAPI.
    import json

    from functions.app import create_app
    from functions.settings import ApiSettings
    from shared.settings import SettingsError

    overrides = {"POSTGRES_URI": args.database_url} if args.database_url else {}
    try:
        settings = ApiSettings(**overrides)
    except (SettingsError, ValueError) as exc:
        print(f"opendot api: {exc}")
        return 2
    app = create_app(settings)
    if args.write_openapi:
        with open(args.write_openapi, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n")
        return 0
    if settings.env == "production":
        refusal = _production_refusal(settings)
        if refusal is not None:
            print(f"opendot api: {refusal}", file=sys.stderr)
            return 2
    import uvicorn

    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        # The client address is decided in one place (functions/client_address.py,
        # OPENDOT_TRUSTED_PROXIES); uvicorn must not rewrite it from headers first.
        proxy_headers=False,
        lifespan="off",
    )
    return 0


def _production_refusal(settings: ApiSettings) -> str | None:
    """Start only with a database login that cannot bypass RLS (functions/db.py)."""
    import asyncio

    from functions.db import Database
    from functions.errors import ApiError

    async def check() -> str | None:
        db = Database(settings)
        try:
            await db.pool()
        except ApiError as exc:
            return exc.message
        finally:
            await db.close()
        return None

    return asyncio.run(check())

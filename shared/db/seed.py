"""Apply `supabase/seed.sql` (the demo user and agent) the way `supabase db reset` does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from shared.db.connection import connect
from shared.db.errors import MigrationError


def default_seed_path() -> Path:
    return Path(__file__).resolve().parents[2] / "supabase" / "seed.sql"


async def apply_seed_async(url: str, path: Path | None = None) -> None:
    seed = path or default_seed_path()
    if not seed.is_file():
        raise MigrationError(f"The seed file {seed} does not exist.")
    sql = seed.read_text(encoding="utf-8")
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise MigrationError(
            f"The seed {seed.name} failed and was rolled back: {message}."
        ) from exc
    finally:
        await conn.close()


def apply_seed(url: str, path: Path | None = None) -> None:
    asyncio.run(apply_seed_async(url, path))

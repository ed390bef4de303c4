"""Liveness with a database round trip."""

from __future__ import annotations

from fastapi import APIRouter, Request

from functions.deps import services
from functions.models import Ok

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Ok)
@router.get("/api/health", response_model=Ok)
async def health(request: Request) -> Ok:
    await services(request).db.ping()
    return Ok()

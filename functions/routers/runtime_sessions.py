"""Single-use, 60-second tokens that let a browser open a runtime voice session."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter

from functions import runtime_store
from functions.agents_store import iso, parse_uuid
from functions.deps import Ctx, UserDb
from functions.errors import NotFound
from functions.models import (
    RealtimeSession,
    RealtimeSessionEnvelope,
    VoiceSession,
    VoiceSessionBody,
    VoiceSessionEnvelope,
)
from shared.tokens import VOICE_TOKEN_TTL_S, new_voice_token, token_hash

router = APIRouter(prefix="/api/runtime", tags=["runtime sessions"])


async def _issue(ctx: Ctx, agent_id: str, kind: str) -> tuple[str, str]:
    parsed = parse_uuid(agent_id)
    token = new_voice_token()
    expires = None
    if parsed is not None:
        expires = await runtime_store.issue_token(
            ctx.conn, parsed, token_hash(token), kind, VOICE_TOKEN_TTL_S
        )
    if expires is None:
        raise NotFound("Agent not found.")
    return token, iso(expires) or ""


@router.post("/voice-sessions", status_code=201, response_model=VoiceSessionEnvelope)
async def voice_session(body: VoiceSessionBody, ctx: UserDb) -> VoiceSessionEnvelope:
    token, expires = await _issue(ctx, body.agent_id, "voice")
    base = ctx.settings.runtime_public_ws_url
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}{urlencode({'voice_token': token})}"
    return VoiceSessionEnvelope(voice_session=VoiceSession(url=url, expires_at=expires))


@router.post("/realtime-browser-sessions", status_code=201, response_model=RealtimeSessionEnvelope)
async def realtime_session(body: VoiceSessionBody, ctx: UserDb) -> RealtimeSessionEnvelope:
    token, expires = await _issue(ctx, body.agent_id, "realtime")
    base = ctx.settings.runtime_public_http_url.rstrip("/")
    return RealtimeSessionEnvelope(
        realtime_session=RealtimeSession(
            token=token, client_secret_url=f"{base}/realtime/client-secret", expires_at=expires
        )
    )

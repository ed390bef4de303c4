"""Speech-to-speech: the OpenAI Realtime bridge for Dots (`/ws`) and browsers (`/voice`).

`config` (the agent's realtime block), `target` (URL, key, network rules),
`connection` (the guarded WebSocket), `bridge` (one provider session: batched
uplink, event dispatch, tools seam), `playback` (what the device really
played, for truncation), `device` / `browser` (the session-side links),
`client_secret` (the browser's ephemeral-secret route), `services` (shared
per process: breaker, offline apology voice), `fake` (the loopback provider
for tests, the bench and the keyless demo). The wire format itself is Sans-I/O
in `runtime.protocol.realtime`.
"""

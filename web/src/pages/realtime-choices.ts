/**
 * The speech-to-speech block's enumerated values, as the API reads them
 * (shared/agent_config.py REALTIME_CHOICES; tests/web/test_console_server.py
 * checks the two agree). A value outside these lists is dropped by the API
 * on save, so the console offers only these.
 */

export const REALTIME_CHOICES = {
  provider: ["openai", "azure", "echo"],
  fallback: ["none", "pipeline"],
  model: ["gpt-realtime-2", "gpt-realtime-mini"],
  voice: ["marin", "cedar", "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"],
  reasoningEffort: ["low", "medium", "high"],
  type: ["semantic_vad", "server_vad"],
  eagerness: ["auto", "low", "medium", "high"],
} as const;

/** Bounds of the turn detection numbers (the API clamps to them). */
export const TURN_RANGES = {
  threshold: [0, 1],
  prefixPaddingMs: [0, 2000],
  silenceDurationMs: [100, 4000],
} as const;

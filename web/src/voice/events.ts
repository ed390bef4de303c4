/** The `/voice` server events the Talk page reads (PROTOCOLS §4), checked at the edge. */

export type VoiceEvent =
  | { type: "runtime_connected"; sessionId: string; agentId?: string | null; agentName?: string | null }
  | { type: "runtime_ready" }
  | { type: "vad_event"; event: string }
  | { type: "stt_interim"; text: string }
  | { type: "stt_final"; text: string }
  | { type: "user_final"; turnId: string; text: string }
  | { type: "assistant_start"; turnId?: string }
  | { type: "assistant_delta"; text: string; turnId?: string }
  | { type: "assistant_text"; text: string; turnId?: string }
  | { type: "assistant_audio"; turnId: string; chunkIndex: number; text: string; mimeType: string; audioBase64: string }
  | { type: "assistant_pcm_delta"; turnId: string; chunkIndex: number; sampleRate: number; pcmBase64: string }
  | { type: "assistant_end"; turnId: string; outcome?: string }
  | {
      type: "timeline";
      turnId: string;
      stage: string;
      label?: string;
      spanId?: string;
      startMs: number;
      endMs: number;
      elapsedMs?: number;
      bytes?: number;
    }
  | { type: "reset_done" }
  | { type: "error"; message: string };

const KNOWN = new Set([
  "runtime_connected",
  "runtime_ready",
  "vad_event",
  "stt_interim",
  "stt_final",
  "user_final",
  "assistant_start",
  "assistant_delta",
  "assistant_text",
  "assistant_audio",
  "assistant_pcm_delta",
  "assistant_end",
  "timeline",
  "reset_done",
  "error",
]);

/** A known event, or null for anything else (new event types are ignored, not fatal). */
export function parseEvent(text: string): VoiceEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!value || typeof value !== "object") return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !KNOWN.has(type)) return null;
  if (type === "timeline") {
    const t = value as Record<string, unknown>;
    if (typeof t["stage"] !== "string" || typeof t["endMs"] !== "number") return null;
    if (typeof t["startMs"] !== "number") t["startMs"] = 0;
  }
  return value as VoiceEvent;
}

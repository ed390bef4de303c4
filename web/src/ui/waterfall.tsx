/**
 * A turn's stages as a small waterfall: one bar per span, from its start to
 * its end in milliseconds after the speech ended. Known stages get a
 * friendly name; any other stage is drawn the same way under its own name.
 * The numbers are text too (colour and length are never the only signal).
 */

import { ms } from "./time";

export interface Span {
  stage: string;
  label?: string | null | undefined;
  startMs: number;
  endMs: number;
  provider?: string | null | undefined;
}

const NAMES: Record<string, string> = {
  speech_end: "Speech end",
  stt_final: "Speech to text",
  llm_request: "LLM request",
  llm_first_delta: "LLM first token",
  llm_done: "LLM done",
  tts_request: "TTS request",
  tts_chunk: "TTS chunk",
  tts_done: "TTS done",
  first_audio: "First audio",
  turn_end: "Turn end",
};

export function stageName(span: Span): string {
  return span.label || NAMES[span.stage] || span.stage.replace(/_/g, " ");
}

export function Waterfall({ spans, caption }: { spans: Span[]; caption: string }) {
  if (!spans.length) return <p class="muted">No stage timings for this turn.</p>;
  const sorted = [...spans].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
  const total = Math.max(1, ...sorted.map((s) => s.endMs));
  return (
    <table class="waterfall">
      <caption class="sr-only">{caption}</caption>
      <thead class="sr-only">
        <tr>
          <th scope="col">Stage</th>
          <th scope="col">Timing</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((span, i) => {
          const left = (Math.max(0, span.startMs) / total) * 100;
          const width = Math.max(0.8, ((span.endMs - Math.max(0, span.startMs)) / total) * 100);
          const known = span.stage in NAMES;
          return (
            <tr key={`${span.stage}-${i}`} data-stage={span.stage}>
              <th scope="row">
                {stageName(span)}
                {span.provider && <span class="muted"> · {span.provider}</span>}
              </th>
              <td>
                <div class="track" aria-hidden="true">
                  <div class={`bar${known ? "" : " other"}`} style={{ left: `${left}%`, width: `${Math.min(100 - left, width)}%` }} />
                </div>
                <span class="num">
                  {span.startMs > 0 ? `${ms(span.startMs)} → ` : ""}
                  {ms(span.endMs)}
                </span>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/**
 * Talk to an agent from the browser through the runtime's `/voice` socket:
 * mic → PCM16 16 kHz up; live interim and final transcript, streamed reply
 * text and audio down; Stop interrupts the reply (`{type:"interrupt"}`); each
 * turn's timeline is drawn as a waterfall.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { call } from "../api/client";
import { messageOf } from "../api/errors";
import { useAgents } from "../api/resources";
import { href, navigate } from "../router";
import { Field } from "../ui/form";
import { Empty, ErrorBox, Loaded } from "../ui/status";
import { Waterfall, type Span } from "../ui/waterfall";
import { openMic, type Mic } from "../voice/mic";
import { Player } from "../voice/player";
import { parseEvent, type VoiceEvent } from "../voice/events";

interface Turn {
  id: string;
  user: string;
  reply: string;
  audioChunks: number;
  outcome: string | null;
  spans: Span[];
}

type Link = "idle" | "connecting" | "open" | "closed";

export function TalkPage({ agentId }: { agentId: string | null }) {
  const agents = useAgents();
  return (
    <section>
      <h1>Talk</h1>
      <Loaded resource={agents} what="agents">
        {(list) => {
          if (list.length === 0) {
            return (
              <Empty>
                <p>
                  Create an agent first on the <a href={href("/agents")}>Agents</a> page.
                </p>
              </Empty>
            );
          }
          const chosen = list.find((a) => a.id === agentId) ?? list[0]!;
          return (
            <>
              <Field id="talk-agent" label="Agent">
                <select id="talk-agent" value={chosen.id} onChange={(e) => navigate(`/talk?agent=${e.currentTarget.value}`)}>
                  {list.map((a) => (
                    <option key={a.id} value={a.id}>
                      {a.name}
                    </option>
                  ))}
                </select>
              </Field>
              <Conversation key={chosen.id} agentId={chosen.id} />
            </>
          );
        }}
      </Loaded>
    </section>
  );
}

function Conversation({ agentId }: { agentId: string }) {
  const [link, setLink] = useState<Link>("idle");
  const [listening, setListening] = useState(false);
  const [interim, setInterim] = useState("");
  const [speaking, setSpeaking] = useState(false);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [error, setError] = useState<string | null>(null);
  const socket = useRef<WebSocket | null>(null);
  const mic = useRef<Mic | null>(null);
  const player = useRef(new Player());
  const live = useRef<string | null>(null);

  const update = (turnId: string, change: (t: Turn) => Turn): void =>
    setTurns((list) => {
      const at = list.findIndex((t) => t.id === turnId);
      const base: Turn = at >= 0 ? list[at]! : { id: turnId, user: "", reply: "", audioChunks: 0, outcome: null, spans: [] };
      const next = change(base);
      return at >= 0 ? list.map((t, i) => (i === at ? next : t)) : [...list, next];
    });

  const onEvent = (event: VoiceEvent): void => {
    switch (event.type) {
      case "stt_interim":
        setInterim(event.text);
        break;
      case "stt_final":
        setInterim(event.text);
        break;
      case "user_final":
        live.current = event.turnId;
        setInterim("");
        update(event.turnId, (t) => ({ ...t, user: event.text }));
        break;
      case "assistant_start":
        if (event.turnId) live.current = event.turnId;
        player.current.seconds = 0;
        setSpeaking(true);
        break;
      case "assistant_delta": {
        const id = event.turnId ?? live.current;
        if (id) update(id, (t) => ({ ...t, reply: t.reply + event.text }));
        break;
      }
      case "assistant_text": {
        const id = event.turnId ?? live.current;
        if (id) update(id, (t) => ({ ...t, reply: event.text }));
        break;
      }
      case "assistant_audio":
        player.current.playEncoded(event.audioBase64);
        update(event.turnId, (t) => ({ ...t, audioChunks: t.audioChunks + 1 }));
        break;
      case "assistant_pcm_delta":
        player.current.playPcm16(event.pcmBase64, event.sampleRate);
        update(event.turnId, (t) => ({ ...t, audioChunks: t.audioChunks + 1 }));
        break;
      case "assistant_end":
        // Cut short (the person spoke over it, or Stop): nothing more of it may play.
        if (event.outcome === "interrupted" || event.outcome === "aborted") player.current.stop();
        setSpeaking(false);
        update(event.turnId, (t) => ({ ...t, outcome: event.outcome ?? "completed" }));
        break;
      case "timeline":
        update(event.turnId, (t) => ({
          ...t,
          spans: [...t.spans, { stage: event.stage, label: event.label, startMs: event.startMs, endMs: event.endMs }],
        }));
        break;
      case "reset_done":
        setTurns([]);
        setInterim("");
        break;
      case "error":
        setError(event.message);
        break;
      default:
        break;
    }
  };

  const connect = async (): Promise<WebSocket | null> => {
    setError(null);
    setLink("connecting");
    player.current.unlock();
    try {
      const { voiceSession } = await call((c) => c.POST("/api/runtime/voice-sessions", { body: { agentId } }));
      const ws = new WebSocket(voiceSession.url);
      ws.binaryType = "arraybuffer";
      socket.current = ws;
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error("The voice runtime refused the connection."));
      });
      ws.onmessage = (m: MessageEvent) => {
        if (typeof m.data !== "string") return;
        const event = parseEvent(m.data);
        if (event) onEvent(event);
      };
      ws.onclose = (e: CloseEvent) => {
        if (socket.current === ws) socket.current = null;
        stopMic(false);
        setLink("closed");
        setSpeaking(false);
        if (e.code !== 1000 && e.code !== 1005) setError(`The voice session closed (${e.code}${e.reason ? `: ${e.reason}` : ""}).`);
      };
      ws.onerror = null;
      setLink("open");
      return ws;
    } catch (e) {
      setError(messageOf(e));
      setLink("idle");
      return null;
    }
  };

  const send = (message: object): void => {
    const ws = socket.current;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  };

  const stopMic = (finalize: boolean): void => {
    mic.current?.stop();
    mic.current = null;
    setListening(false);
    if (finalize) send({ type: "finalize" });
  };

  const toggleMic = async (): Promise<void> => {
    if (listening) {
      stopMic(true);
      return;
    }
    player.current.unlock();
    const ws = socket.current ?? (await connect());
    if (!ws) return;
    try {
      mic.current = await openMic((pcm) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(pcm);
      });
      setListening(true);
    } catch (e) {
      setError(messageOf(e));
    }
  };

  const interrupt = (): void => {
    player.current.stop();
    send({ type: "interrupt" });
    setSpeaking(false);
  };

  const hangUp = (): void => {
    stopMic(false);
    player.current.stop();
    socket.current?.close(1000, "bye");
    socket.current = null;
    setLink("closed");
  };

  useEffect(
    () => () => {
      mic.current?.stop();
      socket.current?.close(1000, "page closed");
      player.current.close();
    },
    [],
  );

  return (
    <div class="talk">
      <div class="controls">
        <button
          type="button"
          class={`primary mic${listening ? " on" : ""}`}
          aria-pressed={listening}
          onClick={() => void toggleMic()}
          disabled={link === "connecting"}
        >
          {listening ? "Stop microphone" : link === "connecting" ? "Connecting…" : "Start talking"}
        </button>
        <button type="button" onClick={interrupt} disabled={!speaking}>
          Stop reply
        </button>
        <button type="button" onClick={() => send({ type: "reset" })} disabled={link !== "open"}>
          New conversation
        </button>
        <button type="button" onClick={hangUp} disabled={link !== "open"}>
          Hang up
        </button>
        <span class="status" role="status" data-link={link}>
          {link === "open" ? (listening ? "Listening" : "Connected") : link === "connecting" ? "Connecting" : link === "closed" ? "Disconnected" : "Not connected"}
        </span>
      </div>
      <ErrorBox error={error} />
      <p class="interim" aria-live="polite" data-testid="interim">
        {interim ? <>You: “{interim}”</> : listening ? "Say something…" : ""}
      </p>
      {turns.length === 0 ? (
        <Empty>
          <p>Press “Start talking”, speak, and pause: the agent answers when you stop.</p>
        </Empty>
      ) : (
        <ol class="turns" aria-label="Conversation">
          {turns.map((t, i) => (
            <li key={t.id} class="turn" data-turn={i + 1} data-audio-chunks={t.audioChunks}>
              <p class="you">
                <strong>You</strong> {t.user || "…"}
              </p>
              <p class="agent">
                <strong>Agent</strong> {t.reply || "…"}
              </p>
              <p class="meta">
                {t.audioChunks} audio chunk{t.audioChunks === 1 ? "" : "s"}
                {t.outcome && t.outcome !== "completed" ? ` · ${t.outcome}` : ""}
              </p>
              <Waterfall spans={t.spans} caption={`Timeline of turn ${i + 1}`} />
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

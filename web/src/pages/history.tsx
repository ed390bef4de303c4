/**
 * History: a Dot's or an agent's sessions, newest first and paged, each
 * opening onto its turns — transcript, reply, duration, the stages as a
 * waterfall, and the provider errors or fallbacks on the way — with the
 * p50 / p95 of each stage over the last 100 turns.
 */

import { useEffect, useState } from "preact/hooks";
import { call, type Schemas } from "../api/client";
import { useResource } from "../api/cache";
import { useAgents, useDevices } from "../api/resources";
import { href, navigate } from "../router";
import { Field } from "../ui/form";
import { Empty, ErrorBox, Loaded, Loading } from "../ui/status";
import { ms, stamp } from "../ui/time";
import { Waterfall, stageName } from "../ui/waterfall";

type SessionSummary = Schemas["SessionSummary"];
type TurnDetail = Schemas["TurnDetail"];
type SessionEvent = Schemas["SessionEvent"];

const PAGE = 20;

interface Filter {
  deviceId: string | null;
  agentId: string | null;
}

function query(filter: Filter) {
  return {
    deviceId: filter.deviceId ?? undefined,
    agentId: filter.agentId ?? undefined,
  };
}

export function HistoryPage({ deviceId, agentId }: Filter) {
  const devices = useDevices();
  const agents = useAgents();
  const filter: Filter = { deviceId, agentId };
  const key = `${deviceId ?? ""}|${agentId ?? ""}`;
  const choice = deviceId ? `device:${deviceId}` : agentId ? `agent:${agentId}` : "";
  return (
    <section>
      <h1>History</h1>
      <Field id="history-filter" label="Show">
        <select
          id="history-filter"
          value={choice}
          onChange={(e) => {
            const [kind, id] = e.currentTarget.value.split(":");
            navigate(kind && id ? `/history?${kind}=${id}` : "/history");
          }}
        >
          <option value="">Everything</option>
          <optgroup label="Dots">
            {(devices.data ?? []).map((d) => (
              <option key={d.id} value={`device:${d.id}`}>
                {d.name}
              </option>
            ))}
          </optgroup>
          <optgroup label="Agents">
            {(agents.data ?? []).map((a) => (
              <option key={a.id} value={`agent:${a.id}`}>
                {a.name}
              </option>
            ))}
          </optgroup>
        </select>
      </Field>
      <Latency key={`lat-${key}`} filter={filter} />
      <Sessions key={`s-${key}`} filter={filter} />
    </section>
  );
}

function Latency({ filter }: { filter: Filter }) {
  const stats = useResource(`latency:${filter.deviceId ?? ""}|${filter.agentId ?? ""}`, () =>
    call((c) => c.GET("/api/sessions/latency", { params: { query: query(filter) } })),
  );
  return (
    <section class="panel" aria-labelledby="latency-title">
      <h2 id="latency-title">Latency</h2>
      <Loaded resource={stats} what="latency">
        {(s) =>
          s.turns === 0 ? (
            <p class="muted">No turns yet.</p>
          ) : (
            <table class="stats">
              <caption>
                Over the last {s.turns} turn{s.turns === 1 ? "" : "s"}, after the speech ended
              </caption>
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col">p50</th>
                  <th scope="col">p95</th>
                  <th scope="col">Turns</th>
                </tr>
              </thead>
              <tbody>
                {s.stages.map((st) => (
                  <tr key={st.stage} data-stage={st.stage}>
                    <th scope="row">{stageName({ stage: st.stage, label: st.label, startMs: 0, endMs: 0 })}</th>
                    <td>{ms(st.p50Ms)}</td>
                    <td>{ms(st.p95Ms)}</td>
                    <td>{st.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
    </section>
  );
}

function Sessions({ filter }: { filter: Filter }) {
  const first = useResource(`sessions:${filter.deviceId ?? ""}|${filter.agentId ?? ""}`, () =>
    call((c) => c.GET("/api/sessions", { params: { query: { ...query(filter), limit: PAGE } } })),
  );
  const [older, setOlder] = useState<SessionSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);

  useEffect(() => {
    setOlder([]);
    setCursor(first.data?.next ?? null);
  }, [first.data]);

  const more = async (): Promise<void> => {
    if (!cursor) return;
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await call((c) =>
        c.GET("/api/sessions", { params: { query: { ...query(filter), before: cursor, limit: PAGE } } }),
      );
      setOlder((list) => [...list, ...page.sessions]);
      setCursor(page.next ?? null);
    } catch (e) {
      setMoreError(e);
    } finally {
      setLoadingMore(false);
    }
  };

  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <Loaded resource={first} what="sessions">
        {(page) => {
          const all = [...page.sessions, ...older];
          if (all.length === 0) {
            return (
              <Empty>
                <p>
                  No conversations yet. Talk to an agent on the <a href={href("/talk")}>Talk</a> page, or to a bound Dot.
                </p>
              </Empty>
            );
          }
          return (
            <>
              <ol class="sessions">
                {all.map((s) => (
                  <SessionRow key={s.id} session={s} />
                ))}
              </ol>
              <ErrorBox error={moreError} />
              {cursor && (
                <button type="button" onClick={() => void more()} disabled={loadingMore}>
                  {loadingMore ? "Loading…" : "Older sessions"}
                </button>
              )}
            </>
          );
        }}
      </Loaded>
    </section>
  );
}

function SessionRow({ session }: { session: SessionSummary }) {
  const [open, setOpen] = useState(false);
  const where = session.deviceName ?? (session.kind === "browser" ? "Browser" : "Dot");
  const id = `session-${session.id}`;
  return (
    <li class="session" data-session={session.id}>
      <button type="button" class="row" aria-expanded={open} aria-controls={id} onClick={() => setOpen(!open)}>
        <span class="when">{stamp(session.startedAt)}</span>
        <span>{where}</span>
        <span>{session.agentName ?? "no agent"}</span>
        <span>
          {session.turnCount} turn{session.turnCount === 1 ? "" : "s"}
        </span>
        <span class="muted">{session.status === "open" ? "live" : ms(session.durationMs)}</span>
      </button>
      {open && (
        <div id={id}>
          <SessionDetail sessionId={session.id} />
        </div>
      )}
    </li>
  );
}

function SessionDetail({ sessionId }: { sessionId: string }) {
  const detail = useResource(`session:${sessionId}`, () =>
    call((c) => c.GET("/api/sessions/{session_id}", { params: { path: { session_id: sessionId } } })),
  );
  if (!detail.data && !detail.error) return <Loading what="the turns" />;
  return (
    <Loaded resource={detail} what="the turns">
      {(d) => (
        <>
          {d.events.length > 0 && <Events events={d.events} />}
          {d.turns.length === 0 ? (
            <p class="muted">No turns in this session.</p>
          ) : (
            <ol class="turns">
              {d.turns.map((t) => (
                <TurnView key={t.id} turn={t} />
              ))}
            </ol>
          )}
        </>
      )}
    </Loaded>
  );
}

function TurnView({ turn }: { turn: TurnDetail }) {
  return (
    <li class="turn" data-turn-id={turn.id}>
      <p class="you">
        <strong>You</strong> {turn.transcript || <span class="muted">(nothing heard)</span>}
      </p>
      <p class="agent">
        <strong>Agent</strong> {turn.replyText || <span class="muted">(no reply)</span>}
      </p>
      <p class="meta">
        {stamp(turn.startedAt)} · {ms(turn.durationMs)} · <span class={`outcome ${turn.outcome}`}>{turn.outcome}</span>
        {turn.error ? ` · ${turn.error}` : ""}
      </p>
      <Waterfall spans={turn.stages} caption={`Stage timings of turn ${turn.turnIndex + 1}`} />
      {turn.events.length > 0 && <Events events={turn.events} />}
    </li>
  );
}

/** Provider errors and fallbacks as sentences ("STT fell back to local: deepgram timed out"). */
export function eventSentence(event: SessionEvent): string {
  const p = event.payload as Record<string, unknown>;
  const text = (k: string): string => (typeof p[k] === "string" ? (p[k] as string) : "");
  const stage = text("stage").toUpperCase();
  const reason = text("message") || text("reason") || text("error");
  if (event.kind.includes("fallback")) {
    const to = text("to") || text("provider");
    const from = text("from");
    // The runtime's message already names the provider that failed ("deepgram: …").
    const why = reason || (from ? `${from} failed` : "");
    return `${stage || "A stage"} fell back${to ? ` to ${to}` : ""}${why ? `: ${why}` : ""}`;
  }
  if (event.kind === "provider_error") return `${stage || "A provider"} error${reason ? `: ${reason}` : ""}`;
  if (event.kind === "protocol_error") return `Bad message from the client${reason ? `: ${reason}` : ""}`;
  const detail = Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
  return `${event.kind.replace(/[_.]/g, " ")}${detail ? `: ${detail}` : ""}`;
}

function Events({ events }: { events: SessionEvent[] }) {
  return (
    <ul class="events" aria-label="Events">
      {events.map((e, i) => (
        <li key={`${e.kind}-${i}`} data-kind={e.kind} class={e.kind.includes("error") ? "bad" : ""}>
          {eventSentence(e)}
        </li>
      ))}
    </ul>
  );
}

/**
 * One agent, stage by stage: the controls come from the stage descriptors the
 * API returns, an API error is shown at the field it names, and the edit is
 * kept as a draft until saved (a reload or an expired session loses nothing).
 * Versions: what changed between two of them, and restore.
 */

import { useEffect, useMemo, useState } from "preact/hooks";
import { call, type Agent, type Stage } from "../api/client";
import { invalidate, useResource } from "../api/cache";
import { fieldOf, messageOf } from "../api/errors";
import { keys, useAgent, useVersions } from "../api/resources";
import { clearDraft, loadDraft, saveDraft } from "../drafts";
import { href } from "../router";
import { useConfirm } from "../ui/confirm";
import { Field, value } from "../ui/form";
import { ErrorBox, Loaded, Loading } from "../ui/status";
import { ago, stamp } from "../ui/time";
import { changes, diff, draftOf, fieldKeys, providerOptions, type Draft } from "./agent-model";
import { RealtimeBlock } from "./agent-realtime";
import { ToolsBlock, type Flag } from "./agent-tools";
import { SettingField } from "./stage-fields";
import { toolsFieldOf } from "./tools-model";

/** A save or restore remounts the editor on the new version; this carries its notice over. */
const notices = new Map<string, string>();

function takeNotice(agentId: string): string | null {
  const found = notices.get(agentId) ?? null;
  notices.delete(agentId);
  return found;
}

interface Kept {
  baseVersion: number;
  draft: Draft;
}

export function AgentEditorPage({ agentId }: { agentId: string }) {
  const agent = useAgent(agentId);
  return (
    <section>
      <p>
        <a href={href("/agents")}>← All agents</a>
      </p>
      <Loaded resource={agent} what="the agent">
        {(a) => <Editor key={`${a.id}:${a.version}`} agent={a} />}
      </Loaded>
    </section>
  );
}

function Editor({ agent }: { agent: Agent }) {
  const draftKey = `agent:${agent.id}`;
  const base = useMemo(() => draftOf(agent), [agent]);
  const kept = loadDraft<Kept>(draftKey);
  const [draft, setDraftState] = useState<Draft>(kept ? { ...base, ...kept.draft } : base);
  const [restored] = useState(kept !== null && Object.keys(changes(base, kept.draft)).length > 0);
  const [saving, setSaving] = useState(false);
  const [errors, setErrors] = useState<{ field: string | null; message: string } | null>(null);
  const [saved, setSaved] = useState<string | null>(() => takeNotice(agent.id));
  // Fields whose text does not parse yet (a webhook's JSON schema): no save until fixed.
  const [unparsed, setUnparsed] = useState<Record<string, string>>({});
  const flag: Flag = (key, message) =>
    setUnparsed((now) => {
      const next = { ...now };
      if (message !== null) next[key] = message;
      else for (const k of Object.keys(next)) if (k === key || (key.endsWith("-") && k.startsWith(key))) delete next[k];
      return next;
    });

  const pending = changes(base, draft);
  const dirty = Object.keys(pending).length > 0;

  const setDraft = (next: Draft): void => {
    setDraftState(next);
    setSaved(null);
    if (Object.keys(changes(base, next)).length) saveDraft(draftKey, { baseVersion: agent.version, draft: next });
    else clearDraft(draftKey);
  };

  const setStage = (index: number, stage: Stage): void => {
    const pipeline = draft.pipeline.slice();
    pipeline[index] = stage;
    setDraft({ ...draft, pipeline });
  };

  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (!dirty) return;
    const [field, problem] = Object.entries(unparsed)[0] ?? [];
    if (field && problem) {
      setErrors({ field, message: problem });
      document.getElementById(field)?.focus();
      return;
    }
    setSaving(true);
    setErrors(null);
    try {
      const answer = await call((c) =>
        c.PUT("/api/agents/{agent_id}", { params: { path: { agent_id: agent.id } }, body: pending }),
      );
      clearDraft(draftKey);
      notices.set(agent.id, `Saved as version ${answer.agent.version}.`);
      setSaved(`Saved as version ${answer.agent.version}.`);
      invalidate(keys.agents, keys.agent(agent.id), keys.versions(agent.id), keys.devices);
    } catch (error) {
      const message = messageOf(error);
      // A sentence about the tools block is placed by its own rules first: "webhook 1
      // needs a name" is not about the agent's name.
      setErrors({ field: toolsFieldOf(message, draft.tools) ?? fieldOf(message, fieldKeys(draft)), message });
    } finally {
      setSaving(false);
    }
  };

  const errorAt = (key: string): string | null =>
    errors?.field === key ? errors.message : (unparsed[key] ?? null);

  return (
    <>
      <h1>{agent.name}</h1>
      <p class="meta">
        Version {agent.version} · <span title={stamp(agent.updatedAt)}>edited {ago(agent.updatedAt)}</span> ·{" "}
        <a href={href(`/talk?agent=${agent.id}`)}>Talk to it</a> · <a href={href(`/history?agent=${agent.id}`)}>History</a>
      </p>
      {restored && dirty && (
        <p class="state notice" role="status">
          Your unsaved changes were kept. Review them and save.
        </p>
      )}
      <form class="editor" onSubmit={(e) => void save(e)} aria-label="Agent configuration">
        <fieldset>
          <legend>General</legend>
          <Field id="agent-name" label="Name" error={errorAt("name")}>
            <input id="agent-name" required maxLength={200} value={draft.name} onInput={(e) => setDraft({ ...draft, name: value(e) })} />
          </Field>
          <Field id="agent-description" label="Description" error={errorAt("description")}>
            <textarea id="agent-description" rows={2} maxLength={4000} value={draft.description} onInput={(e) => setDraft({ ...draft, description: value(e) })} />
          </Field>
          <Field id="agent-architecture" label="Architecture" error={errorAt("architecture")}>
            <select
              id="agent-architecture"
              value={draft.architecture}
              onChange={(e) => setDraft({ ...draft, architecture: e.currentTarget.value as Draft["architecture"] })}
            >
              <option value="sandwich">Pipeline: VAD → STT → LLM → TTS</option>
              <option value="speech_to_speech">Speech-to-speech (realtime model)</option>
            </select>
          </Field>
        </fieldset>

        {draft.architecture === "speech_to_speech" && (
          <RealtimeBlock realtime={draft.realtime} errorAt={errorAt} onChange={(realtime) => setDraft({ ...draft, realtime })} />
        )}

        {draft.pipeline.map((stage, index) => (
          <StageCard key={stage.id} stage={stage} errorAt={errorAt} onChange={(s) => setStage(index, s)} />
        ))}

        <ToolsBlock tools={draft.tools} errorAt={errorAt} flag={flag} onChange={(tools) => setDraft({ ...draft, tools })} />

        <div class="savebar">
          {errors && !errors.field && <ErrorBox error={errors.message} />}
          {errors?.field && (
            <p class="state error" role="alert">
              Not saved: {errors.message}
            </p>
          )}
          {saved && (
            <p class="state notice" role="status">
              {saved}
            </p>
          )}
          <button type="submit" class="primary" disabled={!dirty || saving}>
            {saving ? "Saving…" : dirty ? "Save changes" : "No changes"}
          </button>
          {dirty && (
            <button type="button" onClick={() => { setDraft(base); setErrors(null); setUnparsed({}); }}>
              Discard changes
            </button>
          )}
        </div>
      </form>
      <Versions agent={agent} />
    </>
  );
}

function StageCard({
  stage,
  errorAt,
  onChange,
}: {
  stage: Stage;
  errorAt: (key: string) => string | null;
  onChange: (stage: Stage) => void;
}) {
  const id = `stage-${stage.id}`;
  const models = stage.modelOptions ?? [];
  const custom = stage["allowCustomModel"] !== false;
  return (
    <fieldset class="stage" id={id}>
      <legend>
        {stage.label || stage.id} <span class="tag">{stage.id}</span>
      </legend>
      {stage.purpose && <p class="muted">{stage.purpose}</p>}
      <div class="grid">
        <Field id={`${id}-provider`} label="Provider" error={errorAt(`${stage.id}.provider`)}>
          <select id={`${id}-provider`} value={stage.provider} onChange={(e) => onChange({ ...stage, provider: e.currentTarget.value })}>
            {providerOptions(stage).map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field id={`${id}-model`} label="Model" error={errorAt(`${stage.id}.model`)}>
          {custom ? (
            <>
              <input id={`${id}-model`} list={`${id}-models`} value={stage.model} onInput={(e) => onChange({ ...stage, model: value(e) })} />
              <datalist id={`${id}-models`}>
                {models.map((m) => (
                  <option key={m} value={m} />
                ))}
              </datalist>
            </>
          ) : (
            <select id={`${id}-model`} value={stage.model} onChange={(e) => onChange({ ...stage, model: e.currentTarget.value })}>
              {models.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          )}
        </Field>
        {(stage.settings ?? []).map((setting, i) => (
          <SettingField
            key={setting.key}
            id={`${id}-${setting.key}`}
            setting={setting}
            error={errorAt(`${stage.id}.${setting.key}`)}
            onChange={(v) => {
              const settings = (stage.settings ?? []).slice();
              settings[i] = { ...setting, value: v };
              onChange({ ...stage, settings });
            }}
          />
        ))}
      </div>
    </fieldset>
  );
}

function useVersionContent(agentId: string, version: number | null) {
  return useResource(version === null ? null : keys.version(agentId, version), () =>
    call((c) =>
      c.GET("/api/agents/{agent_id}/versions/{version}", {
        params: { path: { agent_id: agentId, version: version ?? 0 } },
      }),
    ).then((d) => d.agent),
  );
}

function Versions({ agent }: { agent: Agent }) {
  const versions = useVersions(agent.id);
  const [older, setOlder] = useState<number | null>(null);
  const [newer, setNewer] = useState<number | null>(null);
  const [confirm, ask] = useConfirm();

  useEffect(() => {
    const list = versions.data;
    if (!list?.length) return;
    setNewer(list[0]?.version ?? null);
    setOlder(list[1]?.version ?? list[0]?.version ?? null);
  }, [versions.data]);

  const a = useVersionContent(agent.id, older);
  const b = useVersionContent(agent.id, newer);
  const changed = a.data && b.data ? diff(draftOf(a.data), draftOf(b.data)) : null;

  return (
    <section class="versions" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <Loaded resource={versions} what="versions">
        {(list) => (
          <>
            <ol class="version-list">
              {list.map((v) => (
                <li key={v.version}>
                  <strong>Version {v.version}</strong>
                  {v.current && <span class="tag">current</span>} <span class="muted" title={stamp(v.createdAt)}>{ago(v.createdAt)}</span>
                  {!v.current && (
                    <button
                      type="button"
                      aria-label={`Restore version ${v.version}`}
                      onClick={() =>
                        ask({
                          title: `Restore version ${v.version}?`,
                          body: `Its configuration becomes a new version ${list[0] ? list[0].version + 1 : ""}; nothing is deleted.`,
                          action: "Restore",
                          onConfirm: async () => {
                            await call((c) =>
                              c.POST("/api/agents/{agent_id}/versions/{version}/restore", {
                                params: { path: { agent_id: agent.id, version: v.version } },
                              }),
                            );
                            clearDraft(`agent:${agent.id}`);
                            notices.set(agent.id, `Restored version ${v.version} as a new version.`);
                            invalidate(keys.agents, keys.agent(agent.id), keys.versions(agent.id), keys.devices);
                          },
                        })
                      }
                    >
                      Restore
                    </button>
                  )}
                </li>
              ))}
            </ol>
            {list.length > 1 && (
              <div class="compare">
                <h3>What changed</h3>
                <div class="inline-form">
                  <Field id="diff-older" label="From version">
                    <select id="diff-older" value={String(older ?? "")} onChange={(e) => setOlder(Number(e.currentTarget.value))}>
                      {list.map((v) => (
                        <option key={v.version} value={v.version}>
                          {v.version}
                        </option>
                      ))}
                    </select>
                  </Field>
                  <Field id="diff-newer" label="To version">
                    <select id="diff-newer" value={String(newer ?? "")} onChange={(e) => setNewer(Number(e.currentTarget.value))}>
                      {list.map((v) => (
                        <option key={v.version} value={v.version}>
                          {v.version}
                        </option>
                      ))}
                    </select>
                  </Field>
                </div>
                {(a.error || b.error) && <ErrorBox error={a.error ?? b.error} />}
                {!changed && !(a.error || b.error) && <Loading what="the versions" />}
                {changed && changed.length === 0 && <p class="muted">No differences.</p>}
                {changed && changed.length > 0 && (
                  <table class="diff">
                    <caption class="sr-only">Settings that differ between version {older} and version {newer}</caption>
                    <thead>
                      <tr>
                        <th scope="col">Setting</th>
                        <th scope="col">Version {older}</th>
                        <th scope="col">Version {newer}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {changed.map((c) => (
                        <tr key={c.path}>
                          <th scope="row">{c.label}</th>
                          <td class="before">{c.before}</td>
                          <td class="after">{c.after}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </div>
            )}
          </>
        )}
      </Loaded>
      {confirm}
    </section>
  );
}

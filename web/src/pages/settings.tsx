/**
 * Settings: profile, workspace and time zone (checked by the API), SDK API
 * keys (the token shown once, with a copy button; revoke), user secrets (set,
 * replace, delete — never shown back) and which providers this deployment offers.
 */

import { useMemo, useState } from "preact/hooks";
import { call, type UserSettings } from "../api/client";
import { invalidate, useResource } from "../api/cache";
import { fieldOf, unreachable } from "../api/errors";
import { keys, useApiKeys, useAuthConfig, useSecrets, useSettings } from "../api/resources";
import { config } from "../context";
import { useConfirm } from "../ui/confirm";
import { Field, useAction, value } from "../ui/form";
import { Empty, Loaded } from "../ui/status";
import { ago, stamp } from "../ui/time";

export function SettingsPage() {
  const settings = useSettings();
  return (
    <section>
      <h1>Settings</h1>
      <Loaded resource={settings} what="your settings">
        {/* Not keyed by the data: the reload after a save must not remount the form,
            which would take its "Saved." away before anyone (or any test) saw it. */}
        {(s) => <Profile settings={s} />}
      </Loaded>
      <ApiKeys />
      <Secrets />
      <Providers />
    </section>
  );
}

function zones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return intl.supportedValuesOf?.("timeZone") ?? [];
  } catch {
    return [];
  }
}

function Profile({ settings }: { settings: UserSettings }) {
  const [form, setForm] = useState(settings);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const zoneList = useMemo(zones, []);
  const fields = ["displayName", "email", "workspaceName", "timezone", "compactMode"];
  const errorField = action.error ? fieldOf(action.error, fields) : null;
  const errorAt = (k: string): string | null => (errorField === k ? action.error : null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setSaved(false);
    const body: Record<string, unknown> = {};
    for (const k of fields) {
      const key = k as keyof UserSettings;
      if (form[key] !== settings[key]) body[k] = form[key];
    }
    if (!Object.keys(body).length) {
      // Nothing differs from what is stored (say, a bad value typed back to the saved
      // one): the earlier error no longer applies, and what is shown is what is saved.
      action.setError(null);
      setSaved(true);
      return;
    }
    const ok = await action.run(async () => {
      await call((c) => c.PUT("/api/settings", { body }));
      invalidate(keys.settings);
    });
    setSaved(ok);
  };

  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="profile-title">
      <h2 id="profile-title">Profile and workspace</h2>
      <div class="grid">
        <Field id="set-name" label="Display name" error={errorAt("displayName")}>
          <input id="set-name" required maxLength={200} value={form.displayName} onInput={(e) => setForm({ ...form, displayName: value(e) })} />
        </Field>
        <Field id="set-email" label="Email" error={errorAt("email")}>
          <input id="set-email" type="email" maxLength={320} value={form.email} onInput={(e) => setForm({ ...form, email: value(e) })} />
        </Field>
        <Field id="set-workspace" label="Workspace name" error={errorAt("workspaceName")}>
          <input id="set-workspace" maxLength={200} value={form.workspaceName} onInput={(e) => setForm({ ...form, workspaceName: value(e) })} />
        </Field>
        <Field id="set-timezone" label="Time zone" error={errorAt("timezone")} hint="An IANA name, such as Europe/Zurich.">
          <input id="set-timezone" list="zones" maxLength={64} value={form.timezone} onInput={(e) => setForm({ ...form, timezone: value(e) })} />
          <datalist id="zones">
            {zoneList.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </Field>
      </div>
      <label class="check">
        <input type="checkbox" checked={form.compactMode} onChange={(e) => setForm({ ...form, compactMode: e.currentTarget.checked })} />
        Compact mode
      </label>
      {action.error && !errorField && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
      {saved && (
        <p class="state notice" role="status">
          Saved.
        </p>
      )}
      <button type="submit" class="primary" disabled={action.busy}>
        Save settings
      </button>
    </form>
  );
}

function ApiKeys() {
  const list = useApiKeys();
  const [name, setName] = useState("");
  const [fresh, setFresh] = useState<{ name: string; token: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const action = useAction();
  const [confirm, ask] = useConfirm();

  const create = async (event: Event): Promise<void> => {
    event.preventDefault();
    setCopied(false);
    await action.run(async () => {
      const { apiKey } = await call((c) => c.POST("/api/api-keys", { body: { name: name.trim() } }));
      if (apiKey?.token) setFresh({ name: apiKey.name, token: apiKey.token });
      setName("");
      invalidate(keys.apiKeys);
    });
  };

  const copy = async (token: string): Promise<void> => {
    try {
      await navigator.clipboard.writeText(token);
      setCopied(true);
    } catch {
      setCopied(false);
      (document.getElementById("new-key-token") as HTMLInputElement | null)?.select();
    }
  };

  return (
    <section class="panel" aria-labelledby="keys-title">
      <h2 id="keys-title">SDK API keys</h2>
      <form class="inline-form" onSubmit={(e) => void create(e)}>
        <Field id="key-name" label="New key name" error={action.error}>
          <input id="key-name" required maxLength={120} value={name} onInput={(e) => setName(value(e))} />
        </Field>
        <button type="submit" class="primary" disabled={action.busy}>
          Create key
        </button>
      </form>
      {fresh && (
        <div class="state notice" role="status">
          <p>
            Copy the key <strong>{fresh.name}</strong> now: it is shown only once.
          </p>
          <div class="inline-form">
            <label class="sr-only" for="new-key-token">
              New API key
            </label>
            <input id="new-key-token" readOnly value={fresh.token} onFocus={(e) => e.currentTarget.select()} />
            <button type="button" onClick={() => void copy(fresh.token)}>
              {copied ? "Copied" : "Copy"}
            </button>
            <button type="button" onClick={() => setFresh(null)}>
              Done
            </button>
          </div>
        </div>
      )}
      <Loaded resource={list} what="API keys">
        {(items) =>
          items.length === 0 ? (
            <Empty>
              <p>No API keys.</p>
            </Empty>
          ) : (
            <table class="list">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((k) => (
                  <tr key={k.id} data-key={k.name}>
                    <th scope="row">{k.name}</th>
                    <td>
                      <code>{k.prefix}…</code>
                    </td>
                    <td class={`key-status ${k.status}`}>{k.status}</td>
                    <td title={stamp(k.lastUsedAt)}>{ago(k.lastUsedAt)}</td>
                    <td>
                      {k.status === "active" && (
                        <button
                          type="button"
                          class="danger"
                          aria-label={`Revoke ${k.name}`}
                          onClick={() =>
                            ask({
                              title: `Revoke ${k.name}?`,
                              body: "Anything using this key stops working at once.",
                              action: "Revoke key",
                              onConfirm: async () => {
                                await call((c) => c.POST("/api/api-keys/{key_id}/revoke", { params: { path: { key_id: k.id } } }));
                                invalidate(keys.apiKeys);
                              },
                            })
                          }
                        >
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      {confirm}
    </section>
  );
}

function Secrets() {
  const list = useSecrets();
  const [name, setName] = useState("");
  const [secret, setSecret] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const [confirm, ask] = useConfirm();

  const put = async (event: Event): Promise<void> => {
    event.preventDefault();
    setDone(null);
    const n = name.trim();
    const ok = await action.run(async () => {
      await call((c) => c.PUT("/api/secrets/{name}", { params: { path: { name: n } }, body: { value: secret } }));
      invalidate(keys.secrets);
    });
    if (ok) {
      setDone(`Stored ${n}. Name it as an agent stage's API key name to use it.`);
      setName("");
      setSecret("");
    }
  };

  return (
    <section class="panel" aria-labelledby="secrets-title">
      <h2 id="secrets-title">Secrets</h2>
      <p class="muted">Provider keys for your agents. They are stored encrypted and never shown again.</p>
      <form class="inline-form" onSubmit={(e) => void put(e)}>
        <Field id="secret-name" label="Name" hint="UPPER_SNAKE_CASE, e.g. OPENAI_API_KEY">
          <input id="secret-name" required maxLength={64} value={name} onInput={(e) => setName(value(e).toUpperCase())} />
        </Field>
        <Field id="secret-value" label="Value">
          <input id="secret-value" type="password" autoComplete="off" required maxLength={8192} value={secret} onInput={(e) => setSecret(value(e))} />
        </Field>
        <button type="submit" class="primary" disabled={action.busy}>
          Set secret
        </button>
      </form>
      {action.error && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
      {done && (
        <p class="state notice" role="status">
          {done}
        </p>
      )}
      <Loaded resource={list} what="secrets">
        {(items) =>
          items.length === 0 ? (
            <Empty>
              <p>No secrets stored.</p>
            </Empty>
          ) : (
            <ul class="plain">
              {items.map((s) => (
                <li key={s.name} data-secret={s.name}>
                  <code>{s.name}</code> <span class="muted">set {ago(s.updatedAt)}</span>{" "}
                  <button type="button" onClick={() => setName(s.name)} aria-label={`Replace ${s.name}`}>
                    Replace
                  </button>{" "}
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete ${s.name}`}
                    onClick={() =>
                      ask({
                        title: `Delete ${s.name}?`,
                        body: "Agents that name it fall back to the operator's keys or the offline engines.",
                        action: "Delete secret",
                        onConfirm: async () => {
                          await call((c) => c.DELETE("/api/secrets/{name}", { params: { path: { name: s.name } } }));
                          setDone(null);
                          invalidate(keys.secrets);
                        },
                      })
                    }
                  >
                    Delete
                  </button>
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
      {confirm}
    </section>
  );
}

interface Health {
  providers?: Record<string, unknown>;
  version?: string;
}

const PROVIDER_NAMES: [string, string][] = [
  ["openaiConfigured", "OpenAI (LLM, speech to text, text to speech)"],
  ["deepgramConfigured", "Deepgram (speech to text, text to speech)"],
  ["azureConfigured", "Azure Speech"],
  ["local", "Offline engines (Whisper, Piper, echo model)"],
];

function Providers() {
  const runtime = config().runtimeHttpUrl;
  const auth = useAuthConfig();
  const health = useResource(`runtime-health:${runtime}`, async (): Promise<Health> => {
    let response: Response;
    try {
      response = await fetch(`${runtime.replace(/\/+$/, "")}/health`);
    } catch {
      throw unreachable("voice runtime", runtime);
    }
    return (await response.json()) as Health;
  });
  return (
    <section class="panel" aria-labelledby="providers-title">
      <h2 id="providers-title">What this deployment offers</h2>
      <Loaded resource={health} what="the runtime's providers">
        {(h) => (
          <ul class="plain providers">
            {PROVIDER_NAMES.map(([key, label]) => {
              const on = h.providers?.[key] === true;
              return (
                <li key={key} data-provider={key} data-on={on}>
                  <span class={`status ${on ? "online" : "offline"}`}>
                    <span class="dot-mark" aria-hidden="true" />
                    {on ? "Available" : "Not configured"}
                  </span>{" "}
                  {label}
                </li>
              );
            })}
            {h.providers?.["allowPrivateBaseUrls"] === true && <li>Private base URLs (a local model server) are allowed.</li>}
          </ul>
        )}
      </Loaded>
      <Loaded resource={auth} what="sign-in options">
        {(a) => (
          <p class="muted">
            Sign-in: {a.localAuthEnabled ? "email and password" : "local accounts off"}
            {a.supabaseConfigured ? "; Supabase Auth" : ""}.
          </p>
        )}
      </Loaded>
    </section>
  );
}

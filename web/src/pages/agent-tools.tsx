/**
 * The agent's Tools section: the Dot's own tools, built-ins, webhooks, remote
 * MCP servers, vision, and the per-turn limits. Secrets are chosen by name
 * (the owner's stored secrets are offered); their values never come here.
 * Text that must parse (the parameters' JSON, one-per-line lists) keeps what
 * the person typed while it is incomplete and reports it before a save.
 */

import { useState } from "preact/hooks";
import { useSecrets } from "../api/resources";
import { Field, value } from "../ui/form";
import {
  BUILTINS,
  DEVICE_TOOL_SUGGESTIONS,
  METHODS,
  lines,
  newServer,
  newWebhook,
  type Header,
  type McpServer,
  type Tools,
  type Webhook,
} from "./tools-model";

type ErrorAt = (key: string) => string | null;
/** Report (or clear, with null) a field whose text does not parse yet. */
export type Flag = (key: string, message: string | null) => void;

/**
 * Text shown for `current`: what was typed while it still stands for `current`,
 * else `current` freshly shown (a discard, a removed entry above, a restore).
 */
function useTyped<T>(current: T, show: (v: T) => string): [string, (text: string, parsed: T | null) => void] {
  const now = JSON.stringify(current);
  const [typed, setTyped] = useState<{ text: string; stands: string } | null>(null);
  const text = typed && typed.stands === now ? typed.text : show(current);
  const set = (next: string, parsed: T | null): void =>
    setTyped({ text: next, stands: parsed === null ? now : JSON.stringify(parsed) });
  return [text, set];
}

function ListField({
  id,
  label,
  hint,
  list,
  error,
  onChange,
}: {
  id: string;
  label: string;
  hint: string;
  list: string[];
  error: string | null;
  onChange: (next: string[]) => void;
}) {
  const [text, setText] = useTyped(list, (l) => l.join("\n"));
  return (
    <Field id={id} label={label} error={error} hint={hint}>
      <textarea
        id={id}
        rows={2}
        value={text}
        aria-describedby={error ? `${id}-error` : `${id}-hint`}
        onInput={(e) => {
          const next = lines(value(e));
          setText(value(e), next);
          onChange(next);
        }}
      />
    </Field>
  );
}

function JsonField({
  id,
  label,
  hint,
  json,
  error,
  flag,
  onChange,
}: {
  id: string;
  label: string;
  hint: string;
  json: Record<string, unknown>;
  error: string | null;
  flag: Flag;
  onChange: (next: Record<string, unknown>) => void;
}) {
  const [text, setText] = useTyped(json, (v) => JSON.stringify(v, null, 2));
  return (
    <Field id={id} label={label} error={error} hint={hint}>
      <textarea
        id={id}
        rows={6}
        class="code"
        spellcheck={false}
        value={text}
        aria-describedby={error ? `${id}-error` : `${id}-hint`}
        onInput={(e) => {
          const raw = value(e);
          let parsed: unknown;
          try {
            parsed = JSON.parse(raw);
          } catch (problem) {
            setText(raw, null);
            flag(id, `${label} is not valid JSON yet (${problem instanceof Error ? problem.message : "parse error"}).`);
            return;
          }
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
            setText(raw, null);
            flag(id, `${label} must be a JSON object, such as {"type": "object"}.`);
            return;
          }
          const object = parsed as Record<string, unknown>;
          setText(raw, object);
          flag(id, null);
          onChange(object);
        }}
      />
    </Field>
  );
}

function Switch({ id, label, checked, onChange }: { id: string; label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <div class="field switch">
      <label class="check">
        <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.currentTarget.checked)} />
        {label}
      </label>
    </div>
  );
}

function intOf(raw: string): number | string {
  return raw === "" ? raw : Number(raw);
}

export function ToolsBlock({
  tools,
  errorAt,
  flag,
  onChange,
}: {
  tools: Tools;
  errorAt: ErrorAt;
  flag: Flag;
  onChange: (next: Tools) => void;
}) {
  const secrets = useSecrets();
  const secretNames = (secrets.data ?? []).map((s) => s.name);
  const set = <K extends keyof Tools>(key: K, next: Tools[K]): void => onChange({ ...tools, [key]: next });
  const sectionError = errorAt("tools");

  const setHook = (i: number, hook: Webhook): void => {
    const webhooks = tools.webhooks.slice();
    webhooks[i] = hook;
    set("webhooks", webhooks);
  };
  const setServer = (i: number, server: McpServer): void => {
    const servers = tools.mcpServers.slice();
    servers[i] = server;
    set("mcpServers", servers);
  };
  // Entries below a removed one move up: forget what their text fields reported.
  const forgetFlags = (prefix: string): void => flag(prefix, null);

  return (
    <fieldset class="stage tools" id="tools">
      <legend>
        Tools <span class="tag">tools</span>
      </legend>
      <p class="muted">
        What the agent may do besides talk. A tool's answer goes back to the model as data, never as instructions.
      </p>
      {sectionError && (
        <p class="state error" role="alert">
          {sectionError}
        </p>
      )}
      <datalist id="secret-names">
        {secretNames.map((n) => (
          <option key={n} value={n} />
        ))}
      </datalist>
      <datalist id="device-tool-names">
        {DEVICE_TOOL_SUGGESTIONS.map((n) => (
          <option key={n} value={n} />
        ))}
      </datalist>

      <div class="grid">
        <Field id="tools-max-calls" label="Tool calls per turn (at most)" error={errorAt("tools.maxCallsPerTurn")}>
          <input
            id="tools-max-calls"
            type="number"
            min={1}
            max={20}
            step={1}
            value={tools.maxCallsPerTurn}
            onInput={(e) => set("maxCallsPerTurn", intOf(value(e)) as number)}
          />
        </Field>
        <Field id="tools-timeout" label="Time per call (s)" error={errorAt("tools.callTimeoutS")}>
          <input
            id="tools-timeout"
            type="number"
            min={1}
            max={60}
            step={1}
            value={tools.callTimeoutS}
            onInput={(e) => set("callTimeoutS", intOf(value(e)) as number)}
          />
        </Field>
        <Switch
          id="tools-filler"
          label="Say a filler while a tool runs long"
          checked={tools.filler.enabled}
          onChange={(enabled) => set("filler", { ...tools.filler, enabled })}
        />
        <Field id="tools-filler-text" label="Filler" error={errorAt("tools.filler.text")}>
          <input
            id="tools-filler-text"
            maxLength={80}
            value={tools.filler.text}
            disabled={!tools.filler.enabled}
            onInput={(e) => set("filler", { ...tools.filler, text: value(e) })}
          />
        </Field>
      </div>

      <fieldset class="nested">
        <legend>The Dot's own tools</legend>
        <Switch
          id="tools-device"
          label="Offer the tools the Dot declares (volume, brightness, camera…)"
          checked={tools.device.enabled}
          onChange={(enabled) => set("device", { ...tools.device, enabled })}
        />
        {tools.device.enabled && (
          <div class="grid">
            <ListField
              id="tools-device-allow-user-only"
              label="User-only tools the model may call"
              hint="One tool name per line, e.g. self.reboot. Tools the Dot marks user-only are hidden from the model unless listed here."
              list={tools.device.allowUserOnly}
              error={errorAt("tools.device.allowUserOnly")}
              onChange={(allowUserOnly) => set("device", { ...tools.device, allowUserOnly })}
            />
            <ListField
              id="tools-device-deny"
              label="Never offer these device tools"
              hint="One tool name per line, e.g. self.camera.take_photo."
              list={tools.device.deny}
              error={errorAt("tools.device.deny")}
              onChange={(deny) => set("device", { ...tools.device, deny })}
            />
          </div>
        )}
      </fieldset>

      <fieldset class="nested checks" aria-describedby={errorAt("tools.builtins") ? "tools-builtins-error" : undefined}>
        <legend>Built-in tools</legend>
        {BUILTINS.map((b) => (
          <label key={b.key} class="check">
            <input
              type="checkbox"
              checked={tools.builtins[b.key] !== false}
              onChange={(e) => set("builtins", { ...tools.builtins, [b.key]: e.currentTarget.checked })}
            />
            {b.label} <span class="muted">({b.hint})</span>
          </label>
        ))}
        {errorAt("tools.builtins") && (
          <small class="field-error" id="tools-builtins-error" role="alert">
            {errorAt("tools.builtins")}
          </small>
        )}
      </fieldset>

      <fieldset class="nested">
        <legend>Webhooks</legend>
        {tools.webhooks.length === 0 && (
          <p class="muted">No webhooks. A webhook lets the agent call one of your HTTPS endpoints with arguments the model fills in.</p>
        )}
        {tools.webhooks.map((hook, i) => (
          <WebhookCard
            key={i}
            index={i}
            hook={hook}
            errorAt={errorAt}
            flag={flag}
            onChange={(h) => setHook(i, h)}
            onRemove={() => {
              forgetFlags("tools-webhook-");
              set("webhooks", tools.webhooks.filter((_, j) => j !== i));
            }}
          />
        ))}
        <button type="button" onClick={() => set("webhooks", [...tools.webhooks, newWebhook()])} disabled={tools.webhooks.length >= 16}>
          Add webhook
        </button>
      </fieldset>

      <fieldset class="nested">
        <legend>Remote MCP servers</legend>
        {tools.mcpServers.length === 0 && (
          <p class="muted">No MCP servers. The agent can use the tools of an MCP server you run (streamable HTTP).</p>
        )}
        {tools.mcpServers.map((server, i) => (
          <ServerCard
            key={i}
            index={i}
            server={server}
            errorAt={errorAt}
            onChange={(s) => setServer(i, s)}
            onRemove={() => set("mcpServers", tools.mcpServers.filter((_, j) => j !== i))}
          />
        ))}
        <button type="button" onClick={() => set("mcpServers", [...tools.mcpServers, newServer()])} disabled={tools.mcpServers.length >= 4}>
          Add MCP server
        </button>
      </fieldset>

      <fieldset class="nested">
        <legend>Vision</legend>
        <Switch
          id="tools-vision"
          label="Let the Dot's camera ask a vision model"
          checked={tools.vision.enabled}
          onChange={(enabled) => set("vision", { ...tools.vision, enabled })}
        />
        {tools.vision.enabled && (
          <div class="grid">
            <Field id="tools-vision-model" label="Vision model" error={errorAt("tools.vision.model")}>
              <input id="tools-vision-model" maxLength={128} value={tools.vision.model} onInput={(e) => set("vision", { ...tools.vision, model: value(e) })} />
            </Field>
            <Field id="tools-vision-base-url" label="Base URL (empty: OpenAI)" error={errorAt("tools.vision.baseUrl")}>
              <input
                id="tools-vision-base-url"
                type="url"
                placeholder="https://api.openai.com/v1"
                value={tools.vision.baseUrl}
                onInput={(e) => set("vision", { ...tools.vision, baseUrl: value(e) })}
              />
            </Field>
            <Field id="tools-vision-key" label="API key (secret name)" error={errorAt("tools.vision.apiKeyName")}>
              <input
                id="tools-vision-key"
                list="secret-names"
                autoComplete="off"
                value={tools.vision.apiKeyName}
                onInput={(e) => set("vision", { ...tools.vision, apiKeyName: value(e) })}
              />
            </Field>
          </div>
        )}
      </fieldset>
    </fieldset>
  );
}

function WebhookCard({
  index,
  hook,
  errorAt,
  flag,
  onChange,
  onRemove,
}: {
  index: number;
  hook: Webhook;
  errorAt: ErrorAt;
  flag: Flag;
  onChange: (next: Webhook) => void;
  onRemove: () => void;
}) {
  const id = `tools-webhook-${index}`;
  const key = `tools.webhooks.${index}`;
  const title = hook.name || `Webhook ${index + 1}`;
  const put = (patch: Partial<Webhook>): void => onChange({ ...hook, ...patch });
  const setHeader = (i: number, header: Header): void => {
    const headers = hook.headers.slice();
    headers[i] = header;
    put({ headers });
  };
  const headersError = errorAt(`${key}.headers`);
  return (
    <div class="entry webhook" data-webhook={hook.name} role="group" aria-labelledby={`${id}-title`}>
      <div class="dot-head">
        <h3 id={`${id}-title`}>{title}</h3>
        <button type="button" class="danger" aria-label={`Remove ${title}`} onClick={onRemove}>
          Remove
        </button>
      </div>
      <div class="grid">
        <Field id={`${id}-name`} label="Tool name" error={errorAt(`${key}.name`)} hint="Letters, digits, _ or -.">
          <input id={`${id}-name`} maxLength={48} autoComplete="off" value={hook.name} onInput={(e) => put({ name: value(e) })} />
        </Field>
        <Field id={`${id}-method`} label="Method" error={errorAt(`${key}.method`)}>
          <select id={`${id}-method`} value={hook.method} onChange={(e) => put({ method: e.currentTarget.value })}>
            {METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </Field>
        <Field id={`${id}-url`} label="URL" error={errorAt(`${key}.url`)} hint="https:// (plain http only for a local service).">
          <input id={`${id}-url`} inputMode="url" autoComplete="off" value={hook.url} onInput={(e) => put({ url: value(e) })} />
        </Field>
        <Field id={`${id}-timeout`} label="Timeout (s, optional)" error={errorAt(`${key}.timeoutS`)}>
          <input
            id={`${id}-timeout`}
            type="number"
            min={1}
            max={30}
            step={1}
            value={hook.timeoutS ?? ""}
            onInput={(e) => {
              const raw = value(e);
              const { timeoutS: _dropped, ...rest } = hook;
              onChange(raw === "" ? rest : { ...rest, timeoutS: Number(raw) });
            }}
          />
        </Field>
        <Field id={`${id}-description`} label="Description" error={errorAt(`${key}.description`)} hint="The model reads it to decide when to call this tool.">
          <textarea id={`${id}-description`} rows={2} maxLength={1024} value={hook.description} onInput={(e) => put({ description: value(e) })} />
        </Field>
        <JsonField
          id={`${id}-parameters`}
          label="Parameters (JSON schema)"
          hint='An object schema: {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}.'
          json={hook.parameters}
          error={errorAt(`${key}.parameters`) ?? errorAt(`${id}-parameters`)}
          flag={flag}
          onChange={(parameters) => put({ parameters })}
        />
      </div>
      <fieldset class={`nested headers${headersError ? " invalid" : ""}`}>
        <legend>Headers</legend>
        {hook.headers.map((h, i) => (
          <HeaderRow key={i} id={`${id}-header-${i}`} header={h} onChange={(next) => setHeader(i, next)} onRemove={() => put({ headers: hook.headers.filter((_, j) => j !== i) })} />
        ))}
        {headersError && (
          <small class="field-error" role="alert">
            {headersError}
          </small>
        )}
        <button type="button" onClick={() => put({ headers: [...hook.headers, { name: "", secret: "" }] })} disabled={hook.headers.length >= 8}>
          Add header
        </button>
      </fieldset>
    </div>
  );
}

function HeaderRow({ id, header, onChange, onRemove }: { id: string; header: Header; onChange: (h: Header) => void; onRemove: () => void }) {
  const fromSecret = "secret" in header;
  return (
    <div class="inline-form header-row">
      <Field id={`${id}-name`} label="Header name">
        <input id={`${id}-name`} autoComplete="off" value={header.name} onInput={(e) => onChange({ ...header, name: value(e) })} />
      </Field>
      <Field id={`${id}-kind`} label="Value from">
        <select
          id={`${id}-kind`}
          value={fromSecret ? "secret" : "value"}
          onChange={(e) =>
            onChange(e.currentTarget.value === "secret" ? { name: header.name, secret: "" } : { name: header.name, value: "" })
          }
        >
          <option value="secret">A stored secret</option>
          <option value="value">Plain text</option>
        </select>
      </Field>
      {fromSecret ? (
        <Field id={`${id}-secret`} label="Secret name">
          <input
            id={`${id}-secret`}
            list="secret-names"
            autoComplete="off"
            value={header.secret ?? ""}
            onInput={(e) => onChange({ name: header.name, secret: value(e) })}
          />
        </Field>
      ) : (
        <Field id={`${id}-value`} label="Value">
          <input id={`${id}-value`} autoComplete="off" value={header.value ?? ""} onInput={(e) => onChange({ name: header.name, value: value(e) })} />
        </Field>
      )}
      <button type="button" aria-label={`Remove header ${header.name || ""}`.trim()} onClick={onRemove}>
        Remove
      </button>
    </div>
  );
}

function ServerCard({
  index,
  server,
  errorAt,
  onChange,
  onRemove,
}: {
  index: number;
  server: McpServer;
  errorAt: ErrorAt;
  onChange: (next: McpServer) => void;
  onRemove: () => void;
}) {
  const id = `tools-mcp-${index}`;
  const key = `tools.mcpServers.${index}`;
  const title = server.name || `MCP server ${index + 1}`;
  const put = (patch: Partial<McpServer>): void => onChange({ ...server, ...patch });
  return (
    <div class="entry mcp-server" data-mcp={server.name} role="group" aria-labelledby={`${id}-title`}>
      <div class="dot-head">
        <h3 id={`${id}-title`}>{title}</h3>
        <button type="button" class="danger" aria-label={`Remove ${title}`} onClick={onRemove}>
          Remove
        </button>
      </div>
      <div class="grid">
        <Field id={`${id}-name`} label="Server name" error={errorAt(`${key}.name`)} hint="Letters, digits, _ or -.">
          <input id={`${id}-name`} maxLength={48} autoComplete="off" value={server.name} onInput={(e) => put({ name: value(e) })} />
        </Field>
        <Field id={`${id}-url`} label="Server URL" error={errorAt(`${key}.url`)}>
          <input id={`${id}-url`} inputMode="url" autoComplete="off" value={server.url} onInput={(e) => put({ url: value(e) })} />
        </Field>
        <Field id={`${id}-bearer`} label="Bearer token (secret name, optional)" error={errorAt(`${key}.bearerSecret`)}>
          <input
            id={`${id}-bearer`}
            list="secret-names"
            autoComplete="off"
            value={server.bearerSecret ?? ""}
            onInput={(e) => put({ bearerSecret: value(e) })}
          />
        </Field>
        <ListField
          id={`${id}-allow`}
          label="Only these tools (optional)"
          hint="One tool name per line; empty: every tool the server lists."
          list={server.allow ?? []}
          error={errorAt(`${key}.allow`)}
          onChange={(allow) => put({ allow })}
        />
      </div>
    </div>
  );
}

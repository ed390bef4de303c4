/**
 * The agent's `tools` block as the API reads it (shared/tools_config.py): the
 * shape the form writes, the defaults it fills in, and which form field an API
 * sentence ("webhook weather url must start with https://…") is about.
 */

export interface Header {
  name: string;
  value?: string;
  /** The name of one of the owner's stored secrets; its value never reaches the console. */
  secret?: string;
}

export interface Webhook {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  url: string;
  method: string;
  headers: Header[];
  timeoutS?: number;
}

export interface McpServer {
  name: string;
  url: string;
  bearerSecret?: string;
  allow?: string[];
}

export interface Tools {
  version: number;
  maxCallsPerTurn: number;
  callTimeoutS: number;
  filler: { enabled: boolean; text: string };
  device: { enabled: boolean; allowUserOnly: string[]; deny: string[] };
  builtins: Record<string, boolean>;
  webhooks: Webhook[];
  mcpServers: McpServer[];
  vision: { enabled: boolean; model: string; baseUrl: string; apiKeyName: string };
}

export const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

export const BUILTINS: readonly { key: string; label: string; hint: string }[] = [
  { key: "datetime", label: "Date and time", hint: "in your time zone" },
  { key: "deviceStatus", label: "Dot status", hint: "volume, battery, network" },
  { key: "endConversation", label: "End the conversation", hint: "says goodbye and closes" },
  { key: "memory", label: "Remember and forget", hint: "facts in the Dot's memory" },
];

/** Tools the xiaozhi firmware (and `opendot device simulate`) commonly declares: suggestions only. */
export const DEVICE_TOOL_SUGGESTIONS = [
  "self.get_device_status",
  "self.audio_speaker.set_volume",
  "self.screen.set_brightness",
  "self.camera.take_photo",
  "self.reboot",
];

const DEFAULTS: Tools = {
  version: 1,
  maxCallsPerTurn: 5,
  callTimeoutS: 10,
  filler: { enabled: false, text: "One moment." },
  device: { enabled: true, allowUserOnly: [], deny: [] },
  builtins: { datetime: true, deviceStatus: true, endConversation: true, memory: true },
  webhooks: [],
  mcpServers: [],
  vision: { enabled: false, model: "gpt-4.1-mini", baseUrl: "", apiKeyName: "OPENAI_API_KEY" },
};

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** The API answers the block normalised; this only guards against an older or partial one. */
export function toolsOf(raw: Record<string, unknown>): Tools {
  const merged = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    const base = merged[key];
    merged[key] = isObject(base) && isObject(value) ? { ...base, ...value } : value;
  }
  return merged as unknown as Tools;
}

export const newWebhook = (): Webhook => ({
  name: "",
  description: "",
  parameters: { type: "object", properties: {} },
  url: "https://",
  method: "POST",
  headers: [],
});

export const newServer = (): McpServer => ({ name: "", url: "https://", bearerSecret: "" });

/** Every field key the Tools section can show an error at. */
export function toolFieldKeys(tools: Tools): string[] {
  const keys = [
    "tools",
    "tools.maxCallsPerTurn",
    "tools.callTimeoutS",
    "tools.filler.text",
    "tools.device.allowUserOnly",
    "tools.device.deny",
    "tools.builtins",
    "tools.vision.model",
    "tools.vision.baseUrl",
    "tools.vision.apiKeyName",
  ];
  tools.webhooks.forEach((_, i) => {
    for (const f of ["name", "description", "parameters", "url", "method", "timeoutS", "headers"]) {
      keys.push(`tools.webhooks.${i}.${f}`);
    }
  });
  tools.mcpServers.forEach((_, i) => {
    for (const f of ["name", "url", "bearerSecret", "allow"]) keys.push(`tools.mcpServers.${i}.${f}`);
  });
  return keys;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The part of an entry a sentence about it names, in the order the API checks them. */
function entryField(rest: string, fields: readonly [RegExp, string][], fallback: string): string {
  for (const [pattern, field] of fields) if (pattern.test(rest)) return field;
  return fallback;
}

const WEBHOOK_FIELDS: readonly [RegExp, string][] = [
  [/^is defined twice/, "name"],
  [/^(needs a )?description/, "description"],
  [/^parameters/, "parameters"],
  [/^(needs a url|url)/, "url"],
  [/^method/, "method"],
  [/^timeoutS/, "timeoutS"],
  [/^(headers?|may not set)/, "headers"],
];

const SERVER_FIELDS: readonly [RegExp, string][] = [
  [/^is defined twice/, "name"],
  [/^(needs a url|url)/, "url"],
  [/^bearerSecret/, "bearerSecret"],
  [/^allow/, "allow"],
];

/**
 * The tools field an API sentence is about, or null when it is not about the
 * tools block. A tools sentence that names no field lands on "tools" (the
 * section's own error), never on another section's field that shares a word.
 */
export function toolsFieldOf(message: string, tools: Tools): string | null {
  let found = /^webhook (\d+) /.exec(message);
  if (found) return `tools.webhooks.${Number(found[1]) - 1}.name`;
  found = /^MCP server (\d+) /.exec(message);
  if (found) return `tools.mcpServers.${Number(found[1]) - 1}.name`;
  for (const [i, hook] of tools.webhooks.entries()) {
    const named = new RegExp(`^webhook ${escape(hook.name)} (.*)$`, "s").exec(message);
    if (hook.name && named) return `tools.webhooks.${i}.${entryField(named[1] ?? "", WEBHOOK_FIELDS, "name")}`;
  }
  for (const [i, server] of tools.mcpServers.entries()) {
    const named = new RegExp(`^MCP server ${escape(server.name)} (.*)$`, "s").exec(message);
    if (server.name && named) return `tools.mcpServers.${i}.${entryField(named[1] ?? "", SERVER_FIELDS, "name")}`;
  }
  if (/^(webhook|MCP server) /.test(message)) return "tools";
  found = /^tools (maxCallsPerTurn|callTimeoutS|filler text|device allowUserOnly|device deny|builtins|vision baseUrl|vision apiKeyName|vision model)\b/.exec(
    message,
  );
  if (found) return `tools.${(found[1] ?? "").replace(" ", ".")}`;
  if (/^tools\b/.test(message)) return "tools";
  return null;
}

/** Lines of a list field ("one per line") → the names in it. */
export const lines = (text: string): string[] =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

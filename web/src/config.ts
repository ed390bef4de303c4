/**
 * Where the console finds the API and the runtime, and how people sign in.
 *
 * One build serves every deployment: `config.json` next to `index.html` is
 * fetched at start and wins; the `VITE_*` variables are only build-time
 * defaults. A missing or unreadable `config.json` is not an error (a plain
 * `vite build` has none), but a malformed one is reported on the page.
 */

export type AuthMode = "local" | "supabase";

export interface ConsoleConfig {
  /** Platform API base, `…/api` (as VITE_PLATFORM_API_URL). */
  apiUrl: string;
  /** Browser voice socket, `ws(s)://…/voice`. */
  runtimeWsUrl: string;
  /** Runtime HTTP base (health, providers); derived from the WS URL when unset. */
  runtimeHttpUrl: string;
  authMode: AuthMode;
  supabaseUrl: string;
  supabaseAnonKey: string;
}

/** `ws://host:8787/voice` → `http://host:8787` (the original console's rule). */
export function httpFromWs(wsUrl: string): string {
  try {
    const url = new URL(wsUrl, location.href);
    const scheme = url.protocol === "wss:" ? "https:" : "http:";
    return `${scheme}//${url.host}`;
  } catch {
    return "";
  }
}

function text(value: unknown): string {
  return typeof value === "string" ? value.trim() : "";
}

function env(name: string): string {
  return text((import.meta.env as Record<string, unknown>)[name]);
}

export function buildDefaults(): ConsoleConfig {
  const runtimeWsUrl = env("VITE_RUNTIME_WS_URL") || "ws://localhost:8787/voice";
  const supabaseUrl = env("VITE_SUPABASE_URL");
  const supabaseAnonKey = env("VITE_SUPABASE_ANON_KEY");
  return {
    apiUrl: env("VITE_PLATFORM_API_URL") || "http://localhost:8788/api",
    runtimeWsUrl,
    runtimeHttpUrl: env("VITE_RUNTIME_HTTP_URL") || httpFromWs(runtimeWsUrl),
    authMode: supabaseUrl && supabaseAnonKey ? "supabase" : "local",
    supabaseUrl,
    supabaseAnonKey,
  };
}

/** Merge a parsed `config.json` over the defaults; throws a sentence on bad input. */
export function mergeConfig(defaults: ConsoleConfig, raw: unknown): ConsoleConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error("config.json must hold a JSON object.");
  }
  const given = raw as Record<string, unknown>;
  const pick = (key: keyof ConsoleConfig): string => text(given[key]);
  const runtimeWsUrl = pick("runtimeWsUrl") || defaults.runtimeWsUrl;
  const supabaseUrl = pick("supabaseUrl") || defaults.supabaseUrl;
  const supabaseAnonKey = pick("supabaseAnonKey") || defaults.supabaseAnonKey;
  const mode = pick("authMode");
  if (mode && mode !== "local" && mode !== "supabase") {
    throw new Error(`config.json: authMode must be "local" or "supabase", not "${mode}".`);
  }
  const authMode: AuthMode =
    (mode as AuthMode) || (supabaseUrl && supabaseAnonKey ? "supabase" : defaults.authMode);
  if (authMode === "supabase" && !(supabaseUrl && supabaseAnonKey)) {
    throw new Error("config.json: Supabase sign-in needs supabaseUrl and supabaseAnonKey.");
  }
  return {
    apiUrl: pick("apiUrl") || defaults.apiUrl,
    runtimeWsUrl,
    runtimeHttpUrl:
      pick("runtimeHttpUrl") ||
      (pick("runtimeWsUrl") ? httpFromWs(runtimeWsUrl) : defaults.runtimeHttpUrl),
    authMode,
    supabaseUrl,
    supabaseAnonKey,
  };
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const defaults = buildDefaults();
  let response: Response;
  try {
    response = await fetch("./config.json", { cache: "no-store" });
  } catch {
    return defaults;
  }
  if (!response.ok) return defaults;
  let raw: unknown;
  try {
    raw = await response.json();
  } catch {
    throw new Error("config.json is not valid JSON.");
  }
  return mergeConfig(defaults, raw);
}

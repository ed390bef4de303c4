/**
 * The typed API client: `openapi-fetch` over types generated at build time from
 * the checked-in `functions/openapi.json` (`npm run gen`), so a renamed field or
 * path fails `tsc`, not a person.
 *
 * `call()` unwraps an answer into its data or an `ApiError` carrying the API's
 * own sentence. A 401 on a signed-in request asks the auth layer to refresh
 * once and retries; when that fails the session has expired and the auth layer
 * sends the person to sign in (and back).
 */

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { ApiError, toApiError, unreachable } from "./errors";

export type Schemas = components["schemas"];
export type Agent = Schemas["VoiceAgent"];
export type Stage = Schemas["PipelineStage"];
export type StageSetting = Schemas["StageSetting"];
export type Device = Schemas["DotDevice"];
export type UserSettings = Schemas["UserSettings"];
export type ApiKey = Schemas["ApiKey"];
export type SecretInfo = Schemas["SecretInfo"];
export type AgentVersionInfo = Schemas["AgentVersionInfo"];
export type Release = Schemas["Release"];
export type Rollout = Schemas["Rollout"];
export type RolloutDevice = Schemas["RolloutDevice"];

export type Client = ReturnType<typeof createClient<paths>>;

export interface AuthHooks {
  token(): string | null;
  /** Renew the session after a 401; true when a new token is ready. */
  refresh(): Promise<boolean>;
  /** The session is gone: send the person to sign in. */
  expired(): void;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

let client: Client | null = null;
let apiBase = "";
let hooks: AuthHooks | null = null;

/** `http://host:8788/api` → base `http://host:8788` (paths carry `/api`). */
export function configureApi(apiUrl: string, authHooks: AuthHooks): void {
  apiBase = apiUrl.replace(/\/+$/, "").replace(/\/api$/, "");
  hooks = authHooks;
  client = createClient<paths>({ baseUrl: apiBase });
  client.use({
    onRequest({ request }) {
      const token = hooks?.token();
      if (token && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${token}`);
      }
      return request;
    },
  });
}

export function api(): Client {
  if (!client) throw new Error("The API client is not configured yet.");
  return client;
}

/** Run one request: its data, or an ApiError with the API's sentence. */
export async function call<T>(request: (c: Client) => Promise<Answer<T>>): Promise<T> {
  const first = await send(request);
  if (first.response.status !== 401 || !hooks?.token()) return unwrap(first);
  if (await hooks.refresh()) {
    const again = await send(request);
    if (again.response.status !== 401) return unwrap(again);
  }
  hooks.expired();
  return unwrap(first);
}

async function send<T>(request: (c: Client) => Promise<Answer<T>>): Promise<Answer<T>> {
  try {
    return await request(api());
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw unreachable("OpenDot API", apiBase || "(unset)");
  }
}

function unwrap<T>(answer: Answer<T>): T {
  if (answer.response.ok) return answer.data as T;
  throw toApiError(answer.response.status, answer.error);
}

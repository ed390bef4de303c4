/** Errors the console shows: the API's own sentence, or one of ours when it never answered. */

export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

const FALLBACK: Record<number, string> = {
  401: "Your session has ended. Sign in again.",
  404: "Not found.",
  429: "Too many requests. Wait a moment and try again.",
  500: "The server failed. Try again in a moment.",
  502: "The server is unreachable. Try again in a moment.",
  503: "The server is busy. Try again in a moment.",
};

/** The API answers `{"error": "<sentence>"}`; anything else gets a generic sentence. */
export function toApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object" && "error" in body) {
    const message = (body as { error: unknown }).error;
    if (typeof message === "string" && message.trim()) return new ApiError(status, message);
  }
  return new ApiError(status, FALLBACK[status] ?? `The request failed (HTTP ${status}).`);
}

export function unreachable(what: string, url: string): ApiError {
  return new ApiError(0, `Cannot reach the ${what} at ${url}. Is it running?`);
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The form field an API sentence is about, if it names one of `keys`:
 * "timezone must be an IANA…", "llm.base_url: …", "base_url resolves to a private…".
 */
export function fieldOf(message: string, keys: readonly string[]): string | null {
  const lower = message.toLowerCase();
  let best: string | null = null;
  let bestAt = Number.POSITIVE_INFINITY;
  for (const key of keys) {
    const plain = key.includes(".") ? key.slice(key.lastIndexOf(".") + 1) : key;
    for (const candidate of [key, plain]) {
      const at = lower.search(new RegExp(`(^|[^a-z0-9_])${escape(candidate.toLowerCase())}([^a-z0-9_]|$)`));
      if (at >= 0 && (at < bestAt || (at === bestAt && candidate === key))) {
        best = key;
        bestAt = at;
      }
    }
  }
  return best;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

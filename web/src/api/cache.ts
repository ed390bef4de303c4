/**
 * One cache entry per server resource ("agents", "agent:<id>", "devices", …).
 *
 * Pages read through `useResource`; a mutation never edits cached data in
 * place (no optimistic whole-object writes: they race), it calls
 * `invalidate()` with the keys it touched and every page showing them
 * refetches. Concurrent readers of one key share one request.
 */

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./errors";

interface Entry {
  data?: unknown;
  error?: ApiError | Error;
  inflight?: Promise<unknown>;
  stale: boolean;
  loader?: () => Promise<unknown>;
  listeners: Set<() => void>;
}

const entries = new Map<string, Entry>();

function entry(key: string): Entry {
  let found = entries.get(key);
  if (!found) {
    found = { stale: true, listeners: new Set() };
    entries.set(key, found);
  }
  return found;
}

function notify(e: Entry): void {
  for (const listener of [...e.listeners]) listener();
}

function load(e: Entry): Promise<unknown> {
  const loader = e.loader;
  if (!loader) return Promise.resolve(e.data);
  if (e.inflight) return e.inflight;
  const inflight = loader().then(
    (data) => {
      if (e.inflight === inflight) {
        e.data = data;
        e.error = undefined;
        e.stale = false;
        e.inflight = undefined;
        notify(e);
      }
      return data;
    },
    (error: unknown) => {
      if (e.inflight === inflight) {
        e.error = error instanceof Error ? error : new Error(String(error));
        e.stale = false;
        e.inflight = undefined;
        notify(e);
      }
      throw error;
    },
  );
  e.inflight = inflight;
  notify(e);
  void inflight.catch(() => undefined);
  return inflight;
}

/** Mark resources stale and refetch the ones on screen; a prefix ends with ":". */
export function invalidate(...keys: string[]): void {
  for (const [key, e] of entries) {
    if (!keys.some((k) => (k.endsWith(":") ? key.startsWith(k) : key === k))) continue;
    e.stale = true;
    e.inflight = undefined;
    if (e.listeners.size) void load(e).catch(() => undefined);
  }
}

/** Forget everything (sign-out: the next person must not see this one's data). */
export function clearCache(): void {
  entries.clear();
}

export interface Resource<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * The resource `key` (null: nothing to load yet), loaded with `loader`.
 * `pollMs` refetches it periodically while the page is visible.
 */
export function useResource<T>(
  key: string | null,
  loader: () => Promise<T>,
  pollMs = 0,
): Resource<T> {
  const [, setTick] = useState(0);
  const e = key ? entry(key) : null;
  if (e) e.loader = loader;

  useEffect(() => {
    if (!key) return undefined;
    const current = entry(key);
    const listener = (): void => setTick((n) => n + 1);
    current.listeners.add(listener);
    if (current.stale && !current.inflight) void load(current).catch(() => undefined);
    let timer: number | undefined;
    if (pollMs > 0) {
      timer = window.setInterval(() => {
        if (document.visibilityState === "visible" && !current.inflight) {
          void load(current).catch(() => undefined);
        }
      }, pollMs);
    }
    return () => {
      current.listeners.delete(listener);
      if (timer !== undefined) window.clearInterval(timer);
    };
  }, [key, pollMs]);

  return {
    data: e?.data as T | undefined,
    error: e?.error,
    loading: !!e && (e.inflight !== undefined || (e.stale && e.data === undefined && !e.error)),
    reload: () => key && invalidate(key),
  };
}

/**
 * Who is signed in, through which door: local email/password sessions (the
 * API's short-lived JWT, renewed with its refresh token a minute before
 * expiry) or Supabase Auth (supabase-js signs in, refreshes and hands us its
 * access token, which the API verifies through the project's JWKS).
 *
 * supabase-js is loaded only when the deployment uses Supabase, so the local
 * console does not ship it on its first page.
 */

import type { SupabaseClient } from "@supabase/supabase-js";
import { api, call } from "../api/client";
import type { ConsoleConfig } from "../config";
import { clearCache } from "../api/cache";

export interface User {
  email: string;
  displayName: string;
}

export type AuthStatus = "loading" | "signedOut" | "signedIn";

export interface AuthState {
  status: AuthStatus;
  mode: ConsoleConfig["authMode"];
  user: User | null;
  /** Why the person is on the sign-in page: their session expired mid-work. */
  expired: boolean;
  /** Where to go back to after signing in. */
  returnTo: string | null;
}

interface LocalSession {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: string;
  user: User;
}

const STORE = "opendot.session";
const RENEW_BEFORE_MS = 60_000;

let state: AuthState = {
  status: "loading",
  mode: "local",
  user: null,
  expired: false,
  returnTo: null,
};
const listeners = new Set<() => void>();
let local: LocalSession | null = null;
let renewTimer: number | undefined;
let supabase: SupabaseClient | null = null;
let supabaseToken: string | null = null;
let refreshing: Promise<boolean> | null = null;

function set(next: Partial<AuthState>): void {
  state = { ...state, ...next };
  for (const listener of [...listeners]) listener();
}

export function authState(): AuthState {
  return state;
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function token(): string | null {
  return state.mode === "supabase" ? supabaseToken : (local?.accessToken ?? null);
}

// --- local sessions ---------------------------------------------------------------

function storeLocal(session: LocalSession | null): void {
  local = session;
  window.clearTimeout(renewTimer);
  if (session) {
    localStorage.setItem(STORE, JSON.stringify(session));
    const due = Date.parse(session.expiresAt) - Date.now() - RENEW_BEFORE_MS;
    renewTimer = window.setTimeout(() => void refresh(), Math.max(5_000, due));
  } else {
    localStorage.removeItem(STORE);
  }
}

function readLocal(): LocalSession | null {
  try {
    const raw = localStorage.getItem(STORE);
    const parsed = raw ? (JSON.parse(raw) as LocalSession) : null;
    return parsed && typeof parsed.accessToken === "string" ? parsed : null;
  } catch {
    return null;
  }
}

interface SessionAnswer {
  accessToken: string;
  refreshToken?: string | null;
  expiresAt: string;
  user: { email: string; displayName: string };
}

function acceptLocal(answer: SessionAnswer): void {
  storeLocal({
    accessToken: answer.accessToken,
    refreshToken: answer.refreshToken ?? null,
    expiresAt: answer.expiresAt,
    user: { email: answer.user.email, displayName: answer.user.displayName },
  });
  signedIn({ email: answer.user.email, displayName: answer.user.displayName });
}

async function refreshLocal(): Promise<boolean> {
  const current = local;
  if (!current) return false;
  const { data, response } = await api()
    .POST("/api/auth/refresh", {
      body: { refreshToken: current.refreshToken },
      headers: { Authorization: "" },
    })
    .catch(() => ({ data: undefined, response: new Response(null, { status: 0 }) }));
  if (!response.ok || !data) {
    // Offline is not signed out: keep the session and try again later.
    if (response.status === 0) return false;
    storeLocal(null);
    return false;
  }
  acceptLocal(data);
  return true;
}

// --- Supabase -----------------------------------------------------------------------

async function startSupabase(config: ConsoleConfig): Promise<void> {
  const { createClient } = await import("@supabase/supabase-js");
  supabase = createClient(config.supabaseUrl, config.supabaseAnonKey, {
    auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: true, flowType: "pkce" },
  });
  supabase.auth.onAuthStateChange((_event, session) => {
    supabaseToken = session?.access_token ?? null;
    if (session?.user) {
      const meta = (session.user.user_metadata ?? {}) as Record<string, unknown>;
      const email = session.user.email ?? "";
      const name = typeof meta["full_name"] === "string" ? (meta["full_name"] as string) : email;
      signedIn({ email, displayName: name });
    } else if (state.status === "signedIn") {
      set({ status: "signedOut", user: null });
    }
  });
  const { data } = await supabase.auth.getSession();
  supabaseToken = data.session?.access_token ?? null;
  if (!data.session) set({ status: "signedOut" });
}

function requireSupabase(): SupabaseClient {
  if (!supabase) throw new Error("Supabase sign-in is not configured.");
  return supabase;
}

// --- shared -------------------------------------------------------------------------

function signedIn(user: User): void {
  const back = state.returnTo;
  set({ status: "signedIn", user, expired: false, returnTo: null });
  if (back && location.hash !== back) location.hash = back;
}

export async function startAuth(config: ConsoleConfig): Promise<void> {
  set({ mode: config.authMode });
  if (config.authMode === "supabase") {
    await startSupabase(config);
    return;
  }
  const saved = readLocal();
  if (!saved) {
    set({ status: "signedOut" });
    return;
  }
  local = saved;
  if (Date.parse(saved.expiresAt) - Date.now() < RENEW_BEFORE_MS && !(await refreshLocal())) {
    storeLocal(null);
    set({ status: "signedOut" });
    return;
  }
  storeLocal(local);
  signedIn(saved.user);
}

export async function signIn(email: string, password: string): Promise<void> {
  if (state.mode === "supabase") {
    const { error } = await requireSupabase().auth.signInWithPassword({ email, password });
    if (error) throw new Error(error.message);
    return;
  }
  const answer = await call((c) => c.POST("/api/auth/login", { body: { email, password } }));
  acceptLocal(answer);
}

export async function signUp(email: string, password: string, displayName: string): Promise<string | null> {
  if (state.mode === "supabase") {
    const { data, error } = await requireSupabase().auth.signUp({
      email,
      password,
      options: { data: { full_name: displayName || undefined } },
    });
    if (error) throw new Error(error.message);
    return data.session ? null : "Check your email to confirm your address, then sign in.";
  }
  const answer = await call((c) =>
    c.POST("/api/auth/signup", { body: { email, password, displayName: displayName || null } }),
  );
  acceptLocal(answer);
  return null;
}

export async function sendMagicLink(email: string): Promise<void> {
  const redirect = location.href.split("#")[0] ?? location.href;
  const { error } = await requireSupabase().auth.signInWithOtp({
    email,
    options: { emailRedirectTo: redirect, shouldCreateUser: true },
  });
  if (error) throw new Error(error.message);
}

export async function signOut(): Promise<void> {
  if (state.mode === "supabase") {
    await requireSupabase().auth.signOut();
  } else if (local) {
    await call((c) => c.POST("/api/auth/logout")).catch(() => undefined);
    storeLocal(null);
  }
  supabaseToken = null;
  clearCache();
  set({ status: "signedOut", user: null, expired: false, returnTo: null });
}

/** After a 401: renew once (shared by concurrent callers). */
export function refresh(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      if (state.mode === "supabase") {
        const { data, error } = await requireSupabase().auth.refreshSession();
        supabaseToken = data.session?.access_token ?? null;
        return !error && !!data.session;
      }
      return refreshLocal();
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** The session is gone: sign in, then come back here (drafts stay in storage). */
export function expired(): void {
  if (state.status !== "signedIn") return;
  const here = location.hash || "#/agents";
  if (state.mode === "local") storeLocal(null);
  supabaseToken = null;
  set({ status: "signedOut", expired: true, returnTo: here.startsWith("#/signin") ? null : here });
}

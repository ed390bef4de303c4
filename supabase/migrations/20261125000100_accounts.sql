-- Accounts: product identity, local credentials and sessions, login throttling,
-- preferences, SDK keys and per-user provider secrets.
--
-- Conventions for every table in this and the following migrations:
-- * ids default to gen_random_uuid() (core PostgreSQL, no pgcrypto needed);
-- * RLS is enabled here, in the migration that creates the table;
-- * policies are `to authenticated`, one per operation, and call auth.uid()
--   through a scalar subquery so it is evaluated once per statement
--   (Supabase lint 0003 auth_rls_initplan);
-- * every column a policy filters on, and every foreign key, is indexed;
-- * Supabase grants ALL (including TRUNCATE, which ignores RLS) on new public
--   tables to anon and authenticated by default privileges, so each table
--   revokes everything from both and grants back only what its policies need.
--   service_role (BYPASSRLS) keeps full access for the internal API.
-- * Credential material (password hashes, session rows, throttle rows) has RLS
--   enabled and NO user policy: only service_role and security definer
--   functions in schema `private` touch it. Supabase's advisor reports these
--   as INFO "rls_enabled_no_policy"; that is intended.
-- * Supabase's advisor (`make advisors`) reports no ERROR or WARN on this
--   schema. Besides rls_enabled_no_policy it lists INFO "unused_index" on a
--   fresh database: those indexes serve the token lookups, throttling windows,
--   expiry sweeps and foreign keys, and are used as soon as traffic exists.

-- ---------------------------------------------------------------------------
-- app_users: one row per person. For Supabase Auth users id = auth.users.id
-- (the JWT `sub`); local users get a generated id. No foreign key to
-- auth.users, because local users do not exist there.
create table public.app_users (
  id uuid primary key default gen_random_uuid(),
  auth_provider text not null default 'local'
    check (auth_provider in ('local', 'supabase', 'dev')),
  auth_subject text not null check (length(auth_subject) between 1 and 320),
  email text not null default '' check (length(email) <= 320),
  display_name text not null default '' check (length(display_name) <= 200),
  avatar_url text check (length(avatar_url) <= 2048),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint app_users_provider_subject_key unique (auth_provider, auth_subject)
);
alter table public.app_users enable row level security;

create policy "app_users: read own row" on public.app_users
  for select to authenticated using (id = (select auth.uid()));
-- A Supabase Auth user may create their own product identity on first use.
-- Local identities are created by the API as service_role, so a user can
-- never claim a `local` subject (an email) that belongs to someone else.
create policy "app_users: create own supabase row" on public.app_users
  for insert to authenticated
  with check (
    id = (select auth.uid())
    and auth_provider = 'supabase'
    and auth_subject = id::text
  );
create policy "app_users: update own row" on public.app_users
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

revoke all on table public.app_users from anon, authenticated;
grant select on table public.app_users to authenticated;
grant insert (id, auth_provider, auth_subject, email, display_name, avatar_url)
  on table public.app_users to authenticated;
grant update (email, display_name, avatar_url, updated_at) on table public.app_users
  to authenticated;
grant all on table public.app_users to service_role;

-- ---------------------------------------------------------------------------
-- local_auth_credentials: email + argon2id hash for local sign-in.
create table public.local_auth_credentials (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  email text not null check (length(email) between 3 and 320),
  email_normalized text not null check (email_normalized = lower(btrim(email_normalized))),
  password_hash text not null,
  status text not null default 'active' check (status in ('active', 'disabled')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_used_at timestamptz
);
create unique index local_auth_credentials_email_key
  on public.local_auth_credentials (email_normalized);
create index local_auth_credentials_user_id_idx on public.local_auth_credentials (user_id);
alter table public.local_auth_credentials enable row level security;
revoke all on table public.local_auth_credentials from anon, authenticated;
grant all on table public.local_auth_credentials to service_role;

-- ---------------------------------------------------------------------------
-- local_sessions: server-side record of every local session token (its jti),
-- so logout and refresh revoke for real instead of waiting for expiry.
create table public.local_sessions (
  jti uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  refresh_token_hash text,
  user_agent text not null default '' check (length(user_agent) <= 512),
  ip_address text not null default '' check (length(ip_address) <= 64),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  last_used_at timestamptz,
  check (expires_at > created_at)
);
create index local_sessions_user_id_idx on public.local_sessions (user_id, created_at desc);
create index local_sessions_expires_at_idx on public.local_sessions (expires_at);
create unique index local_sessions_refresh_token_hash_key
  on public.local_sessions (refresh_token_hash) where refresh_token_hash is not null;
alter table public.local_sessions enable row level security;
revoke all on table public.local_sessions from anon, authenticated;
grant all on table public.local_sessions to service_role;

-- ---------------------------------------------------------------------------
-- local_session_rotated_tokens: the hashes of refresh tokens a session has
-- already rotated away from. A rotated token presented again means two
-- parties hold the session's tokens (one of them stole it), so the whole
-- session is revoked: the thief's next refresh fails, and so does the
-- owner's, who signs in again (OAuth 2.0 Security BCP, refresh token reuse).
-- Rows go with their session.
create table public.local_session_rotated_tokens (
  token_hash text primary key check (token_hash ~ '^[0-9a-f]{64}$'),
  jti uuid not null references public.local_sessions (jti) on delete cascade,
  rotated_at timestamptz not null default now()
);
create index local_session_rotated_tokens_jti_idx on public.local_session_rotated_tokens (jti);
alter table public.local_session_rotated_tokens enable row level security;
revoke all on table public.local_session_rotated_tokens from anon, authenticated;
grant all on table public.local_session_rotated_tokens to service_role;

-- ---------------------------------------------------------------------------
-- auth_throttle: one row per attempt, counted over a sliding window, and
-- deleted once older than any window (private.sweep_expired). Scopes:
-- 'login_pair' (subject = sha256 of email and client address), 'login_email',
-- 'login_address', 'signup_address', 'claim_user', 'claim_address', and
-- 'claim_code' (subject '*': every wrong claim, the guesses each pending code
-- has received). Client addresses come from the API's one definition of
-- "the client address" (functions/client_address.py).
create table public.auth_throttle (
  id uuid primary key default gen_random_uuid(),
  scope text not null check (scope ~ '^[a-z][a-z0-9_]{0,39}$'),
  subject text not null check (length(subject) between 1 and 320),
  succeeded boolean not null default false,
  created_at timestamptz not null default now()
);
create index auth_throttle_scope_subject_idx
  on public.auth_throttle (scope, subject, created_at desc);
create index auth_throttle_created_at_idx on public.auth_throttle (created_at);
alter table public.auth_throttle enable row level security;
revoke all on table public.auth_throttle from anon, authenticated;
grant all on table public.auth_throttle to service_role;

-- ---------------------------------------------------------------------------
-- user_preferences: the console's settings page.
create table public.user_preferences (
  user_id uuid primary key references public.app_users (id) on delete cascade,
  workspace_name text not null default 'OpenDot Lab' check (length(workspace_name) <= 200),
  timezone text not null default 'UTC' check (length(timezone) between 1 and 64),
  compact_mode boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.user_preferences enable row level security;

create policy "user_preferences: read own" on public.user_preferences
  for select to authenticated using (user_id = (select auth.uid()));
create policy "user_preferences: create own" on public.user_preferences
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "user_preferences: update own" on public.user_preferences
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.user_preferences from anon, authenticated;
grant select, insert, update on table public.user_preferences to authenticated;
grant all on table public.user_preferences to service_role;

-- ---------------------------------------------------------------------------
-- api_keys: SDK keys. Only a prefix and the SHA-256 of the token are stored;
-- the hash is not even readable by its owner (column privileges).
create table public.api_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 120),
  prefix text not null check (length(prefix) between 4 and 32),
  token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
  status text not null default 'active' check (status in ('active', 'revoked')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz
);
create unique index api_keys_token_hash_key on public.api_keys (token_hash);
create index api_keys_user_id_idx on public.api_keys (user_id, created_at desc);
create index api_keys_prefix_idx on public.api_keys (prefix);
alter table public.api_keys enable row level security;

create policy "api_keys: read own" on public.api_keys
  for select to authenticated using (user_id = (select auth.uid()));
create policy "api_keys: create own" on public.api_keys
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "api_keys: update own" on public.api_keys
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));
create policy "api_keys: delete own" on public.api_keys
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.api_keys from anon, authenticated;
grant select (id, user_id, name, prefix, status, created_at, updated_at, last_used_at,
  expires_at, revoked_at) on table public.api_keys to authenticated;
grant insert (id, user_id, name, prefix, token_hash, expires_at) on table public.api_keys
  to authenticated;
grant update (name, status, updated_at, revoked_at) on table public.api_keys to authenticated;
grant delete on table public.api_keys to authenticated;
grant all on table public.api_keys to service_role;

-- A revoked key stays revoked. Owners may update `status` and `revoked_at` on
-- their own keys (that is how the API revokes), so without this guard the
-- same grant would let them flip a key revoked because it leaked back to
-- 'active', or clear revoked_at. Trigger functions need no EXECUTE to fire,
-- so nobody gets it.
create function private.api_keys_keep_revoked() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.status = 'revoked'
     and (new.status is distinct from 'revoked' or new.revoked_at is distinct from old.revoked_at)
  then
    raise exception 'A revoked API key cannot be re-activated; create a new key.'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
revoke execute on function private.api_keys_keep_revoked() from public, anon, authenticated;

create trigger api_keys_keep_revoked
  before update on public.api_keys
  for each row execute function private.api_keys_keep_revoked();

-- ---------------------------------------------------------------------------
-- user_secrets: per-user provider keys, sealed by the application with
-- AES-GCM under OPENDOT_SECRETS_KEY (aad "<user_id>:<name>"). Owners may
-- create, replace and delete their secrets but can never read the ciphertext
-- back: `ciphertext` is simply not in their SELECT column grant. Only the
-- internal API (service_role) reads it, to hand it to the runtime.
-- Upsert as the owner with `on conflict (user_id, name) do update set
-- ciphertext = $n` (the parameter): `excluded.ciphertext` would need SELECT.
create table public.user_secrets (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  name text not null check (name ~ '^[A-Z][A-Z0-9_]{0,63}$'),
  ciphertext text not null check (length(ciphertext) between 1 and 16384),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint user_secrets_user_id_name_key unique (user_id, name)
);
alter table public.user_secrets enable row level security;

create policy "user_secrets: read own names" on public.user_secrets
  for select to authenticated using (user_id = (select auth.uid()));
create policy "user_secrets: create own" on public.user_secrets
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "user_secrets: replace own" on public.user_secrets
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));
create policy "user_secrets: delete own" on public.user_secrets
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.user_secrets from anon, authenticated;
grant select (id, user_id, name, created_at, updated_at) on table public.user_secrets
  to authenticated;
grant insert (user_id, name, ciphertext) on table public.user_secrets to authenticated;
grant update (ciphertext, updated_at) on table public.user_secrets to authenticated;
grant delete on table public.user_secrets to authenticated;
grant all on table public.user_secrets to service_role;

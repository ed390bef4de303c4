-- Accounts and request authentication: the privileged functions behind
-- sign-up, login, local sessions, SDK keys and the start of every request.
--
-- Conventions for every function in schema `private` (this and the following
-- *_functions migrations; checked by supabase/tests/database/90-private-functions):
-- security definer, `set search_path = ''`, fully qualified names, execute
-- revoked from public and anon, granted explicitly to service_role (internal
-- and auth flows, called by the API's login role or as service_role) or
-- authenticated (user flows that must touch rows the user cannot write
-- directly: claim, voice tokens, credential revocation). User flows take the
-- caller from auth.uid(), never from a parameter. Each migration grants what
-- it defines, so it reads correctly on its own.

-- ---------------------------------------------------------------------------
-- Request start: create the product identity on first sight (never overwrite
-- a name the user edited), and for local sessions check the session is live.
create function private.begin_request(
  p_user_id uuid,
  p_provider text,
  p_subject text,
  p_email text,
  p_display_name text,
  p_avatar_url text,
  p_session_id uuid
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_session_id is not null then
    perform 1
    from public.local_sessions s
    where s.jti = p_session_id
      and s.user_id = p_user_id
      and s.revoked_at is null
      and s.expires_at > now();
    if not found then
      return false;
    end if;
  end if;
  insert into public.app_users (id, auth_provider, auth_subject, email, display_name, avatar_url)
  values (
    p_user_id,
    p_provider,
    left(coalesce(nullif(p_subject, ''), p_user_id::text), 320),
    left(coalesce(p_email, ''), 320),
    left(coalesce(nullif(btrim(p_display_name), ''), 'OpenDot user'), 200),
    p_avatar_url
  )
  on conflict do nothing;
  insert into public.user_preferences (user_id) values (p_user_id) on conflict do nothing;
  return true;
end;
$$;

-- ---------------------------------------------------------------------------
-- Throttling: count recent attempts (all, or failures only); record one.
-- Recording also deletes a few rows older than a day (no window is longer
-- than an hour), so the table that attackers grow is pruned by the same
-- path, without a scheduler: each call removes at most 20 rows through the
-- created_at index.
create function private.throttle_failures(
  p_scope text, p_subject text, p_window_s integer
) returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select count(*)::integer
  from public.auth_throttle t
  where t.scope = p_scope
    and t.subject = p_subject
    and not t.succeeded
    and t.created_at > now() - make_interval(secs => p_window_s);
$$;

create function private.throttle_attempts(
  p_scope text, p_subject text, p_window_s integer
) returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select count(*)::integer
  from public.auth_throttle t
  where t.scope = p_scope
    and t.subject = p_subject
    and t.created_at > now() - make_interval(secs => p_window_s);
$$;

create function private.throttle_record(
  p_scope text, p_subject text, p_succeeded boolean
) returns void
language sql
security definer
set search_path = ''
as $$
  delete from public.auth_throttle t
  where t.id in (
    select o.id from public.auth_throttle o
    where o.created_at < now() - interval '1 day'
    order by o.created_at
    limit 20
    for update skip locked
  );
  insert into public.auth_throttle (scope, subject, succeeded)
  values (p_scope, left(coalesce(nullif(p_subject, ''), 'unknown'), 320), p_succeeded);
$$;

-- ---------------------------------------------------------------------------
-- Local auth.
create function private.local_signup(
  p_email text, p_email_normalized text, p_password_hash text, p_display_name text
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
begin
  -- unique_violation on either insert surfaces to the API as 409.
  insert into public.app_users (auth_provider, auth_subject, email, display_name)
  values ('local', p_email_normalized, p_email, p_display_name)
  returning id into v_user;
  insert into public.local_auth_credentials (user_id, email, email_normalized, password_hash)
  values (v_user, p_email, p_email_normalized, p_password_hash);
  insert into public.user_preferences (user_id) values (v_user) on conflict do nothing;
  return v_user;
end;
$$;

create function private.local_login_lookup(p_email_normalized text)
returns table (
  user_id uuid, password_hash text, email text, display_name text, avatar_url text
)
language sql
stable
security definer
set search_path = ''
as $$
  select c.user_id, c.password_hash, u.email, u.display_name, u.avatar_url
  from public.local_auth_credentials c
  join public.app_users u on u.id = c.user_id
  where c.email_normalized = p_email_normalized and c.status = 'active';
$$;

create function private.local_session_open(
  p_user_id uuid, p_refresh_hash text, p_max_age_s integer, p_user_agent text, p_ip text
) returns uuid
language sql
security definer
set search_path = ''
as $$
  update public.local_auth_credentials set last_used_at = now() where user_id = p_user_id;
  insert into public.local_sessions (user_id, refresh_token_hash, user_agent, ip_address, expires_at)
  values (
    p_user_id, p_refresh_hash, left(coalesce(p_user_agent, ''), 512),
    left(coalesce(p_ip, ''), 64), now() + make_interval(secs => p_max_age_s)
  )
  returning jti;
$$;

-- Rotate a refresh token: the old one stops working, the session lives on,
-- and the old hash is remembered. outcome: rotated | reused | invalid.
-- 'reused' means a token this session already rotated away from came back:
-- somebody else holds the session's tokens, so the session is revoked, which
-- ends every access and refresh token it issued.
create function private.local_session_refresh(
  p_refresh_hash text, p_new_refresh_hash text
) returns table (
  outcome text, jti uuid, user_id uuid, email text, display_name text, avatar_url text
)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_session public.local_sessions%rowtype;
begin
  update public.local_sessions ls
  set refresh_token_hash = p_new_refresh_hash, last_used_at = now()
  where ls.refresh_token_hash = p_refresh_hash
    and ls.revoked_at is null
    and ls.expires_at > now()
  returning ls.* into v_session;
  if found then
    insert into public.local_session_rotated_tokens (token_hash, jti)
    values (p_refresh_hash, v_session.jti)
    on conflict on constraint local_session_rotated_tokens_pkey do nothing;
    return query
      select 'rotated'::text, v_session.jti, v_session.user_id, u.email, u.display_name,
             u.avatar_url
      from public.app_users u where u.id = v_session.user_id;
    return;
  end if;
  update public.local_sessions ls set revoked_at = now()
  from public.local_session_rotated_tokens r
  where r.token_hash = p_refresh_hash and ls.jti = r.jti and ls.revoked_at is null
  returning ls.* into v_session;
  if found then
    return query select 'reused'::text, v_session.jti, v_session.user_id, null::text,
                        null::text, null::text;
    return;
  end if;
  return query select 'invalid'::text, null::uuid, null::uuid, null::text, null::text,
                      null::text;
end;
$$;

-- Is this local session still live? (A new access token by bearer: it renews
-- the short-lived access token only; it never mints a refresh token, so a
-- stolen access token cannot be turned into a 30-day credential.)
create function private.local_session_touch(p_jti uuid)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with s as (
    update public.local_sessions ls
    set last_used_at = now()
    where ls.jti = p_jti and ls.revoked_at is null and ls.expires_at > now()
    returning 1
  )
  select exists (select 1 from s);
$$;

create function private.local_session_revoke(p_jti uuid) returns void
language sql
security definer
set search_path = ''
as $$
  update public.local_sessions set revoked_at = now()
  where jti = p_jti and revoked_at is null;
$$;

-- ---------------------------------------------------------------------------
-- SDK keys: resolve a key hash to its owner; touch last_used_at at most once a minute.
create function private.api_key_lookup(p_token_hash text)
returns table (key_id uuid, user_id uuid, status text, expires_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.api_keys k set last_used_at = now()
  where k.token_hash = p_token_hash
    and k.status = 'active'
    and (k.expires_at is null or k.expires_at > now())
    and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute');
  return query
    select k.id, k.user_id, k.status, k.expires_at
    from public.api_keys k where k.token_hash = p_token_hash;
end;
$$;

-- ---------------------------------------------------------------------------
-- Privileges: all of these are called by the API as service_role.
revoke execute on function
  private.begin_request(uuid, text, text, text, text, text, uuid),
  private.throttle_failures(text, text, integer),
  private.throttle_attempts(text, text, integer),
  private.throttle_record(text, text, boolean),
  private.local_signup(text, text, text, text),
  private.local_login_lookup(text),
  private.local_session_open(uuid, text, integer, text, text),
  private.local_session_refresh(text, text),
  private.local_session_touch(uuid),
  private.local_session_revoke(uuid),
  private.api_key_lookup(text)
  from public, anon;
grant execute on function
  private.begin_request(uuid, text, text, text, text, text, uuid),
  private.throttle_failures(text, text, integer),
  private.throttle_attempts(text, text, integer),
  private.throttle_record(text, text, boolean),
  private.local_signup(text, text, text, text),
  private.local_login_lookup(text),
  private.local_session_open(uuid, text, integer, text, text),
  private.local_session_refresh(text, text),
  private.local_session_touch(uuid),
  private.local_session_revoke(uuid),
  private.api_key_lookup(text)
  to service_role;

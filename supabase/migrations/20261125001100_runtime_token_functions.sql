-- Runtime session tokens: the single-use od_vt_ tokens a signed-in user gets
-- for a browser /voice session (and the realtime client-secret exchange),
-- consumed atomically by the runtime through the internal API. Table in
-- 20261125000400_voice.sql; conventions in 20261125001000_auth_functions.sql.

-- ---------------------------------------------------------------------------
-- Issue (user flow). The function is granted to authenticated, so it must
-- not trust the lifetime its caller asks for: the API passes 60 s, but voice
-- tokens are single-use bearer credentials meant to live for seconds, so the
-- lifetime is clamped to 1..600 s here whatever the caller passes.
create function private.issue_runtime_token(
  p_agent_id uuid, p_token_hash text, p_kind text, p_ttl_s integer
) returns timestamptz
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_ttl integer := least(greatest(coalesce(p_ttl_s, 60), 1), 600);
  v_expires timestamptz;
begin
  if v_user is null then
    return null;
  end if;
  perform 1 from public.agents a
  where a.id = p_agent_id and a.user_id = v_user and a.deleted_at is null;
  if not found then
    return null;
  end if;
  insert into public.runtime_session_tokens (user_id, agent_id, kind, token_hash, expires_at)
  values (v_user, p_agent_id, p_kind, p_token_hash, now() + make_interval(secs => v_ttl))
  returning expires_at into v_expires;
  return v_expires;
end;
$$;

-- Consume (internal flow): one statement, so two runtimes presenting the same
-- token cannot both get it.
create function private.consume_runtime_token(p_token_hash text, p_kind text)
returns table (user_id uuid, agent_id uuid)
language sql
security definer
set search_path = ''
as $$
  update public.runtime_session_tokens t
  set status = 'used', used_at = now()
  where t.token_hash = p_token_hash
    and t.kind = p_kind
    and t.status = 'active'
    and t.expires_at > now()
  returning t.user_id, t.agent_id;
$$;

-- Revoke (user flow): when an agent is deleted, its unused tokens die with it.
create function private.revoke_agent_runtime_tokens(p_agent_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.runtime_session_tokens t set status = 'revoked'
  where t.agent_id = p_agent_id
    and t.status = 'active'
    and t.user_id = (select auth.uid());
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

-- ---------------------------------------------------------------------------
revoke execute on function
  private.issue_runtime_token(uuid, text, text, integer),
  private.consume_runtime_token(text, text),
  private.revoke_agent_runtime_tokens(uuid)
  from public, anon;
grant execute on function private.consume_runtime_token(text, text) to service_role;
grant execute on function
  private.issue_runtime_token(uuid, text, text, integer),
  private.revoke_agent_runtime_tokens(uuid)
  to authenticated;

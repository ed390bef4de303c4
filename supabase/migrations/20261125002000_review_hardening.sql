-- Review hardening (security review of the accounts and token functions).
--
-- 1. A revoked SDK key stays revoked. Owners may update `status` and
--    `revoked_at` on their own keys (that is how the API revokes), so without
--    a guard the same grant let them flip a revoked key back to 'active' (or
--    clear revoked_at), resurrecting a key that was revoked because it leaked.
-- 2. `private.issue_runtime_token` is granted to authenticated and took the
--    token lifetime from its caller unchecked. The API passes 60 s, but the
--    function must not rely on it: voice tokens are single-use bearer
--    credentials meant to live for seconds, so the lifetime is clamped to
--    1..600 s here, whatever the caller asks.

-- ---------------------------------------------------------------------------
-- Trigger function: EXECUTE is not checked when a trigger fires, so it is
-- revoked from everyone (same pattern as private.fill_owner_from_device).
create or replace function private.api_keys_keep_revoked() returns trigger
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
create or replace function private.issue_runtime_token(
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
-- create or replace keeps the existing grants; restated so this file is
-- correct on its own.
revoke execute on function private.issue_runtime_token(uuid, text, text, integer)
  from public, anon;
grant execute on function private.issue_runtime_token(uuid, text, text, integer)
  to authenticated;

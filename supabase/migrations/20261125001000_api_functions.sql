-- Privileged functions of the platform API (functions/), schema `private`.
--
-- Every function: security definer, `set search_path = ''`, fully qualified
-- names, execute revoked from public and anon, granted explicitly to
-- service_role (internal and auth flows, called by the API's login role or as
-- service_role) or authenticated (user flows that must touch rows the user
-- cannot write directly: claim, voice tokens, credential revocation).
-- User flows take the caller from auth.uid(), never from a parameter.

-- ---------------------------------------------------------------------------
-- Request start: create the product identity on first sight (never overwrite
-- a name the user edited), and for local sessions check the session is live.
create or replace function private.begin_request(
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
-- Throttling: count recent failures; record an attempt.
create or replace function private.throttle_failures(
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

create or replace function private.throttle_record(
  p_scope text, p_subject text, p_succeeded boolean
) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.auth_throttle (scope, subject, succeeded)
  values (p_scope, left(p_subject, 320), p_succeeded);
$$;

-- ---------------------------------------------------------------------------
-- Local auth.
create or replace function private.local_signup(
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

create or replace function private.local_login_lookup(p_email_normalized text)
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

create or replace function private.local_session_open(
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

-- Rotate a refresh token: the old one stops working, the session lives on.
create or replace function private.local_session_refresh(
  p_refresh_hash text, p_new_refresh_hash text
) returns table (jti uuid, user_id uuid, email text, display_name text, avatar_url text)
language sql
security definer
set search_path = ''
as $$
  with s as (
    update public.local_sessions ls
    set refresh_token_hash = p_new_refresh_hash, last_used_at = now()
    where ls.refresh_token_hash = p_refresh_hash
      and ls.revoked_at is null
      and ls.expires_at > now()
    returning ls.jti, ls.user_id
  )
  select s.jti, s.user_id, u.email, u.display_name, u.avatar_url
  from s join public.app_users u on u.id = s.user_id;
$$;

create or replace function private.local_session_touch(p_jti uuid, p_new_refresh_hash text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with s as (
    update public.local_sessions ls
    set last_used_at = now(),
        refresh_token_hash = coalesce(p_new_refresh_hash, ls.refresh_token_hash)
    where ls.jti = p_jti and ls.revoked_at is null and ls.expires_at > now()
    returning 1
  )
  select exists (select 1 from s);
$$;

create or replace function private.local_session_revoke(p_jti uuid) returns void
language sql
security definer
set search_path = ''
as $$
  update public.local_sessions set revoked_at = now()
  where jti = p_jti and revoked_at is null;
$$;

-- ---------------------------------------------------------------------------
-- SDK keys: resolve a key hash to its owner; touch last_used_at at most once a minute.
create or replace function private.api_key_lookup(p_token_hash text)
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
-- Voice-session tokens (user flow: issue; internal: consume atomically).
create or replace function private.issue_runtime_token(
  p_agent_id uuid, p_token_hash text, p_kind text, p_ttl_s integer
) returns timestamptz
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
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
  values (v_user, p_agent_id, p_kind, p_token_hash, now() + make_interval(secs => p_ttl_s))
  returning expires_at into v_expires;
  return v_expires;
end;
$$;

create or replace function private.consume_runtime_token(p_token_hash text, p_kind text)
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

create or replace function private.revoke_agent_runtime_tokens(p_agent_id uuid) returns integer
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

create or replace function private.revoke_device_credentials(p_device_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.device_credentials c
  set status = 'revoked', revoked_at = now(), updated_at = now()
  where c.device_id = p_device_id
    and c.status = 'active'
    and exists (
      select 1 from public.devices d
      where d.id = p_device_id and d.user_id = (select auth.uid())
    );
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

-- ---------------------------------------------------------------------------
-- OTA bootstrap. Codes and challenges are derived by the API from the
-- activation id (so a re-bootstrap can show the same code again without the
-- code being stored in clear); this function only decides and records.
-- kind: 'known' (valid credential), 'reuse' (still-valid pending activation
-- for this device; token rotated unless the device presented it), 'new'.
create or replace function private.device_bootstrap(
  p_device_identifier text,
  p_client_id text,
  p_serial_number text,
  p_bearer_hash text,
  p_user_agent text,
  p_ip text,
  p_firmware_version text,
  p_board text,
  p_system_info jsonb,
  p_new_id uuid,
  p_code_hash text,
  p_challenge_hash text,
  p_token_prefix text,
  p_token_hash text,
  p_ttl_s integer
) returns table (kind text, activation_id uuid, device_id uuid, token_kept boolean)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_device uuid;
  v_pending public.device_activation_requests%rowtype;
  v_serial text := coalesce(nullif(p_serial_number, ''), p_device_identifier);
begin
  if p_bearer_hash is not null then
    select c.device_id into v_device
    from public.device_credentials c
    join public.devices d on d.id = c.device_id
    where c.token_hash = p_bearer_hash and c.status = 'active' and d.deleted_at is null;
    if found then
      update public.device_credentials set last_used_at = now() where token_hash = p_bearer_hash;
    end if;
  else
    select d.id into v_device
    from public.devices d
    where d.serial_number = v_serial
      and d.deleted_at is null
      and exists (
        select 1 from public.device_credentials c
        where c.device_id = d.id and c.status = 'active'
      )
    order by d.updated_at desc
    limit 1;
  end if;

  if v_device is not null then
    insert into public.device_state (device_id, ip_address, firmware_version, board, system_info)
    values (
      v_device, left(coalesce(p_ip, ''), 64), left(p_firmware_version, 64), left(p_board, 128),
      coalesce(p_system_info, '{}'::jsonb)
    )
    on conflict on constraint device_state_pkey do update
    set ip_address = excluded.ip_address,
        firmware_version = coalesce(excluded.firmware_version, public.device_state.firmware_version),
        board = coalesce(excluded.board, public.device_state.board),
        system_info = case when excluded.system_info = '{}'::jsonb
                           then public.device_state.system_info else excluded.system_info end,
        updated_at = now();
    return query select 'known'::text, null::uuid, v_device, true;
    return;
  end if;

  select * into v_pending
  from public.device_activation_requests r
  where r.device_identifier = p_device_identifier
    and r.status = 'pending'
    and r.expires_at > now()
  order by r.created_at desc
  limit 1
  for update;

  -- Only the holder of the pending token hears the pending code again. The
  -- Device-Id is the Wi-Fi MAC, which anyone can send: handing its code and a
  -- fresh token to a bare request let an attacker claim the victim's Dot (or
  -- keep a token the victim's claim then activated).
  if found and v_pending.token_hash = p_bearer_hash then
    update public.device_activation_requests r
    set client_id = left(coalesce(p_client_id, r.client_id), 128),
        user_agent = left(coalesce(p_user_agent, r.user_agent), 512),
        ip_address = left(coalesce(p_ip, r.ip_address), 64),
        firmware_version = coalesce(left(p_firmware_version, 64), r.firmware_version),
        board = coalesce(left(p_board, 128), r.board),
        system_info = case when coalesce(p_system_info, '{}'::jsonb) = '{}'::jsonb
                           then r.system_info else p_system_info end,
        updated_at = now()
    where r.id = v_pending.id;
    return query select 'reuse'::text, v_pending.id, null::uuid, true;
    return;
  end if;

  update public.device_activation_requests r
  set status = 'expired', updated_at = now()
  where r.device_identifier = p_device_identifier and r.status = 'pending';

  insert into public.device_activation_requests (
    id, device_identifier, client_id, serial_number, user_agent, ip_address,
    firmware_version, board, system_info, code_hash, challenge_hash, token_prefix, token_hash,
    expires_at
  ) values (
    p_new_id, p_device_identifier, left(coalesce(p_client_id, ''), 128),
    nullif(p_serial_number, ''), left(coalesce(p_user_agent, ''), 512),
    left(coalesce(p_ip, ''), 64), left(p_firmware_version, 64), left(p_board, 128),
    coalesce(p_system_info, '{}'::jsonb), p_code_hash, p_challenge_hash, p_token_prefix,
    p_token_hash, now() + make_interval(secs => p_ttl_s)
  );
  return query select 'new'::text, p_new_id, null::uuid, false;
end;
$$;

-- Activation poll. status: pending | completed | not_found | gone.
create or replace function private.device_activate(
  p_challenge_hash text, p_device_identifier text
) returns table (status text, activation_id uuid, serial_number text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.device_activation_requests%rowtype;
begin
  if p_challenge_hash is not null then
    select * into v_row from public.device_activation_requests r
    where r.challenge_hash = p_challenge_hash
    for update;
  else
    select * into v_row from public.device_activation_requests r
    where r.device_identifier = p_device_identifier
      and (r.status <> 'pending' or r.expires_at > now())
    order by r.created_at desc
    limit 1
    for update;
  end if;
  if not found then
    return query select 'not_found'::text, null::uuid, null::text;
    return;
  end if;
  if v_row.status = 'pending' and v_row.expires_at <= now() then
    update public.device_activation_requests set status = 'expired', updated_at = now()
    where id = v_row.id;
    return query select 'not_found'::text, v_row.id, v_row.serial_number;
    return;
  end if;
  if v_row.status = 'pending' then
    return query select 'pending'::text, v_row.id, v_row.serial_number;
    return;
  end if;
  if v_row.status = 'claimed' then
    update public.device_activation_requests
    set status = 'completed', completed_at = now(), updated_at = now()
    where id = v_row.id;
    return query select 'completed'::text, v_row.id, v_row.serial_number;
    return;
  end if;
  return query select 'gone'::text, v_row.id, v_row.serial_number;
end;
$$;

-- Claim by spoken code (user flow). status: claimed | not_found | conflict | throttled.
-- Failed attempts are recorded in auth_throttle (scope claim_user); the
-- caller commits them even when answering 404, so brute force hits 429.
create or replace function private.claim_activation(
  p_code_hash text,
  p_device_endpoint text,
  p_max_failures integer,
  p_window_s integer
) returns table (status text, device_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_req public.device_activation_requests%rowtype;
  v_serial text;
  v_device uuid;
  v_suffix text;
begin
  if v_user is null then
    return query select 'not_found'::text, null::uuid;
    return;
  end if;
  if private.throttle_failures('claim_user', v_user::text, p_window_s) >= p_max_failures then
    return query select 'throttled'::text, null::uuid;
    return;
  end if;

  select * into v_req from public.device_activation_requests r
  where r.code_hash = p_code_hash and r.status = 'pending' and r.expires_at > now()
  order by r.created_at desc
  limit 1
  for update;
  if not found then
    perform private.throttle_record('claim_user', v_user::text, false);
    return query select 'not_found'::text, null::uuid;
    return;
  end if;

  v_serial := coalesce(nullif(v_req.serial_number, ''), v_req.device_identifier);
  -- Only a device that really is paired elsewhere (it holds an active credential)
  -- blocks the claim. A row someone typed in by hand proves nothing: anyone can
  -- type a serial, while the spoken code proves the claimer has the device.
  if exists (
    select 1 from public.devices d
    where d.serial_number = v_serial and d.deleted_at is null and d.user_id <> v_user
      and exists (
        select 1 from public.device_credentials c
        where c.device_id = d.id and c.status = 'active'
      )
  ) then
    return query select 'conflict'::text, null::uuid;
    return;
  end if;

  select d.id into v_device from public.devices d
  where d.user_id = v_user and d.serial_number = v_serial and d.deleted_at is null
  for update;
  v_suffix := upper(right(regexp_replace(v_serial, '[^A-Za-z0-9]', '', 'g'), 6));
  if v_device is null then
    insert into public.devices (user_id, serial_number, hardware_id, model, display_name,
                                device_endpoint)
    values (
      v_user, v_serial, v_req.device_identifier, 'Dot S3',
      case when v_suffix = '' then 'Dot Device' else 'Dot ' || v_suffix end,
      left(coalesce(p_device_endpoint, ''), 2048)
    )
    returning id into v_device;
  else
    update public.devices
    set hardware_id = v_req.device_identifier, updated_at = now()
    where id = v_device;
  end if;

  insert into public.device_state (device_id, availability, last_seen_at, ip_address,
                                   firmware_version, board, system_info)
  values (v_device, 'available', now(), v_req.ip_address, v_req.firmware_version, v_req.board,
          v_req.system_info)
  on conflict on constraint device_state_pkey do update
  set availability = 'available', last_seen_at = now(), ip_address = excluded.ip_address,
      firmware_version = coalesce(excluded.firmware_version, public.device_state.firmware_version),
      board = coalesce(excluded.board, public.device_state.board),
      system_info = excluded.system_info, updated_at = now();

  update public.device_credentials
  set status = 'revoked', revoked_at = now(), updated_at = now()
  where device_credentials.device_id = v_device and device_credentials.status = 'active';
  insert into public.device_credentials (device_id, prefix, token_hash)
  values (v_device, v_req.token_prefix, v_req.token_hash);

  update public.device_activation_requests
  set status = 'claimed', claimed_by_user_id = v_user, device_id = v_device,
      claimed_at = now(), updated_at = now()
  where id = v_req.id;
  perform private.throttle_record('claim_user', v_user::text, true);
  return query select 'claimed'::text, v_device;
end;
$$;

-- Device credential check for /ws. reason: ok | invalid | hardware_mismatch.
create or replace function private.device_verify(
  p_token_hash text, p_device_identifier text, p_ip text
) returns table (reason text, device_id uuid, user_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_device public.devices%rowtype;
begin
  select d.* into v_device
  from public.device_credentials c
  join public.devices d on d.id = c.device_id
  where c.token_hash = p_token_hash and c.status = 'active' and d.deleted_at is null;
  if not found then
    return query select 'invalid'::text, null::uuid, null::uuid;
    return;
  end if;
  if v_device.hardware_id is not null
     and nullif(btrim(p_device_identifier), '') is not null
     and lower(v_device.hardware_id) <> lower(btrim(p_device_identifier)) then
    return query select 'hardware_mismatch'::text, v_device.id, v_device.user_id;
    return;
  end if;
  update public.device_credentials set last_used_at = now(), updated_at = now()
  where token_hash = p_token_hash;
  insert into public.device_state (device_id, availability, last_seen_at, ip_address)
  values (v_device.id, 'available', now(), left(coalesce(p_ip, ''), 64))
  on conflict on constraint device_state_pkey do update
  set availability = 'available', last_seen_at = now(),
      ip_address = case when excluded.ip_address = '' then public.device_state.ip_address
                        else excluded.ip_address end,
      updated_at = now();
  return query select 'ok'::text, v_device.id, v_device.user_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- Config-change signal for the runtime (LISTEN opendot_device_config):
-- a device's binding changed, or an agent it follows got a new version.
create or replace function private.notify_device_config() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_device uuid;
begin
  if tg_table_name = 'deployment_device_targets' then
    if tg_op = 'DELETE' then
      perform pg_notify('opendot_device_config', old.device_id::text);
    else
      perform pg_notify('opendot_device_config', new.device_id::text);
    end if;
  elsif tg_table_name = 'agent_versions' then
    for v_device in
      select t.device_id
      from public.deployments dp
      join public.deployment_device_targets t on t.deployment_id = dp.id
      where dp.agent_id = new.agent_id and dp.status = 'active' and t.status = 'active'
        and dp.follow_latest
    loop
      perform pg_notify('opendot_device_config', v_device::text);
    end loop;
  end if;
  return null;
end;
$$;

create trigger deployment_device_targets_notify_config
  after insert or update or delete on public.deployment_device_targets
  for each row execute function private.notify_device_config();
create trigger agent_versions_notify_config
  after insert on public.agent_versions
  for each row execute function private.notify_device_config();

-- ---------------------------------------------------------------------------
-- Privileges.
do $grants$
declare
  f text;
begin
  foreach f in array array[
    'private.begin_request(uuid, text, text, text, text, text, uuid)',
    'private.throttle_failures(text, text, integer)',
    'private.throttle_record(text, text, boolean)',
    'private.local_signup(text, text, text, text)',
    'private.local_login_lookup(text)',
    'private.local_session_open(uuid, text, integer, text, text)',
    'private.local_session_refresh(text, text)',
    'private.local_session_touch(uuid, text)',
    'private.local_session_revoke(uuid)',
    'private.api_key_lookup(text)',
    'private.issue_runtime_token(uuid, text, text, integer)',
    'private.consume_runtime_token(text, text)',
    'private.revoke_agent_runtime_tokens(uuid)',
    'private.revoke_device_credentials(uuid)',
    'private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer)',
    'private.device_activate(text, text)',
    'private.claim_activation(text, text, integer, integer)',
    'private.device_verify(text, text, text)',
    'private.notify_device_config()'
  ] loop
    execute format('revoke execute on function %s from public, anon', f);
  end loop;
end
$grants$;

grant execute on function
  private.begin_request(uuid, text, text, text, text, text, uuid),
  private.throttle_failures(text, text, integer),
  private.throttle_record(text, text, boolean),
  private.local_signup(text, text, text, text),
  private.local_login_lookup(text),
  private.local_session_open(uuid, text, integer, text, text),
  private.local_session_refresh(text, text),
  private.local_session_touch(uuid, text),
  private.local_session_revoke(uuid),
  private.api_key_lookup(text),
  private.consume_runtime_token(text, text),
  private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer),
  private.device_activate(text, text),
  private.device_verify(text, text, text)
  to service_role;

grant execute on function
  private.issue_runtime_token(uuid, text, text, integer),
  private.revoke_agent_runtime_tokens(uuid),
  private.revoke_device_credentials(uuid),
  private.claim_activation(text, text, integer, integer)
  to authenticated;

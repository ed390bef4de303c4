-- Pairing a Dot: the OTA bootstrap that hands an unknown device a spoken
-- code, the activation poll, the owner's claim by that code, and revoking a
-- device's credentials when its owner removes it. Tables in
-- 20261125000300_devices.sql; conventions in 20261125001000_auth_functions.sql.
--
-- Secrets are never stored in clear: the API derives the code and the
-- challenge from the activation id and passes their SHA-256 here.

-- ---------------------------------------------------------------------------
-- OTA bootstrap. Codes and challenges are derived by the API from the
-- activation id (so a re-bootstrap can show the same code again without the
-- code being stored in clear); this function only decides and records.
-- kind: 'known' (valid credential), 'reuse' (still-valid pending activation
-- for this device; token rotated unless the device presented it), 'new'.
create function private.device_bootstrap(
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
create function private.device_activate(
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
create function private.claim_activation(
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

-- ---------------------------------------------------------------------------
-- Device removal (user flow): the owner's device loses every credential.
create function private.revoke_device_credentials(p_device_id uuid) returns integer
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
revoke execute on function
  private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer),
  private.device_activate(text, text),
  private.claim_activation(text, text, integer, integer),
  private.revoke_device_credentials(uuid)
  from public, anon;
grant execute on function
  private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer),
  private.device_activate(text, text)
  to service_role;
grant execute on function
  private.claim_activation(text, text, integer, integer),
  private.revoke_device_credentials(uuid)
  to authenticated;

-- Claim hardening (review finding, MEDIUM): a serial registered by hand in
-- another account (no credential, so it can never connect) no longer blocks the
-- person who holds the device and speaks its code. Same signature as in
-- 20261125001000, so privileges carry over with create or replace.

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

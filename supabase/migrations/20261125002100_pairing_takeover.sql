-- Pairing hardening (review finding, HIGH): a re-bootstrap reuses the pending
-- activation code only when the device presents the pending token it was given.
-- A bare request for the same Device-Id starts a new activation (new code, new
-- challenge, new token) and expires the old one, as the original did.
-- Same signature as 20261125001000; privileges carry over with create or replace.

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

-- Pairing a Dot: the OTA bootstrap that hands an unknown device a spoken
-- code, the activation poll, the owner's claim by that code, and revoking a
-- device's credentials when its owner removes it. Tables in
-- 20261125000300_devices.sql; conventions in 20261125001000_auth_functions.sql.
--
-- Secrets are never stored in clear: the API derives the code and the
-- challenge from the activation id and passes their SHA-256 here.
--
-- Who is who. The Device-Id (a Wi-Fi MAC) is public: anyone near the Dot can
-- read it off the air and send it. So a request that only names a MAC is
-- treated as a stranger: it never hears a pending code, never writes what a
-- paired Dot reported, and gets the same answer (a fresh activation) whether
-- or not that MAC is paired, so OTA is no oracle for "is this MAC paired?".
-- A paired Dot proves itself with its device token (the OpenDot firmware
-- sends it) or, for stock xiaozhi firmware that never sends a token on OTA,
-- with the Client-Id it was paired with (a random UUID kept in its flash,
-- never broadcast); with the Client-Id alone it gets its connect information
-- but still writes nothing.
--
-- Guessing codes. A code is 6 digits: 900,000 values. Three limits hold
-- however many accounts an attacker makes:
--   * per user:    5 wrong claims per 10 minutes;
--   * per address: 20 wrong claims per 10 minutes (sign-ups are limited per
--                  address too, by the API), so accounts do not multiply
--                  guesses from one place;
--   * per code:    a pending code is refused, and the device shown a new one,
--                  once 50 wrong claims have been made anywhere since it was
--                  issued (every wrong claim is a guess at every pending code).
-- So any one code receives at most 50 guesses: the chance that a given Dot is
-- stolen while it shows a code is at most 50 / 900,000 ~ 1 in 18,000 per code,
-- whatever the number of accounts or addresses; an attacker who keeps making
-- 50 wrong claims per code lifetime only makes owners read a fresh code. The
-- limits are constants here, not parameters, because authenticated callers
-- reach this function (docs/architecture.md, "Pairing").

-- ---------------------------------------------------------------------------
-- Has a code issued at `p_since` received its share of guesses? Counts at most
-- 50 rows through the (scope, subject, created_at) index.
create function private.code_guesses_exhausted(p_since timestamptz) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select count(*) >= 50
  from (
    select 1 from public.auth_throttle t
    where t.scope = 'claim_code' and t.subject = '*' and not t.succeeded
      and t.created_at >= p_since
    limit 50
  ) guesses;
$$;

-- Delete dead activation requests (pending or expired, past their expiry): at
-- most 20 per call, through the partial expires_at index, skipping rows
-- another transaction holds. Called by every bootstrap that creates a request,
-- so the table is kept small by the traffic that grows it, without a
-- scheduler: each new request can leave at most one dead row behind, and each
-- removes up to 20. `opendot bench ota` measures the cost: none when there is
-- nothing to delete, about 2 ms per bootstrap while a backlog drains
-- (BENCHMARKS.md).
create function private.sweep_activation_requests() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from public.device_activation_requests r
  where r.id in (
    select o.id from public.device_activation_requests o
    where o.status in ('pending', 'expired') and o.expires_at < now()
    order by o.expires_at
    limit 20
    for update skip locked
  );
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

-- ---------------------------------------------------------------------------
-- OTA bootstrap. Codes and challenges are derived by the API from the
-- activation id (so a re-bootstrap can show the same code again without the
-- code being stored in clear); this function only decides and records.
-- kind:
--   'known'     the device's token is valid (and, when the device was claimed
--               from a Device-Id, sent with that Device-Id): its report is stored;
--   'connect'   no valid token, but the Device-Id and Client-Id of a paired
--               device: connect information only, nothing is written;
--   'reuse'     the holder of a pending request's token: the same code again;
--   'new'       a fresh pending request (replacing this hardware's pending one);
--   'throttled' this client address already has p_max_pending_per_address
--               pending requests (OTA registration spam).
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
  p_ttl_s integer,
  p_max_pending_per_address integer
) returns table (kind text, activation_id uuid, device_id uuid, token_kept boolean)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_device uuid;
  v_pending public.device_activation_requests%rowtype;
  v_ip text := left(coalesce(p_ip, ''), 64);
begin
  if p_bearer_hash is not null then
    select c.device_id into v_device
    from public.device_credentials c
    join public.devices d on d.id = c.device_id
    where c.token_hash = p_bearer_hash and c.status = 'active' and d.deleted_at is null
      and (d.hardware_id is null or lower(d.hardware_id) = lower(p_device_identifier));
  end if;

  if v_device is not null then
    update public.device_credentials set last_used_at = now() where token_hash = p_bearer_hash;
    insert into public.device_state (device_id, ip_address, firmware_version, board, system_info)
    values (
      v_device, v_ip, left(p_firmware_version, 64), left(p_board, 128),
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

  if nullif(p_client_id, '') is not null then
    select d.id into v_device
    from public.devices d
    where d.hardware_id = p_device_identifier
      and d.client_id = p_client_id
      and d.deleted_at is null
      and exists (
        select 1 from public.device_credentials c
        where c.device_id = d.id and c.status = 'active'
      )
    order by d.updated_at desc
    limit 1;
    if v_device is not null then
      return query select 'connect'::text, null::uuid, v_device, true;
      return;
    end if;
  end if;

  select * into v_pending
  from public.device_activation_requests r
  where r.device_identifier = p_device_identifier
    and r.status = 'pending'
    and r.expires_at > now()
  order by r.created_at desc
  limit 1
  for update;

  -- Only the holder of the pending token hears the pending code again: handing
  -- it to a bare request would let whoever sends the MAC claim the victim's Dot.
  -- A code that has received its share of guesses is not shown again either.
  if found and v_pending.token_hash = p_bearer_hash
     and not private.code_guesses_exhausted(v_pending.created_at) then
    update public.device_activation_requests r
    set client_id = left(coalesce(p_client_id, r.client_id), 128),
        user_agent = left(coalesce(p_user_agent, r.user_agent), 512),
        ip_address = coalesce(nullif(v_ip, ''), r.ip_address),
        firmware_version = coalesce(left(p_firmware_version, 64), r.firmware_version),
        board = coalesce(left(p_board, 128), r.board),
        system_info = case when coalesce(p_system_info, '{}'::jsonb) = '{}'::jsonb
                           then r.system_info else p_system_info end,
        updated_at = now()
    where r.id = v_pending.id;
    return query select 'reuse'::text, v_pending.id, null::uuid, true;
    return;
  end if;

  -- One client address may hold only so many pending requests (a household or
  -- a small workshop pairs a few Dots at once; a script inventing MACs is
  -- stopped here). This hardware's own pending request does not count: the
  -- new one replaces it.
  if (
    select count(*) from public.device_activation_requests r
    where r.ip_address = v_ip and r.status = 'pending' and r.expires_at > now()
      and r.device_identifier <> p_device_identifier
  ) >= p_max_pending_per_address then
    return query select 'throttled'::text, null::uuid, null::uuid, false;
    return;
  end if;

  -- One pending request per hardware id: the new one replaces (deletes) the
  -- old, so repeated bootstraps do not pile up rows.
  delete from public.device_activation_requests r
  where r.device_identifier = p_device_identifier and r.status in ('pending', 'expired');
  perform private.sweep_activation_requests();

  insert into public.device_activation_requests (
    id, device_identifier, client_id, serial_number, user_agent, ip_address,
    firmware_version, board, system_info, code_hash, challenge_hash, token_prefix, token_hash,
    expires_at
  ) values (
    p_new_id, p_device_identifier, left(coalesce(p_client_id, ''), 128),
    nullif(p_serial_number, ''), left(coalesce(p_user_agent, ''), 512),
    v_ip, left(p_firmware_version, 64), left(p_board, 128),
    coalesce(p_system_info, '{}'::jsonb), p_code_hash, p_challenge_hash, p_token_prefix,
    p_token_hash, now() + make_interval(secs => p_ttl_s)
  );
  return query select 'new'::text, p_new_id, null::uuid, false;
end;
$$;

-- Activation poll. status: pending | completed | not_found | gone.
-- p_verified_serial: the API verified the device's HMAC over the challenge
-- with the factory key of this serial; the request remembers that (and the
-- serial, when the bootstrap did not carry one) so the claim can require it.
create function private.device_activate(
  p_challenge_hash text, p_device_identifier text, p_verified_serial text
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
    if p_verified_serial is not null then
      update public.device_activation_requests r
      set hmac_verified_at = coalesce(r.hmac_verified_at, now()),
          serial_number = coalesce(r.serial_number, left(p_verified_serial, 128)),
          updated_at = now()
      where r.id = v_row.id;
    end if;
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

-- Claim by spoken code (user flow), from the client address the API saw.
-- status: claimed | not_found | conflict | throttled | unverified.
-- Wrong claims are recorded in auth_throttle (claim_user, claim_address and
-- claim_code); the caller commits them even when answering 404, so guessing
-- hits 429 (see the limits at the top of this file).
create function private.claim_activation(
  p_code_hash text,
  p_device_endpoint text,
  p_address text
) returns table (status text, device_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_address text := left(coalesce(nullif(btrim(p_address), ''), 'unknown'), 320);
  v_req public.device_activation_requests%rowtype;
  v_serial text;
  v_device uuid;
  v_suffix text;
begin
  if v_user is null then
    return query select 'not_found'::text, null::uuid;
    return;
  end if;
  if private.throttle_failures('claim_user', v_user::text, 600) >= 5
     or private.throttle_failures('claim_address', v_address, 600) >= 20 then
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
    perform private.throttle_record('claim_address', v_address, false);
    perform private.throttle_record('claim_code', '*', false);
    return query select 'not_found'::text, null::uuid;
    return;
  end if;
  -- The code has received its share of guesses: it is retired, and the device
  -- gets a new one at its next bootstrap. The right code is not a wrong guess,
  -- so nothing is recorded.
  if private.code_guesses_exhausted(v_req.created_at) then
    update public.device_activation_requests set status = 'expired', updated_at = now()
    where id = v_req.id;
    return query select 'not_found'::text, null::uuid;
    return;
  end if;
  -- Once the operator has registered factory keys, only hardware that proved
  -- its key (the HMAC on the activation poll) can be claimed.
  if v_req.hmac_verified_at is null
     and exists (select 1 from public.device_factory_keys k where k.revoked_at is null) then
    return query select 'unverified'::text, null::uuid;
    return;
  end if;

  v_serial := coalesce(nullif(v_req.serial_number, ''), v_req.device_identifier);
  -- Only a device that really is paired elsewhere (it holds an active credential)
  -- blocks the claim. A row someone typed in by hand proves nothing: anyone can
  -- type a serial, while the spoken code proves the claimer has the device.
  if exists (
    select 1 from public.devices d
    where d.deleted_at is null and d.user_id <> v_user
      and (d.serial_number = v_serial or d.hardware_id = v_req.device_identifier)
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
    insert into public.devices (user_id, serial_number, hardware_id, client_id, model,
                                display_name, device_endpoint)
    values (
      v_user, v_serial, v_req.device_identifier, nullif(v_req.client_id, ''), 'Dot S3',
      case when v_suffix = '' then 'Dot Device' else 'Dot ' || v_suffix end,
      left(coalesce(p_device_endpoint, ''), 2048)
    )
    returning id into v_device;
  else
    update public.devices
    set hardware_id = v_req.device_identifier, client_id = nullif(v_req.client_id, ''),
        updated_at = now()
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
  private.code_guesses_exhausted(timestamptz),
  private.sweep_activation_requests(),
  private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer, integer),
  private.device_activate(text, text, text),
  private.claim_activation(text, text, text),
  private.revoke_device_credentials(uuid)
  from public, anon;
grant execute on function
  private.sweep_activation_requests(),
  private.device_bootstrap(text, text, text, text, text, text, text, text, jsonb, uuid, text, text, text, text, integer, integer),
  private.device_activate(text, text, text)
  to service_role;
grant execute on function
  private.claim_activation(text, text, text),
  private.revoke_device_credentials(uuid)
  to authenticated;

-- A paired Dot at run time: the credential check when it opens /ws, and the
-- signals that reach the runtime process holding its socket through
-- LISTEN/NOTIFY (a config change, a memory reset). Tables in
-- 20261125000300_devices.sql; conventions in 20261125001000_auth_functions.sql.

-- ---------------------------------------------------------------------------
-- Device credential check for /ws. reason: ok | invalid | hardware_mismatch.
create function private.device_verify(
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
  -- A token belongs to the hardware it was claimed from: from other hardware,
  -- or with the Device-Id left out, it is refused alike (a stolen token must
  -- not work by simply not saying where it comes from).
  if v_device.hardware_id is not null
     and lower(v_device.hardware_id) is distinct from lower(nullif(btrim(p_device_identifier), '')) then
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
create function private.notify_device_config() returns trigger
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
-- Memory-reset signal (LISTEN opendot_device_memory): whoever moves
-- device_state.memory_reset_at (the user's reset endpoint, the runtime's
-- internal one, a rebind) makes Postgres say so, with the device id as
-- payload, so a runtime holding the device forgets too.
create function private.notify_device_memory() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.memory_reset_at is not null
     and (tg_op = 'INSERT' or new.memory_reset_at is distinct from old.memory_reset_at) then
    perform pg_notify('opendot_device_memory', new.device_id::text);
  end if;
  return null;
end;
$$;

create trigger device_state_memory_notify
  after insert or update of memory_reset_at on public.device_state
  for each row execute function private.notify_device_memory();

-- A memory reset forgets the remembered facts too, whoever resets (the owner,
-- who has no grant on memory_facts, or the runtime): the rule lives with the
-- column instead of in every caller.
create function private.forget_facts_on_reset() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.memory_reset_at is distinct from old.memory_reset_at then
    new.memory_facts := '[]'::jsonb;
  end if;
  return new;
end;
$$;

create trigger device_state_forget_facts_on_reset
  before update of memory_reset_at on public.device_state
  for each row execute function private.forget_facts_on_reset();

-- ---------------------------------------------------------------------------
-- Trigger functions need no EXECUTE to fire, so nobody gets it.
revoke execute on function
  private.device_verify(text, text, text),
  private.notify_device_config(),
  private.notify_device_memory(),
  private.forget_facts_on_reset()
  from public, anon;
grant execute on function private.device_verify(text, text, text) to service_role;

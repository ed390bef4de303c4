-- Dot devices: inventory, live state, pairing (activation requests and
-- credentials), factory HMAC keys, and deployments (agent -> device bindings).
-- See 20261125000100_accounts.sql for the conventions.
--
-- Rows that belong to a device (device_state, deployment_device_targets)
-- carry their owner's user_id, so their policies are `user_id = (select
-- auth.uid())`, which an index answers directly. The first version
-- authorised them through `device_id in (select id from devices where
-- user_id = ...)`; RLS quals are security barriers, so the planner ran that as
-- a hashed filter over a sequential scan, and with 10,000 devices `opendot
-- bench db` showed both tables read in full on every platform-state request.
-- The database keeps the copy honest, not the callers: composite foreign keys
-- (user_id, device_id) -> devices (user_id, id) and (user_id, deployment_id)
-- -> deployments (user_id, id) make it impossible for a row to name one user
-- while pointing at another user's device or deployment. Callers need not
-- supply user_id: a BEFORE INSERT trigger copies it from the device (RLS WITH
-- CHECK then sees the device owner's id, so a stranger is refused).

-- ---------------------------------------------------------------------------
create table public.devices (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  serial_number text not null check (length(btrim(serial_number)) between 1 and 128),
  -- Who the device is, as the system saw it when the device was claimed: the
  -- firmware's Device-Id (its Wi-Fi MAC, or Client-Id when it sends no MAC)
  -- and its Client-Id (a UUID the firmware keeps in flash). Only the claim
  -- (private.claim_activation) writes them; owners have no column grant, so
  -- nobody can point their record at somebody else's hardware.
  hardware_id text check (length(hardware_id) <= 128),
  client_id text check (length(client_id) <= 128),
  model text not null default 'Dot S3' check (length(model) <= 64),
  display_name text not null check (length(btrim(display_name)) between 1 and 200),
  device_endpoint text not null default '' check (length(device_endpoint) <= 2048),
  status text not null default 'paired' check (status in ('paired', 'removed')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  check ((status = 'removed') = (deleted_at is not null)),
  -- Target of the owner-carrying composite foreign keys below; user_id first,
  -- so the referencing side's (user_id, ...) index serves policy and key alike.
  constraint devices_user_id_id_key unique (user_id, id)
);
create unique index devices_user_serial_key on public.devices (user_id, serial_number)
  where deleted_at is null;
create index devices_user_id_idx on public.devices (user_id, updated_at desc);
-- Claim checks "is this device paired to another account?" by serial and by
-- hardware id, and the OTA bootstrap finds a paired device by hardware id:
-- both look across users.
create index devices_serial_number_idx on public.devices (serial_number)
  where deleted_at is null;
create index devices_hardware_id_idx on public.devices (hardware_id)
  where hardware_id is not null and deleted_at is null;
alter table public.devices enable row level security;

create policy "devices: read own" on public.devices
  for select to authenticated using (user_id = (select auth.uid()));
create policy "devices: create own" on public.devices
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "devices: update own" on public.devices
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));
create policy "devices: delete own" on public.devices
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.devices from anon, authenticated;
grant select, delete on table public.devices to authenticated;
grant insert (id, user_id, serial_number, model, display_name, device_endpoint)
  on table public.devices to authenticated;
grant update (serial_number, model, display_name, device_endpoint, status, deleted_at, updated_at)
  on table public.devices to authenticated;
grant all on table public.devices to service_role;

-- Fills user_id of a device's child rows from the device. EXECUTE is not
-- checked when a trigger fires, so it is revoked from everyone; security
-- definer lets it read the owner whatever the caller may see (the composite
-- key re-checks the result).
create function private.fill_owner_from_device() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.user_id is null then
    select d.user_id into new.user_id from public.devices d where d.id = new.device_id;
  end if;
  return new;
end;
$$;
revoke execute on function private.fill_owner_from_device() from public, anon, authenticated;

-- ---------------------------------------------------------------------------
-- device_state: live state, one row per device. firmware_version, board and
-- the app/system info come from the firmware's OTA request body.
-- memory_reset_at: the device's conversational memory is the last N completed
-- voice_turns of its sessions after this instant (null = since forever).
-- memory_facts: what the agent was asked to remember on this device (its
-- remember/forget tools), at most 50 short strings; a memory reset empties it.
create table public.device_state (
  device_id uuid primary key references public.devices (id) on delete cascade,
  user_id uuid not null,
  availability text not null default 'unknown'
    check (availability in ('available', 'offline', 'unknown')),
  last_seen_at timestamptz,
  ip_address text not null default '' check (length(ip_address) <= 64),
  firmware_version text check (length(firmware_version) <= 64),
  board text check (length(board) <= 128),
  runtime_version text check (length(runtime_version) <= 64),
  -- What the firmware reports about itself is bounded (8 KiB of JSON text; a
  -- real xiaozhi OTA body is about 1.1 KiB), so a device cannot park
  -- megabytes in the table through its OTA checks.
  app_info jsonb not null default '{}'::jsonb
    check (jsonb_typeof(app_info) = 'object' and octet_length(app_info::text) <= 8192),
  system_info jsonb not null default '{}'::jsonb
    check (jsonb_typeof(system_info) = 'object' and octet_length(system_info::text) <= 8192),
  reported_state_json jsonb not null default '{}'::jsonb,
  desired_state_json jsonb not null default '{}'::jsonb,
  update_mode text not null default 'idle' check (update_mode in ('idle', 'checking', 'binding')),
  memory_reset_at timestamptz,
  memory_facts jsonb not null default '[]'::jsonb
    check (jsonb_typeof(memory_facts) = 'array' and jsonb_array_length(memory_facts) <= 50),
  updated_at timestamptz not null default now(),
  constraint device_state_device_owner_fkey foreign key (user_id, device_id)
    references public.devices (user_id, id) on delete cascade on update cascade
);
-- Leads with user_id for the policy; also covers the composite foreign key.
create index device_state_user_id_idx on public.device_state (user_id, device_id);
create trigger device_state_fill_owner
  before insert on public.device_state
  for each row execute function private.fill_owner_from_device();
alter table public.device_state enable row level security;

create policy "device_state: read own devices" on public.device_state
  for select to authenticated using (user_id = (select auth.uid()));
create policy "device_state: create for own devices" on public.device_state
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "device_state: update own devices" on public.device_state
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- Owners write the console's view of the device (availability, the check
-- state, a memory reset); what the device reported about itself (firmware,
-- board, system info) comes only from the device, through the OTA bootstrap.
revoke all on table public.device_state from anon, authenticated;
grant select on table public.device_state to authenticated;
grant insert (device_id, availability, last_seen_at, ip_address, update_mode, memory_reset_at)
  on table public.device_state to authenticated;
-- A memory reset also empties memory_facts, through a trigger
-- (private.forget_facts_on_reset), so owners need no grant on the facts.
grant update (availability, last_seen_at, ip_address, update_mode, memory_reset_at, updated_at)
  on table public.device_state to authenticated;
grant all on table public.device_state to service_role;

-- ---------------------------------------------------------------------------
-- device_activation_requests: spoken-code pairing. Nothing secret is stored in
-- clear: the 6-digit code, the challenge and the pre-minted device token are
-- SHA-256 hex. The device receives the plain challenge once, in the OTA
-- answer, and sends it back on /ota/activate with its HMAC; the API finds the
-- row by the challenge's hash and verifies the HMAC against the plain value
-- the device just sent, so the clear text never needs to be kept.
--
-- What OTA traffic can store here is bounded (see
-- 20261125001200_pairing_functions.sql): one pending request per hardware id
-- (a new bootstrap replaces it), a capped number per client address, system
-- info of at most 8 KiB, and expired requests are deleted as new ones come.
-- hmac_verified_at: when the device proved its factory key (v2 activation);
-- once an operator registers factory keys, only verified requests are claimed.
create table public.device_activation_requests (
  id uuid primary key default gen_random_uuid(),
  device_identifier text not null check (length(device_identifier) between 1 and 128),
  client_id text not null default '' check (length(client_id) <= 128),
  serial_number text check (length(serial_number) <= 128),
  user_agent text not null default '' check (length(user_agent) <= 512),
  ip_address text not null default '' check (length(ip_address) <= 64),
  firmware_version text check (length(firmware_version) <= 64),
  board text check (length(board) <= 128),
  system_info jsonb not null default '{}'::jsonb
    check (jsonb_typeof(system_info) = 'object' and octet_length(system_info::text) <= 8192),
  code_hash text not null check (code_hash ~ '^[0-9a-f]{64}$'),
  challenge_hash text not null check (challenge_hash ~ '^[0-9a-f]{64}$'),
  token_prefix text not null check (length(token_prefix) between 4 and 32),
  token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
  status text not null default 'pending'
    check (status in ('pending', 'expired', 'claimed', 'completed')),
  claimed_by_user_id uuid references public.app_users (id) on delete set null,
  device_id uuid references public.devices (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  expires_at timestamptz not null,
  claimed_at timestamptz,
  completed_at timestamptz,
  hmac_verified_at timestamptz
);
-- At most one pending request per code: a new bootstrap that draws a code
-- already pending elsewhere gets a unique violation and draws again.
create unique index device_activation_requests_pending_code_key
  on public.device_activation_requests (code_hash) where status = 'pending';
create index device_activation_requests_code_hash_idx
  on public.device_activation_requests (code_hash);
create unique index device_activation_requests_challenge_hash_key
  on public.device_activation_requests (challenge_hash);
create unique index device_activation_requests_token_hash_key
  on public.device_activation_requests (token_hash);
create index device_activation_requests_identifier_idx
  on public.device_activation_requests (device_identifier, status, created_at desc);
-- The sweep of dead requests, and the per-address cap on pending ones.
create index device_activation_requests_expires_at_idx
  on public.device_activation_requests (expires_at) where status in ('pending', 'expired');
create index device_activation_requests_pending_ip_idx
  on public.device_activation_requests (ip_address, expires_at) where status = 'pending';
create index device_activation_requests_claimed_by_idx
  on public.device_activation_requests (claimed_by_user_id);
create index device_activation_requests_device_id_idx
  on public.device_activation_requests (device_id);
alter table public.device_activation_requests enable row level security;
revoke all on table public.device_activation_requests from anon, authenticated;
grant all on table public.device_activation_requests to service_role;

-- ---------------------------------------------------------------------------
-- device_credentials: opaque bearer tokens (od_dt_...) for /ws and OTA.
create table public.device_credentials (
  id uuid primary key default gen_random_uuid(),
  device_id uuid not null references public.devices (id) on delete cascade,
  prefix text not null check (length(prefix) between 4 and 32),
  token_hash text not null check (token_hash ~ '^[0-9a-f]{64}$'),
  status text not null default 'active' check (status in ('active', 'revoked')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create unique index device_credentials_token_hash_key on public.device_credentials (token_hash);
create index device_credentials_device_id_idx on public.device_credentials (device_id, status);
alter table public.device_credentials enable row level security;
revoke all on table public.device_credentials from anon, authenticated;
grant all on table public.device_credentials to service_role;

-- ---------------------------------------------------------------------------
-- device_factory_keys: the per-device HMAC key burned at the factory, keyed
-- by eFuse serial number and sealed by the application (AES-GCM under
-- OPENDOT_SECRETS_KEY). Used to verify the activation HMAC. Operator data:
-- no user ever sees it.
create table public.device_factory_keys (
  serial_number text primary key check (length(btrim(serial_number)) between 1 and 128),
  key_ciphertext text not null check (length(key_ciphertext) between 1 and 4096),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  revoked_at timestamptz
);
alter table public.device_factory_keys enable row level security;
revoke all on table public.device_factory_keys from anon, authenticated;
grant all on table public.device_factory_keys to service_role;

-- ---------------------------------------------------------------------------
-- A device's serial number is who it is to the pairing flow, so an owner may
-- not rename theirs into somebody else's hardware (a "pairing squat": the
-- victim's Dot would then look paired, never get a code, and report into the
-- squatter's record). Once a device is paired (it has a hardware id or a
-- credential) its serial stays; before that it may only change to a serial
-- that no device has presented to this server. Checked here rather than in
-- the API so a direct supabase-js update is held to the same rule; the
-- constraint name lets the API answer with a sentence (409).
create function private.devices_keep_serial() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.serial_number is not distinct from old.serial_number then
    return new;
  end if;
  if old.hardware_id is not null or exists (
    select 1 from public.device_credentials c where c.device_id = old.id and c.status = 'active'
  ) then
    raise exception 'A paired device keeps the serial number it was paired with.'
      using errcode = 'check_violation', constraint = 'devices_paired_serial_fixed';
  end if;
  if exists (
    select 1 from public.device_activation_requests r
    where lower(r.device_identifier) = lower(new.serial_number)
       or lower(r.serial_number) = lower(new.serial_number)
  ) or exists (
    select 1 from public.devices d
    where d.id <> old.id and d.deleted_at is null
      and (lower(d.hardware_id) = lower(new.serial_number)
           or (d.serial_number = new.serial_number and d.hardware_id is not null))
  ) then
    raise exception 'That serial number belongs to a device that has already contacted this server.'
      using errcode = 'check_violation', constraint = 'devices_serial_of_known_hardware';
  end if;
  return new;
end;
$$;
revoke execute on function private.devices_keep_serial() from public, anon, authenticated;

create trigger devices_keep_serial
  before update of serial_number on public.devices
  for each row execute function private.devices_keep_serial();

-- ---------------------------------------------------------------------------
-- deployments: a binding of an agent to devices. With follow_latest = false it
-- pins agent_version_id / pipeline_version_id (the original's behaviour);
-- with follow_latest = true the device always gets the agent's latest
-- version and the pinned ids record what was current when it was bound.
-- The version references are NO ACTION (not RESTRICT) so that deleting a
-- whole account can cascade through both paths in one statement.
create table public.deployments (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  agent_id uuid not null references public.agents (id) on delete cascade,
  agent_version_id uuid not null references public.agent_versions (id),
  pipeline_version_id uuid references public.pipeline_versions (id),
  name text not null default '' check (length(name) <= 400),
  status text not null default 'active' check (status in ('active', 'superseded', 'removed')),
  follow_latest boolean not null default false,
  rollout_strategy_json jsonb not null default '{"kind": "single-device"}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  activated_at timestamptz not null default now(),
  superseded_at timestamptz,
  constraint deployments_user_id_id_key unique (user_id, id)
);
create index deployments_user_id_idx on public.deployments (user_id, status);
create index deployments_agent_id_idx on public.deployments (agent_id, status);
create index deployments_agent_version_id_idx on public.deployments (agent_version_id);
create index deployments_pipeline_version_id_idx on public.deployments (pipeline_version_id);
alter table public.deployments enable row level security;

create policy "deployments: read own" on public.deployments
  for select to authenticated using (user_id = (select auth.uid()));
create policy "deployments: create own" on public.deployments
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and agent_id in (select a.id from public.agents a where a.user_id = (select auth.uid()))
    and agent_version_id in (
      select av.id
      from public.agent_versions av
      join public.agents a on a.id = av.agent_id
      where a.user_id = (select auth.uid())
    )
    and (
      pipeline_version_id is null
      or pipeline_version_id in (
        select pv.id
        from public.pipeline_versions pv
        join public.pipelines p on p.id = pv.pipeline_id
        where p.user_id = (select auth.uid())
      )
    )
  );
create policy "deployments: update own" on public.deployments
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (
    user_id = (select auth.uid())
    and agent_id in (select a.id from public.agents a where a.user_id = (select auth.uid()))
    and agent_version_id in (
      select av.id
      from public.agent_versions av
      join public.agents a on a.id = av.agent_id
      where a.user_id = (select auth.uid())
    )
    and (
      pipeline_version_id is null
      or pipeline_version_id in (
        select pv.id
        from public.pipeline_versions pv
        join public.pipelines p on p.id = pv.pipeline_id
        where p.user_id = (select auth.uid())
      )
    )
  );
create policy "deployments: delete own" on public.deployments
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.deployments from anon, authenticated;
grant select, insert, update, delete on table public.deployments to authenticated;
grant all on table public.deployments to service_role;

-- ---------------------------------------------------------------------------
-- deployment_device_targets: which deployment a device runs; at most one
-- active target per device.
create table public.deployment_device_targets (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  deployment_id uuid not null references public.deployments (id) on delete cascade,
  device_id uuid not null references public.devices (id) on delete cascade,
  status text not null default 'active' check (status in ('active', 'superseded', 'removed')),
  desired_config_version text,
  applied_config_version text,
  applied_at timestamptz,
  last_error text check (length(last_error) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint deployment_device_targets_device_owner_fkey foreign key (user_id, device_id)
    references public.devices (user_id, id) on delete cascade on update cascade,
  constraint deployment_device_targets_deployment_owner_fkey foreign key (user_id, deployment_id)
    references public.deployments (user_id, id) on delete cascade on update cascade
);
create unique index deployment_device_targets_active_device_key
  on public.deployment_device_targets (device_id) where status = 'active';
create index deployment_device_targets_device_id_idx
  on public.deployment_device_targets (device_id, status);
create index deployment_device_targets_deployment_id_idx
  on public.deployment_device_targets (deployment_id);
create index deployment_device_targets_user_id_idx
  on public.deployment_device_targets (user_id, device_id);
create index deployment_device_targets_user_deployment_idx
  on public.deployment_device_targets (user_id, deployment_id);
create trigger deployment_device_targets_fill_owner
  before insert on public.deployment_device_targets
  for each row execute function private.fill_owner_from_device();
alter table public.deployment_device_targets enable row level security;

create policy "deployment_device_targets: read own" on public.deployment_device_targets
  for select to authenticated using (user_id = (select auth.uid()));
-- The deployment check duplicates the composite key on purpose: RLS runs
-- before foreign keys, so a stranger's attempt is refused as a policy
-- violation (42501) and learns nothing about the other row.
create policy "deployment_device_targets: create own" on public.deployment_device_targets
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and deployment_id in (
      select dp.id from public.deployments dp where dp.user_id = (select auth.uid())
    )
  );
create policy "deployment_device_targets: update own" on public.deployment_device_targets
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (
    user_id = (select auth.uid())
    and deployment_id in (
      select dp.id from public.deployments dp where dp.user_id = (select auth.uid())
    )
  );
create policy "deployment_device_targets: delete own" on public.deployment_device_targets
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.deployment_device_targets from anon, authenticated;
grant select, insert, update, delete on table public.deployment_device_targets to authenticated;
grant all on table public.deployment_device_targets to service_role;

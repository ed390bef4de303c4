-- Firmware updates over the air: releases (one .bin per board and version),
-- staged rollouts, and each Dot's progress through a rollout. See
-- 20261125000100_accounts.sql for the conventions.
--
-- New tables, not the deployment tables. `deployments` and
-- `deployment_device_targets` bind an agent version to a device: their agent
-- columns are NOT NULL, at most one target per device is active, and every
-- device read joins them by `status = 'active'`. A firmware rollout lives
-- beside an agent binding (a Dot runs an agent AND takes an update), targets a
-- board and a share of the fleet rather than one device, and has its own
-- lifecycle (paused, aborted, superseded) and per-device progress (offered N
-- times, downloaded, updated, stuck). Folding both into one table would make
-- every agent query filter by kind and loosen the constraints that keep
-- bindings right.
--
-- Versions are compared as the firmware compares them (78/xiaozhi-esp32
-- main/ota.cc, Ota::IsNewVersionAvailable): split on '.', each part read as an
-- integer, compared part by part, and with equal parts the longer list is
-- newer. `version_key` holds those integers; PostgreSQL orders int[] the same
-- way, so "newer than" is `>` on the key and an index can serve it. The API
-- computes the key (shared/firmware/versions.py); a release's version must be
-- plain dotted numbers so the key and the text can never disagree.

-- ---------------------------------------------------------------------------
-- devices.firmware_pin: the owner holds this Dot on one version. A pinned Dot
-- is offered the release of that version for its board (downgrading if
-- needed) and never a rollout.
alter table public.devices
  add column firmware_pin text check (firmware_pin ~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$');
-- Owners write devices column by column (20261125000300_devices.sql); the pin
-- is one of theirs.
grant update (firmware_pin) on table public.devices to authenticated;

-- ---------------------------------------------------------------------------
-- firmware_releases: immutable once uploaded (no update policy). The object
-- lives in storage under `storage_key`, derived from the row's own id so that
-- no row can point at another owner's file.
create table public.firmware_releases (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  -- As the firmware names it (BOARD_NAME, else BOARD_TYPE; User-Agent `board/version`).
  board text not null check (board ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  version text not null check (version ~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$'),
  version_key integer[] not null
    check (cardinality(version_key) between 1 and 8 and array_ndims(version_key) = 1),
  notes text not null default '' check (length(notes) <= 4000),
  size bigint not null check (size > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  storage_key text generated always as ('firmware/' || id::text || '.bin') stored,
  created_at timestamptz not null default now(),
  -- The key is the version as the firmware reads it, so the text must say the same.
  check (version_key = string_to_array(version, '.')::integer[]),
  -- For the rollouts' composite key (same owner, same board).
  unique (user_id, id, board)
);
-- A duplicate version is one the firmware cannot tell apart: "1.2" and "1.02" are equal.
create unique index firmware_releases_version_key
  on public.firmware_releases (user_id, board, version_key);
create index firmware_releases_user_created_idx
  on public.firmware_releases (user_id, created_at desc);
alter table public.firmware_releases enable row level security;

create policy "firmware_releases: read own" on public.firmware_releases
  for select to authenticated using (user_id = (select auth.uid()));
create policy "firmware_releases: create own" on public.firmware_releases
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "firmware_releases: delete own" on public.firmware_releases
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.firmware_releases from anon, authenticated;
grant select, delete on table public.firmware_releases to authenticated;
grant insert (id, user_id, board, version, version_key, notes, size, sha256)
  on table public.firmware_releases to authenticated;
grant all on table public.firmware_releases to service_role;

-- ---------------------------------------------------------------------------
-- firmware_rollouts: offer one release to a board's Dots of one owner, to the
-- `percent` of them whose cohort bucket (a hash of rollout and device ids,
-- 0-99) is below it, optionally only named Dots (`device_ids`) or Dots now on
-- one of `from_versions`. Without `from_versions` only Dots on an older
-- version are offered it; a version listed there is offered it even when newer
-- (with the firmware's `force`): that is how a rollback reaches the Dots that
-- took a bad release. At most one live (active or paused) rollout per board:
-- a new one supersedes it, so rolling out the previous release is a rollback.
create table public.firmware_rollouts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  release_id uuid not null,
  board text not null,
  percent smallint not null check (percent between 0 and 100),
  device_ids uuid[] check (cardinality(device_ids) between 1 and 10000),
  from_versions text[] check (cardinality(from_versions) between 1 and 100),
  status text not null default 'active'
    check (status in ('active', 'paused', 'aborted', 'superseded')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  ended_at timestamptz,
  check ((status in ('aborted', 'superseded')) = (ended_at is not null)),
  unique (user_id, id),
  -- Same owner and same board as the release, whatever the caller sends.
  foreign key (user_id, release_id, board)
    references public.firmware_releases (user_id, id, board) on delete cascade
);
-- The OTA decision: the live rollout of this owner's board (one index probe).
create unique index firmware_rollouts_live_board_key
  on public.firmware_rollouts (user_id, board) where status in ('active', 'paused');
create index firmware_rollouts_release_idx
  on public.firmware_rollouts (user_id, release_id, board);
create index firmware_rollouts_user_created_idx
  on public.firmware_rollouts (user_id, created_at desc);
alter table public.firmware_rollouts enable row level security;

create policy "firmware_rollouts: read own" on public.firmware_rollouts
  for select to authenticated using (user_id = (select auth.uid()));
-- The release check duplicates the composite key on purpose: RLS runs before
-- foreign keys, so a stranger naming the owner's release is refused as a
-- policy violation and learns nothing about it.
create policy "firmware_rollouts: create own" on public.firmware_rollouts
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and release_id in (
      select r.id from public.firmware_releases r where r.user_id = (select auth.uid())
    )
  );
create policy "firmware_rollouts: update own" on public.firmware_rollouts
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.firmware_rollouts from anon, authenticated;
grant select on table public.firmware_rollouts to authenticated;
grant insert (id, user_id, release_id, board, percent, device_ids, from_versions, status)
  on table public.firmware_rollouts to authenticated;
grant update (percent, status, updated_at, ended_at) on table public.firmware_rollouts
  to authenticated;
grant all on table public.firmware_rollouts to service_role;

-- A rollout only moves forward: the percentage rises, paused and active swap,
-- and aborted or superseded is the end. Enforced here so that direct access
-- (supabase-js) obeys the same rules as the API.
create or replace function private.firmware_rollouts_guard() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.status in ('aborted', 'superseded') then
    raise exception 'This rollout has ended; start a new one.'
      using errcode = 'check_violation';
  end if;
  if new.percent < old.percent then
    raise exception 'A rollout''s percentage can only be raised; pause or abort it instead.'
      using errcode = 'check_violation';
  end if;
  if new.status in ('aborted', 'superseded') then
    new.ended_at := coalesce(new.ended_at, now());
  end if;
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.firmware_rollouts_guard() from public, anon, authenticated;

create trigger firmware_rollouts_guard
  before update on public.firmware_rollouts
  for each row execute function private.firmware_rollouts_guard();

-- ---------------------------------------------------------------------------
-- firmware_rollout_devices: each Dot's progress in a rollout. Written only by
-- the service path (the OTA answer and the download report); owners read it.
-- offered: told about the release `offered_count` times; updated: came back
-- reporting the release's version; stuck: offered `OPENDOT_FIRMWARE_MAX_OFFERS`
-- times and still on another version, so it is not offered again.
create table public.firmware_rollout_devices (
  rollout_id uuid not null,
  device_id uuid not null,
  user_id uuid not null,
  state text not null default 'offered' check (state in ('offered', 'updated', 'stuck')),
  offered_count integer not null default 0 check (offered_count >= 0),
  from_version text check (length(from_version) <= 64),
  first_offered_at timestamptz,
  last_offered_at timestamptz,
  downloaded_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (rollout_id, device_id),
  foreign key (user_id, rollout_id)
    references public.firmware_rollouts (user_id, id) on delete cascade,
  foreign key (user_id, device_id)
    references public.devices (user_id, id) on delete cascade on update cascade
);
create index firmware_rollout_devices_user_device_idx
  on public.firmware_rollout_devices (user_id, device_id);
create index firmware_rollout_devices_user_rollout_idx
  on public.firmware_rollout_devices (user_id, rollout_id, state);
alter table public.firmware_rollout_devices enable row level security;

create policy "firmware_rollout_devices: read own" on public.firmware_rollout_devices
  for select to authenticated using (user_id = (select auth.uid()));

revoke all on table public.firmware_rollout_devices from anon, authenticated;
grant select on table public.firmware_rollout_devices to authenticated;
grant all on table public.firmware_rollout_devices to service_role;

-- ---------------------------------------------------------------------------
-- The OTA answer's firmware decision for a known device that just reported
-- `p_version` (key `p_version_key`, null when the firmware could not parse it:
-- then nothing is offered, as the firmware would crash comparing) on
-- `p_board`. Records progress: a reported release version completes the
-- device's step; an offer counts; the (p_max_offers + 1)th offer marks the
-- device stuck instead. Returns at most one row.
create or replace function private.firmware_offer(
  p_device_id uuid,
  p_version text,
  p_version_key integer[],
  p_board text,
  p_max_offers integer
) returns table (
  release_id uuid, rollout_id uuid, version text, size bigint, sha256 text,
  storage_key text, force boolean
)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_pin text;
  v_offer record;
begin
  select d.user_id, d.firmware_pin into v_user, v_pin
  from public.devices d where d.id = p_device_id and d.deleted_at is null;
  if v_user is null or p_board is null or p_version_key is null then
    return;
  end if;

  update public.firmware_rollout_devices s
  set state = 'updated', completed_at = now(), updated_at = now()
  from public.firmware_rollouts r
  join public.firmware_releases rel on rel.id = r.release_id
  where s.user_id = v_user and s.device_id = p_device_id and s.state <> 'updated'
    and r.id = s.rollout_id and rel.version_key = p_version_key;

  if v_pin is not null then
    return query
      select rel.id, null::uuid, rel.version, rel.size, rel.sha256, rel.storage_key,
             rel.version_key < p_version_key
      from public.firmware_releases rel
      where rel.user_id = v_user and rel.board = p_board
        and rel.version_key = string_to_array(v_pin, '.')::integer[]
        and rel.version_key <> p_version_key;
    return;
  end if;

  -- The decision: one probe of firmware_rollouts_live_board_key.
  select r.id as rollout_id, rel.id as release_id, rel.version, rel.size, rel.sha256,
         rel.storage_key, rel.version_key < p_version_key as force,
         s.state, coalesce(s.offered_count, 0) as offered_count
  into v_offer
  from public.firmware_rollouts r
  join public.firmware_releases rel on rel.id = r.release_id
  left join public.firmware_rollout_devices s
    on s.rollout_id = r.id and s.device_id = p_device_id
  where r.user_id = v_user and r.board = p_board and r.status = 'active'
    and rel.version_key <> p_version_key
    and case when r.from_versions is null then rel.version_key > p_version_key
             else p_version = any (r.from_versions) end
    and (r.device_ids is null or p_device_id = any (r.device_ids))
    and ('x' || left(encode(sha256(convert_to(r.id::text || ':' || p_device_id::text, 'UTF8')),
                            'hex'), 8))::bit(32)::bigint % 100 < r.percent;
  if not found or v_offer.state = 'stuck' then
    return;
  end if;
  if v_offer.offered_count >= p_max_offers then
    update public.firmware_rollout_devices
    set state = 'stuck', updated_at = now()
    where firmware_rollout_devices.rollout_id = v_offer.rollout_id
      and firmware_rollout_devices.device_id = p_device_id;
    return;
  end if;
  insert into public.firmware_rollout_devices as s (
    rollout_id, device_id, user_id, state, offered_count, from_version,
    first_offered_at, last_offered_at
  ) values (
    v_offer.rollout_id, p_device_id, v_user, 'offered', 1, left(p_version, 64), now(), now()
  )
  on conflict on constraint firmware_rollout_devices_pkey do update
  set state = 'offered', offered_count = s.offered_count + 1,
      from_version = excluded.from_version, last_offered_at = now(), updated_at = now();
  return query select v_offer.release_id, v_offer.rollout_id, v_offer.version, v_offer.size,
                      v_offer.sha256, v_offer.storage_key, v_offer.force;
end;
$$;

-- The storage served the whole file of an offer (local storage can tell; S3 cannot).
create or replace function private.firmware_downloaded(p_rollout_id uuid, p_device_id uuid)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with s as (
    update public.firmware_rollout_devices
    set downloaded_at = coalesce(downloaded_at, now()), updated_at = now()
    where rollout_id = p_rollout_id and device_id = p_device_id
    returning 1
  )
  select exists (select 1 from s);
$$;

revoke execute on function
  private.firmware_offer(uuid, text, integer[], text, integer),
  private.firmware_downloaded(uuid, uuid)
  from public, anon, authenticated;
grant execute on function
  private.firmware_offer(uuid, text, integer[], text, integer),
  private.firmware_downloaded(uuid, uuid)
  to service_role;

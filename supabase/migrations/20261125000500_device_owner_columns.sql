-- device_state and deployment_device_targets carry their owner's user_id.
--
-- Why: their policies used `device_id in (select id from devices where
-- user_id = (select auth.uid()))`. RLS quals are security barriers, so the
-- planner evaluates that as a hashed filter over a sequential scan: with
-- 10,000 devices, `opendot bench db` showed both tables read in full on every
-- platform-state request. With the owner on the row the policy becomes
-- `user_id = (select auth.uid())`, which an index answers directly.
--
-- Consistency is enforced by the database, not by callers: composite foreign
-- keys (user_id, device_id) -> devices (user_id, id) and (user_id,
-- deployment_id) -> deployments (user_id, id) make it impossible for a row to name
-- one user while pointing at another user's device or deployment. Callers
-- need not supply user_id: a BEFORE INSERT trigger copies it from the device
-- (RLS WITH CHECK then sees the device owner's id, so a stranger is refused).

-- user_id first: the referencing side's (user_id, ...) index then serves the
-- policy and covers the composite key in the same column order.
alter table public.devices add constraint devices_user_id_id_key unique (user_id, id);
alter table public.deployments add constraint deployments_user_id_id_key unique (user_id, id);

-- Trigger function: EXECUTE is not checked when a trigger fires, so it is
-- revoked from everyone; security definer lets it read the device's owner
-- whatever the caller may see (the composite key re-checks the result).
create or replace function private.fill_owner_from_device() returns trigger
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
alter table public.device_state add column user_id uuid;
update public.device_state s set user_id = d.user_id from public.devices d where d.id = s.device_id;
alter table public.device_state alter column user_id set not null;
alter table public.device_state
  add constraint device_state_device_owner_fkey foreign key (user_id, device_id)
  references public.devices (user_id, id) on delete cascade on update cascade;
-- Leads with user_id for the policy; also covers the composite foreign key.
create index device_state_user_id_idx on public.device_state (user_id, device_id);
create trigger device_state_fill_owner
  before insert on public.device_state
  for each row execute function private.fill_owner_from_device();

drop policy "device_state: read own devices" on public.device_state;
drop policy "device_state: create for own devices" on public.device_state;
drop policy "device_state: update own devices" on public.device_state;
create policy "device_state: read own devices" on public.device_state
  for select to authenticated using (user_id = (select auth.uid()));
create policy "device_state: create for own devices" on public.device_state
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "device_state: update own devices" on public.device_state
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- ---------------------------------------------------------------------------
alter table public.deployment_device_targets add column user_id uuid;
update public.deployment_device_targets t set user_id = d.user_id
  from public.devices d where d.id = t.device_id;
alter table public.deployment_device_targets alter column user_id set not null;
alter table public.deployment_device_targets
  add constraint deployment_device_targets_device_owner_fkey foreign key (user_id, device_id)
  references public.devices (user_id, id) on delete cascade on update cascade;
alter table public.deployment_device_targets
  add constraint deployment_device_targets_deployment_owner_fkey
  foreign key (user_id, deployment_id)
  references public.deployments (user_id, id) on delete cascade on update cascade;
create index deployment_device_targets_user_id_idx
  on public.deployment_device_targets (user_id, device_id);
create index deployment_device_targets_user_deployment_idx
  on public.deployment_device_targets (user_id, deployment_id);
create trigger deployment_device_targets_fill_owner
  before insert on public.deployment_device_targets
  for each row execute function private.fill_owner_from_device();

drop policy "deployment_device_targets: read own" on public.deployment_device_targets;
drop policy "deployment_device_targets: create own" on public.deployment_device_targets;
drop policy "deployment_device_targets: update own" on public.deployment_device_targets;
drop policy "deployment_device_targets: delete own" on public.deployment_device_targets;
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

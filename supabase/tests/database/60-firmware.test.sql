-- Firmware updates (migration 20261125004000): what each persona may do to
-- releases, rollouts and device progress beyond the generic persona checks,
-- and the OTA decision itself (private.firmware_offer).
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

create temporary table fw on commit drop as
select
  (select id from public.devices where user_id = pg_temp.owner_id()) as owner_device,
  (select id from public.firmware_releases where user_id = pg_temp.owner_id()) as owner_release,
  (select id from public.firmware_rollouts where user_id = pg_temp.owner_id()) as owner_rollout,
  (select id from public.firmware_releases where user_id = pg_temp.stranger_id())
    as stranger_release;
grant select on fw to public;

select plan(19);

-- --- owner -------------------------------------------------------------------------
select pg_temp.act_as('authenticated', pg_temp.owner_id());

select throws_ok(
  $$ update public.firmware_releases set notes = 'edited' $$,
  '42501', null, 'owner cannot edit a release (releases are immutable)'
);
select throws_ok(
  format($$ insert into public.firmware_releases (user_id, board, version, version_key, size,
                                                  sha256, storage_key)
            values ((select auth.uid()), 'b', '9.0', '{9,0}', 1, %L, 'firmware/other.bin') $$,
         pg_temp.hash('x')),
  '428C9', null, 'owner cannot choose where a release is stored'
);
select throws_ok(
  format($$ insert into public.firmware_releases (user_id, board, version, version_key, size,
                                                  sha256)
            values ((select auth.uid()), 'b', '9.0', '{9,1}', 1, %L) $$, pg_temp.hash('x')),
  '23514', null, 'a release''s key must be its version as the firmware reads it'
);
select throws_ok(
  format($$ insert into public.firmware_releases (user_id, board, version, version_key, size,
                                                  sha256)
            values ((select auth.uid()), 'bread-compact-wifi', '1.01.0', '{1,1,0}', 1, %L) $$,
         pg_temp.hash('y')),
  '23505', null, 'a version the firmware cannot tell from an existing one is a duplicate'
);
select throws_ok(
  $$ insert into public.firmware_rollout_devices (rollout_id, device_id, user_id)
     select owner_rollout, owner_device, (select auth.uid()) from fw $$,
  '42501', null, 'owner cannot write device progress (service path only)'
);
select throws_ok(
  $$ update public.firmware_rollout_devices set state = 'updated' $$,
  '42501', null, 'owner cannot mark their own Dot updated'
);
select throws_ok(
  $$ update public.firmware_rollouts set percent = 5 $$,
  '23514', 'A rollout''s percentage can only be raised; pause or abort it instead.',
  'a rollout''s percentage never goes down'
);
select throws_ok(
  $$ insert into public.firmware_rollouts (user_id, release_id, board, percent)
     select (select auth.uid()), owner_release, 'bread-compact-wifi', 50 from fw $$,
  '23505', null, 'one live rollout per board'
);
select lives_ok(
  $$ update public.firmware_rollouts set status = 'aborted' $$,
  'owner can abort their rollout'
);
select ok(
  (select ended_at is not null from public.firmware_rollouts),
  'an aborted rollout records when it ended'
);
select throws_ok(
  $$ update public.firmware_rollouts set status = 'active' $$,
  '23514', 'This rollout has ended; start a new one.',
  'an ended rollout cannot be brought back'
);
select throws_ok(
  $$ select * from private.firmware_offer(gen_random_uuid(), '1.0.0', '{1,0,0}', 'b', 3) $$,
  '42501', null, 'owner cannot run the OTA decision'
);

-- --- stranger ----------------------------------------------------------------------
select pg_temp.act_as('authenticated', pg_temp.stranger_id());
select throws_ok(
  $$ insert into public.firmware_rollouts (user_id, release_id, board, percent)
     select (select auth.uid()), owner_release, 'bread-compact-wifi', 100 from fw $$,
  '42501', null, 'stranger cannot roll out the owner''s release'
);
select is_empty(
  $$ update public.devices set firmware_pin = '1.1.0' where id = (select owner_device from fw)
     returning id $$,
  'stranger cannot pin the owner''s Dot'
);

-- --- service role: the OTA decision -------------------------------------------------
select pg_temp.act_as('service_role');
insert into public.firmware_rollouts (user_id, release_id, board, percent)
select pg_temp.owner_id(), owner_release, 'bread-compact-wifi', 100 from fw;

select is(
  (select version || ':' || force::text
   from fw, private.firmware_offer(owner_device, '1.0.0', '{1,0,0}', 'bread-compact-wifi', 2)),
  '1.1.0:false',
  'a Dot on an older version of the board is offered the release'
);
select is_empty(
  $$ select * from fw, private.firmware_offer(owner_device, '1.0.0', '{1,0,0}', 'other-board', 2) $$,
  'a Dot on another board is offered nothing'
);
select is(
  (select count(*)::int
   from fw, private.firmware_offer(owner_device, '1.0.0', '{1,0,0}', 'bread-compact-wifi', 2)),
  1,
  'offered a second time'
);
select is_empty(
  $$ select * from fw, private.firmware_offer(owner_device, '1.0.0', '{1,0,0}',
                                               'bread-compact-wifi', 2) $$,
  'after the last allowed offer a Dot still on the old version is not offered again'
);
select is(
  (select state || ':' || offered_count from public.firmware_rollout_devices s, fw
   where s.device_id = fw.owner_device and s.rollout_id <> fw.owner_rollout),
  'stuck:2',
  'and is recorded as stuck'
);

select * from finish();
rollback;

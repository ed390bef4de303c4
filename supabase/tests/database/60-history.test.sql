-- The console's History reads (functions/history_store.py) under each persona:
-- a device's sessions newest first (keyset), a session's turns and events,
-- and the latency window. The owner sees their own; a stranger who names the
-- owner's device, session or even user id gets nothing; anon has no grant;
-- service_role sees everyone's. The indexes the pages read exist.
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

select plan(20);

select has_index('public', 'voice_sessions', 'voice_sessions_user_id_idx',
                 array['user_id', 'started_at', 'id'], 'sessions by user, newest first');
select has_index('public', 'voice_sessions', 'voice_sessions_device_id_idx',
                 array['device_id', 'started_at', 'id'], 'sessions by device, newest first');
select has_index('public', 'voice_sessions', 'voice_sessions_agent_id_idx',
                 array['agent_id', 'started_at', 'id'], 'sessions by agent, newest first');
select has_index('public', 'voice_turns', 'voice_turns_session_id_idx',
                 array['session_id', 'turn_index'], 'turns by session, in order');

create function pg_temp.device_of(persona text) returns uuid language sql stable as $$
  select (row_data->>'id')::uuid from pg_temp.owned where tbl = 'devices' and persona = $1
$$;
create function pg_temp.session_of(persona text) returns uuid language sql stable as $$
  select (row_data->>'id')::uuid from pg_temp.owned where tbl = 'voice_sessions' and persona = $1
$$;
-- The page query's shape: a user's sessions of one device, newest first, keyset.
create function pg_temp.device_page(uid uuid, device uuid) returns bigint language sql as $$
  select count(*) from (
    select s.id from public.voice_sessions s
    where s.user_id = uid and s.device_id = device
      and (s.started_at, s.id) < (now() + interval '1 day', 'ffffffff-ffff-4fff-bfff-ffffffffffff'::uuid)
    order by s.started_at desc, s.id desc limit 21) page
$$;
create function pg_temp.turns_of(session uuid) returns bigint language sql as $$
  select count(*) from public.voice_turns where session_id = session
$$;
create function pg_temp.events_of(session uuid) returns bigint language sql as $$
  select count(*) from public.voice_events where session_id = session
$$;
create function pg_temp.latency_window(uid uuid, device uuid) returns bigint language sql as $$
  select count(*) from (
    select t.id from public.voice_sessions s join public.voice_turns t on t.session_id = s.id
    where s.user_id = uid and s.device_id = device
    order by s.started_at desc, t.turn_index desc limit 100) recent
$$;
grant execute on all functions in schema pg_temp to public;

-- Owner.
select pg_temp.act_as('authenticated', pg_temp.owner_id());
select is(pg_temp.device_page(pg_temp.owner_id(), pg_temp.device_of('owner')), 1::bigint,
          'owner pages their device''s sessions');
select is(pg_temp.turns_of(pg_temp.session_of('owner')), 1::bigint, 'owner reads their turns');
select is(pg_temp.events_of(pg_temp.session_of('owner')), 1::bigint, 'owner reads their events');
select is(pg_temp.latency_window(pg_temp.owner_id(), pg_temp.device_of('owner')), 1::bigint,
          'owner''s latency window holds their turn');
select is(pg_temp.device_page(pg_temp.stranger_id(), pg_temp.device_of('stranger')), 0::bigint,
          'owner naming the stranger''s user and device sees no session');
select is(pg_temp.turns_of(pg_temp.session_of('stranger')), 0::bigint,
          'owner cannot read the stranger''s turns');
reset role;

-- Stranger.
select pg_temp.act_as('authenticated', pg_temp.stranger_id());
select is(pg_temp.device_page(pg_temp.owner_id(), pg_temp.device_of('owner')), 0::bigint,
          'stranger naming the owner''s user and device sees no session');
select is(pg_temp.turns_of(pg_temp.session_of('owner')), 0::bigint,
          'stranger cannot read the owner''s turns');
select is(pg_temp.events_of(pg_temp.session_of('owner')), 0::bigint,
          'stranger cannot read the owner''s events');
select is(pg_temp.latency_window(pg_temp.owner_id(), pg_temp.device_of('owner')), 0::bigint,
          'stranger''s latency window over the owner''s device is empty');
select is(pg_temp.device_page(pg_temp.stranger_id(), pg_temp.device_of('stranger')), 1::bigint,
          'stranger pages their own device');
reset role;

-- Anon: no grant on the voice tables at all.
select pg_temp.act_as('anon');
select throws_ok($$ select pg_temp.device_page(pg_temp.owner_id(), pg_temp.device_of('owner')) $$,
                 '42501', null, 'anon cannot page sessions');
select throws_ok($$ select pg_temp.turns_of(pg_temp.session_of('owner')) $$,
                 '42501', null, 'anon cannot read turns');
select throws_ok($$ select pg_temp.events_of(pg_temp.session_of('owner')) $$,
                 '42501', null, 'anon cannot read events');
reset role;

-- service_role (the internal API): everyone's.
select pg_temp.act_as('service_role');
select is(pg_temp.device_page(pg_temp.owner_id(), pg_temp.device_of('owner'))
          + pg_temp.device_page(pg_temp.stranger_id(), pg_temp.device_of('stranger')), 2::bigint,
          'service_role pages every user''s sessions');
select is(pg_temp.turns_of(pg_temp.session_of('owner'))
          + pg_temp.turns_of(pg_temp.session_of('stranger')), 2::bigint,
          'service_role reads every user''s turns');
reset role;

select * from finish();
rollback;

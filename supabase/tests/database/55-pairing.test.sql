-- Pairing under attack, per persona: an owner cannot squat somebody else's
-- hardware by renaming a serial; a request that only names a MAC (service
-- role, as the runtime forwards any stranger's OTA) neither hears nor changes
-- a paired Dot's state and gets the same answer as for an unknown MAC; a
-- token is bound to its hardware; OTA spam is capped and swept; code guesses
-- are limited per user, per address and per code; and once factory keys are
-- registered only hardware that proved its key can be claimed. (And a memory
-- reset forgets the remembered facts, which owners cannot write directly.)
begin;
create extension if not exists pgtap with schema extensions;

select plan(34);

create function pg_temp.h(label text) returns text language sql immutable
  as $$ select encode(sha256(convert_to(label, 'UTF8')), 'hex') $$;
create function pg_temp.as_user(uid uuid) returns void language plpgsql as $$
begin
  perform set_config('request.jwt.claims',
    json_build_object('sub', uid, 'role', 'authenticated')::text, true);
  set local role authenticated;
end $$;
create function pg_temp.as_service() returns void language plpgsql as $$
begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  set local role service_role;
end $$;
-- A bootstrap as the runtime forwards it; returns the decision's kind.
create function pg_temp.ota(mac text, client text, bearer text, ip text, firmware text,
                            cap integer default 32)
returns text language sql as $$
  select kind from private.device_bootstrap(
    mac, client, null, case when bearer is null then null else pg_temp.h(bearer) end,
    'board/' || firmware, ip, firmware, 'board', jsonb_build_object('fw', firmware),
    gen_random_uuid(), pg_temp.h('code:' || mac || clock_timestamp()),
    pg_temp.h('challenge:' || mac || clock_timestamp()), 'od_dt_test',
    pg_temp.h('token:' || mac || clock_timestamp()), 300, cap)
$$;
create function pg_temp.claim(code text, address text) returns text language sql as $$
  select status from private.claim_activation(pg_temp.h(code), 'http://runtime.test', address)
$$;
create function pg_temp.pending(mac text, code text, created timestamptz default now())
returns void language sql as $$
  insert into public.device_activation_requests (
    device_identifier, client_id, code_hash, challenge_hash, token_prefix, token_hash,
    expires_at, created_at
  ) values (mac, 'client-' || mac, pg_temp.h(code), pg_temp.h('challenge:' || code),
            'od_dt_x', pg_temp.h('token:' || code), now() + interval '5 minutes', created)
$$;
grant execute on all functions in schema pg_temp to public;

-- Owner with a paired Dot (claimed from its MAC and Client-Id) and a
-- hand-typed one; a stranger with a hand-typed one; an unclaimed Dot that has
-- bootstrapped.
insert into public.app_users (id, auth_provider, auth_subject, email) values
  ('55000000-0000-4000-8000-000000000001', 'supabase', '55000000-0000-4000-8000-000000000001', 'o@t'),
  ('55000000-0000-4000-8000-000000000002', 'supabase', '55000000-0000-4000-8000-000000000002', 's@t');
insert into public.devices (id, user_id, serial_number, hardware_id, client_id, display_name) values
  ('55000000-0000-4000-8000-0000000000d1', '55000000-0000-4000-8000-000000000001',
   'aa:bb:cc:00:00:01', 'aa:bb:cc:00:00:01', 'client-owner', 'Paired'),
  ('55000000-0000-4000-8000-0000000000d2', '55000000-0000-4000-8000-000000000001',
   'MANUAL-1', null, null, 'Typed'),
  ('55000000-0000-4000-8000-0000000000d3', '55000000-0000-4000-8000-000000000002',
   'SQUAT-1', null, null, 'Squat');
insert into public.device_credentials (device_id, prefix, token_hash)
  values ('55000000-0000-4000-8000-0000000000d1', 'od_dt_own', pg_temp.h('owner-token'));
insert into public.device_state (device_id, firmware_version, system_info)
  values ('55000000-0000-4000-8000-0000000000d1', '1.0.0', '{"ssid": "home"}');
select pg_temp.pending('aa:bb:cc:00:00:09', '900009');

-- --- the owner (authenticated) ----------------------------------------------------------
select pg_temp.as_user('55000000-0000-4000-8000-000000000001');
select throws_ok(
  $$ update public.devices set serial_number = 'aa:bb:cc:00:00:09'
     where id = '55000000-0000-4000-8000-0000000000d1' $$,
  '23514', 'A paired device keeps the serial number it was paired with.',
  'owner cannot rename a paired Dot''s serial');
select throws_ok(
  $$ update public.devices set serial_number = 'AA:BB:CC:00:00:09'
     where id = '55000000-0000-4000-8000-0000000000d2' $$,
  '23514', 'That serial number belongs to a device that has already contacted this server.',
  'owner cannot rename a typed-in device to a MAC that has bootstrapped');
select lives_ok(
  $$ update public.devices set serial_number = 'MANUAL-2'
     where id = '55000000-0000-4000-8000-0000000000d2' $$,
  'owner may correct a typed-in serial nobody has bootstrapped');
select throws_ok(
  $$ update public.devices set hardware_id = 'aa:bb:cc:00:00:09'
     where id = '55000000-0000-4000-8000-0000000000d2' $$,
  '42501', null, 'owner cannot set a hardware id');
select throws_ok(
  $$ insert into public.devices (user_id, serial_number, display_name, hardware_id, client_id)
     values ((select auth.uid()), 'X-1', 'X', 'aa:bb:cc:00:00:09', 'c') $$,
  '42501', null, 'owner cannot create a device with a hardware id');
select throws_ok(
  $$ update public.device_state set firmware_version = '6.6.6'
     where device_id = '55000000-0000-4000-8000-0000000000d1' $$,
  '42501', null, 'owner cannot write what the Dot reported about itself');
select lives_ok(
  $$ update public.device_state set update_mode = 'checking', updated_at = now()
     where device_id = '55000000-0000-4000-8000-0000000000d1' $$,
  'owner still writes the console''s state of the Dot');
select throws_ok(
  $$ update public.device_state set memory_facts = '["planted"]'
     where device_id = '55000000-0000-4000-8000-0000000000d1' $$,
  '42501', null, 'owner cannot plant remembered facts directly');
reset role;
update public.device_state set memory_facts = '["likes tea"]'
where device_id = '55000000-0000-4000-8000-0000000000d1';
select pg_temp.as_user('55000000-0000-4000-8000-000000000001');
update public.device_state set memory_reset_at = now(), updated_at = now()
where device_id = '55000000-0000-4000-8000-0000000000d1';
reset role;
select is(
  (select memory_facts from public.device_state
   where device_id = '55000000-0000-4000-8000-0000000000d1'),
  '[]'::jsonb, 'the owner''s memory reset forgets the remembered facts too');

-- --- the stranger (authenticated) -------------------------------------------------------
select pg_temp.as_user('55000000-0000-4000-8000-000000000002');
select throws_ok(
  $$ update public.devices set serial_number = 'aa:bb:cc:00:00:01'
     where id = '55000000-0000-4000-8000-0000000000d3' $$,
  '23514', null, 'stranger cannot rename their device into the owner''s paired hardware');
reset role;

-- --- OTA as the runtime forwards it (service role) --------------------------------------
select pg_temp.as_service();
select is(pg_temp.ota('aa:bb:cc:00:00:01', 'guessed', null, '203.0.113.1', '6.6.6'), 'new',
  'a bare request for a paired MAC gets a fresh activation, as an unknown MAC would');
select is(pg_temp.ota('aa:bb:cc:00:00:77', 'guessed', null, '203.0.113.1', '6.6.6'), 'new',
  'the same answer as for an unknown MAC');
select is(pg_temp.ota('aa:bb:cc:00:00:01', 'client-owner', null, '203.0.113.1', '6.6.6'),
  'connect', 'MAC and Client-Id of the paired Dot get connect information');
select is(pg_temp.ota('aa:bb:cc:00:00:02', 'client-owner', 'owner-token', '203.0.113.1', '6.6.6'),
  'new', 'the Dot''s token sent from other hardware is not the Dot');
reset role;
select is(
  (select firmware_version || ' ' || (system_info ->> 'ssid') from public.device_state
   where device_id = '55000000-0000-4000-8000-0000000000d1'),
  '1.0.0 home', 'none of those requests wrote the paired Dot''s state');
select pg_temp.as_service();
select is(pg_temp.ota('AA:BB:CC:00:00:01', 'client-owner', 'owner-token', '203.0.113.1', '1.1.0'),
  'known', 'the Dot with its token is known');
reset role;
select is(
  (select firmware_version from public.device_state
   where device_id = '55000000-0000-4000-8000-0000000000d1'),
  '1.1.0', 'and only then its report is stored');
select pg_temp.as_service();
select is(
  (select reason from private.device_verify(pg_temp.h('owner-token'), null, '192.0.2.1')),
  'hardware_mismatch', 'a device token without a Device-Id is refused like a wrong one');
select is(
  (select reason from private.device_verify(pg_temp.h('owner-token'), 'AA:BB:CC:00:00:01', '')),
  'ok', 'with its own Device-Id it connects');

-- Spam: pending requests are capped per address; one per hardware id.
select is(
  array[pg_temp.ota('ee:00:00:00:00:01', 'c', null, '198.51.100.7', '1', 3),
        pg_temp.ota('ee:00:00:00:00:02', 'c', null, '198.51.100.7', '1', 3),
        pg_temp.ota('ee:00:00:00:00:03', 'c', null, '198.51.100.7', '1', 3),
        pg_temp.ota('ee:00:00:00:00:04', 'c', null, '198.51.100.7', '1', 3),
        pg_temp.ota('ee:00:00:00:00:04', 'c', null, '198.51.100.8', '1', 3)],
  array['new', 'new', 'new', 'throttled', 'new'],
  'an address holds at most its cap of pending activations; another address is not affected');
select is(pg_temp.ota('ee:00:00:00:00:01', 'c', null, '198.51.100.7', '1', 3), 'new',
  'a hardware id bootstrapping again replaces its own pending request');
reset role;
select is(
  (select count(*)::int from public.device_activation_requests
   where device_identifier = 'ee:00:00:00:00:01'),
  1, 'so repeated bootstraps keep one row per hardware id');
insert into public.device_activation_requests (
  device_identifier, code_hash, challenge_hash, token_prefix, token_hash, status, expires_at,
  created_at
)
select 'dead-' || n, pg_temp.h('dc' || n), pg_temp.h('dch' || n), 'od_dt_x', pg_temp.h('dt' || n),
       case when n % 2 = 0 then 'pending' else 'expired' end,
       now() - interval '1 hour', now() - interval '2 hours'
from generate_series(1, 30) n;
select pg_temp.as_service();
select ok(private.sweep_activation_requests() = 20, 'a sweep deletes at most 20 dead requests');
reset role;
select is(
  (select count(*)::int from public.device_activation_requests where device_identifier like 'dead-%'),
  10, 'the rest wait for the next bootstrap');
select throws_ok(
  $$ update public.device_state set system_info = jsonb_build_object('x', repeat('y', 9000))
     where device_id = '55000000-0000-4000-8000-0000000000d1' $$,
  '23514', null, 'stored system info is bounded');

-- --- claims: per user, per address, per code -------------------------------------------
insert into public.app_users (id, auth_provider, auth_subject, email)
select ('55000000-0000-4000-8000-0000000001' || lpad(n::text, 2, '0'))::uuid, 'supabase',
       'guesser' || n, 'g' || n || '@t'
from generate_series(1, 5) n;
do $$
declare
  n integer;
  k integer;
begin
  for n in 1..4 loop
    perform pg_temp.as_user(('55000000-0000-4000-8000-0000000001' || lpad(n::text, 2, '0'))::uuid);
    for k in 1..5 loop
      perform pg_temp.claim('1234' || n || k, '192.0.2.50');
    end loop;
    reset role;
  end loop;
end $$;
select pg_temp.as_user('55000000-0000-4000-8000-000000000101');
select is(pg_temp.claim('000001', '192.0.2.99'), 'throttled',
  'five wrong codes throttle the user from any address');
reset role;
select pg_temp.as_user('55000000-0000-4000-8000-000000000105');
select is(pg_temp.claim('000002', '192.0.2.50'), 'throttled',
  'twenty wrong codes from one address throttle a fresh account there too');
select is(pg_temp.claim('000003', '192.0.2.51'), 'not_found',
  'the same account elsewhere is not throttled');
reset role;

-- A code issued after 50 wrong claims (anyone's, anywhere) is retired on claim.
select pg_temp.pending('aa:bb:cc:00:00:30', '300030', now() + interval '1 minute');
insert into public.auth_throttle (scope, subject, created_at)
select 'claim_code', '*', now() + interval '2 minutes' from generate_series(1, 50);
select pg_temp.pending('aa:bb:cc:00:00:31', '300031', now() + interval '3 minutes');
select pg_temp.as_user('55000000-0000-4000-8000-000000000105');
select is(pg_temp.claim('300030', '192.0.2.60'), 'not_found',
  'a code that has received 50 guesses cannot be claimed, even with the right digits');
reset role;
select is(
  (select status from public.device_activation_requests where code_hash = pg_temp.h('300030')),
  'expired', 'it is retired, so the Dot shows a new code at its next bootstrap');
select pg_temp.as_user('55000000-0000-4000-8000-000000000105');
select is(pg_temp.claim('300031', '192.0.2.60'), 'claimed',
  'a code issued after those guesses is claimed');
reset role;

-- Factory keys registered: only a request whose HMAC was verified is claimed.
insert into public.device_factory_keys (serial_number, key_ciphertext) values ('SN-HW', 'sealed');
select pg_temp.pending('aa:bb:cc:00:00:40', '400040', now() + interval '3 minutes');
select pg_temp.as_user('55000000-0000-4000-8000-000000000002');
select is(pg_temp.claim('400040', '192.0.2.70'), 'unverified',
  'with factory keys registered, an unproven device cannot be claimed');
reset role;
select pg_temp.as_service();
select is(
  (select status from private.device_activate(pg_temp.h('challenge:400040'), null, 'SN-HW')),
  'pending', 'the activation poll records a verified HMAC');
reset role;
select pg_temp.as_user('55000000-0000-4000-8000-000000000002');
select is(pg_temp.claim('400040', '192.0.2.70'), 'claimed', 'then the device is claimed');
reset role;

select * from finish();
rollback;

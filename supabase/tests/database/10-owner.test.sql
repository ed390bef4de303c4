-- Persona: the owner, acting through the API as `authenticated` with their
-- own JWT claims. They can do exactly what helpers/personas.psql's
-- expectations allow on their own rows, and nothing on credential tables.
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

select plan(4 * (select count(*)::int from pg_temp.expectations) + 9);

select pg_temp.act_as('authenticated', pg_temp.owner_id());

-- select: all of their rows where a policy exists, none (or no privilege) elsewhere.
select ok(
  case when e.ops like '%s%'
    then pg_temp.visible(e.tbl, 'owner') = (select count(*)::text from pg_temp.owned o
                                            where o.tbl = e.tbl and o.persona = 'owner')
    else pg_temp.visible(e.tbl, 'owner') in ('0', 'denied') end,
  format('owner %s their rows in public.%I',
         case when e.ops like '%s%' then 'reads' else 'cannot read' end, e.tbl)
)
from pg_temp.expectations e order by e.tbl;

-- insert: RLS lets the owner's copy through (a unique index may then stop
-- the duplicate, 23505, which proves RLS and the grants allowed it).
select ok(
  case when e.ops like '%i%'
    then pg_temp.try_insert_copy(e.tbl, 'owner') in ('inserted', '23505')
    else pg_temp.try_insert_copy(e.tbl, 'owner') = 'denied' end,
  format('owner %s insert into public.%I',
         case when e.ops like '%i%' then 'may' else 'may not' end, e.tbl)
)
from pg_temp.expectations e order by e.tbl;

select ok(
  case when e.ops like '%u%'
    then pg_temp.try_update(e.tbl, 'owner') not in ('0', 'denied')
    else pg_temp.try_update(e.tbl, 'owner') in ('0', 'denied') end,
  format('owner %s update their rows in public.%I',
         case when e.ops like '%u%' then 'may' else 'may not' end, e.tbl)
)
from pg_temp.expectations e order by e.tbl;

-- delete: a foreign key may refuse (23503: a pinned deployment still
-- references the pipeline version), which again proves RLS allowed it.
select ok(
  case when e.ops like '%d%'
    then pg_temp.try_delete(e.tbl, 'owner') not in ('0', 'denied')
    else pg_temp.try_delete(e.tbl, 'owner') in ('0', 'denied') end,
  format('owner %s delete their rows in public.%I',
         case when e.ops like '%d%' then 'may' else 'may not' end, e.tbl)
)
from pg_temp.expectations e order by e.tbl;

-- user_secrets: write-only for the owner.
select throws_ok(
  $$ select ciphertext from public.user_secrets $$,
  '42501', null, 'owner cannot read a secret''s ciphertext back'
);
select results_eq(
  $$ select name from public.user_secrets order by name $$,
  array['OPENAI_API_KEY'],
  'owner can list the names of their secrets'
);
select lives_ok(
  $$ update public.user_secrets set ciphertext = 'sealed-v2', updated_at = now()
     where name = 'OPENAI_API_KEY' $$,
  'owner can replace a secret'
);
select lives_ok(
  $$ insert into public.user_secrets (user_id, name, ciphertext)
     values ((select auth.uid()), 'DEEPGRAM_API_KEY', 'sealed') $$,
  'owner can add a secret'
);

-- api_keys: the token hash is not readable either.
select throws_ok(
  $$ select token_hash from public.api_keys $$,
  '42501', null, 'owner cannot read an API key''s hash'
);

-- app_users: the owner cannot rename their provider identity.
select throws_ok(
  $$ update public.app_users set auth_subject = 'someone@else' where id = (select auth.uid()) $$,
  '42501', null, 'owner cannot change their auth subject'
);
select lives_ok(
  $$ update public.app_users set display_name = 'Renamed' where id = (select auth.uid()) $$,
  'owner can change their display name'
);

-- A whole platform-state read works as the owner.
select is(
  (select count(*)::int from public.agents a
   join lateral (select av.id from public.agent_versions av where av.agent_id = a.id
                 order by av.version_number desc limit 1) latest on true),
  1,
  'owner reads their agent with its latest version'
);
select is(
  (select count(*)::int from public.devices d
   join public.device_state s on s.device_id = d.id
   join public.deployment_device_targets t on t.device_id = d.id and t.status = 'active'),
  1,
  'owner reads their device with its state and binding'
);

select * from finish();
rollback;

-- Persona: anon (no session, or the public API key). It sees and changes
-- nothing in public, even when it forges the owner's claims, and cannot
-- reach schema private.
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

select plan(4 * (select count(*)::int from pg_temp.expectations) + 3);

select pg_temp.act_as('anon');

select is(pg_temp.visible(e.tbl, 'owner'), 'denied',
          format('anon cannot read public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select is(pg_temp.try_insert_copy(e.tbl, 'owner'), 'denied',
          format('anon cannot insert into public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select is(pg_temp.try_update(e.tbl, 'owner'), 'denied',
          format('anon cannot update public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select is(pg_temp.try_delete(e.tbl, 'owner'), 'denied',
          format('anon cannot delete from public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

-- Forged claims do not help a role without grants.
select set_config('request.jwt.claims',
                  json_build_object('sub', pg_temp.owner_id(), 'role', 'authenticated')::text,
                  true);
select throws_ok($$ select count(*) from public.agents $$, '42501', null,
                 'anon with forged owner claims still cannot read agents');
select throws_ok($$ select count(*) from public.user_secrets $$, '42501', null,
                 'anon with forged owner claims still cannot read secrets');
select throws_ok($$ select private.device_verify('x', 'y', 'z') $$, '42501', null,
                 'anon cannot reach functions in schema private');

select * from finish();
rollback;

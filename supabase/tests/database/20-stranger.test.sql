-- Persona: a stranger, a signed-in user acting on the owner's rows. In every
-- table they can neither see, insert, update nor delete the owner's rows,
-- and they cannot point their own rows at the owner's (foreign keys are
-- checked without RLS, so each policy must check the referenced owner).
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

-- Keys of the owner's rows used by the cross-reference attacks below.
create temporary table owner_keys on commit drop as
select
  (select id from public.pipelines where user_id = pg_temp.owner_id()) as pipeline_id,
  (select pv.id from public.pipeline_versions pv join public.pipelines p on p.id = pv.pipeline_id
    where p.user_id = pg_temp.owner_id()) as pipeline_version_id,
  (select id from public.agents where user_id = pg_temp.owner_id()) as agent_id,
  (select av.id from public.agent_versions av join public.agents a on a.id = av.agent_id
    where a.user_id = pg_temp.owner_id()) as agent_version_id,
  (select id from public.devices where user_id = pg_temp.owner_id()) as device_id,
  (select id from public.deployments where user_id = pg_temp.owner_id()) as deployment_id;
grant select on owner_keys to public;

select plan(4 * (select count(*)::int from pg_temp.expectations) + 11);

select pg_temp.act_as('authenticated', pg_temp.stranger_id());

select ok(pg_temp.visible(e.tbl, 'owner') in ('0', 'denied'),
          format('stranger cannot see the owner''s rows in public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select is(pg_temp.try_insert_copy(e.tbl, 'owner'), 'denied',
          format('stranger cannot insert rows for the owner into public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select ok(pg_temp.try_update(e.tbl, 'owner') in ('0', 'denied'),
          format('stranger cannot update the owner''s rows in public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select ok(pg_temp.try_delete(e.tbl, 'owner') in ('0', 'denied'),
          format('stranger cannot delete the owner''s rows in public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

-- Their own rows stay theirs: the control that the checks above are not vacuous.
select is(pg_temp.visible('agents', 'stranger'), '1', 'stranger sees their own agent');

-- Pointing their own rows at the owner's.
select throws_ok(
  format($$ update public.agents set pipeline_id = %L where user_id = (select auth.uid()) $$,
         (select pipeline_id from owner_keys)),
  '42501', null, 'stranger cannot attach their agent to the owner''s pipeline'
);
select throws_ok(
  format($$ insert into public.agents (user_id, pipeline_id, slug, name)
            values ((select auth.uid()), %L, 'sneaky', 'Sneaky') $$,
         (select pipeline_id from owner_keys)),
  '42501', null, 'stranger cannot create an agent on the owner''s pipeline'
);
select throws_ok(
  format($$ insert into public.agent_versions (agent_id, pipeline_version_id, version_number)
            select id, %L, 2 from public.agents where user_id = (select auth.uid()) $$,
         (select pipeline_version_id from owner_keys)),
  '42501', null, 'stranger cannot version their agent with the owner''s pipeline version'
);
select throws_ok(
  format($$ insert into public.deployments (user_id, agent_id, agent_version_id)
            select (select auth.uid()), a.id, %L from public.agents a
            where a.user_id = (select auth.uid()) $$,
         (select agent_version_id from owner_keys)),
  '42501', null, 'stranger cannot deploy the owner''s agent version'
);
select throws_ok(
  format($$ insert into public.deployment_device_targets (deployment_id, device_id, status)
            select dp.id, %L, 'superseded' from public.deployments dp
            where dp.user_id = (select auth.uid()) $$,
         (select device_id from owner_keys)),
  '42501', null, 'stranger cannot bind their deployment to the owner''s device'
);
select throws_ok(
  format($$ insert into public.deployment_device_targets (deployment_id, device_id, status)
            select %L, d.id, 'superseded' from public.devices d
            where d.user_id = (select auth.uid()) $$,
         (select deployment_id from owner_keys)),
  '42501', null, 'stranger cannot bind the owner''s deployment to their device'
);
select throws_ok(
  format($$ update public.devices set user_id = %L where user_id = (select auth.uid()) $$,
         pg_temp.owner_id()),
  '42501', null, 'stranger cannot hand their device over to the owner'
);
select throws_ok(
  $$ insert into public.app_users (id, auth_provider, auth_subject)
     values ((select auth.uid()), 'local', 'owner@test.local') $$,
  '42501', null, 'stranger cannot claim a local identity (an email)'
);
select throws_ok(
  format($$ insert into public.voice_sessions (user_id, kind) values (%L, 'browser') $$,
         pg_temp.owner_id()),
  '42501', null, 'stranger cannot write voice sessions (service role only)'
);
select throws_ok(
  $$ truncate public.agents cascade $$,
  '42501', null, 'stranger cannot truncate (which would ignore RLS)'
);

select * from finish();
rollback;

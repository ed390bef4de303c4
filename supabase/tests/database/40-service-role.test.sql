-- Persona: service_role, used only by the internal API (runtime endpoints,
-- local auth). It bypasses RLS, so it sees and writes every row; users can
-- never become it.
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

select plan(2 * (select count(*)::int from pg_temp.expectations) + 3);

select ok(not pg_has_role('authenticated', 'service_role', 'member')
          and not pg_has_role('anon', 'service_role', 'member'),
          'neither anon nor authenticated can become service_role');

select pg_temp.act_as('service_role');

select is(
  pg_temp.visible(e.tbl, 'owner') || '+' || pg_temp.visible(e.tbl, 'stranger'),
  (select count(*) filter (where persona = 'owner') || '+' || count(*) filter (where persona = 'stranger')
   from pg_temp.owned o where o.tbl = e.tbl),
  format('service_role reads every user''s rows in public.%I', e.tbl)
)
from pg_temp.expectations e order by e.tbl;

select ok(pg_temp.try_update(e.tbl, 'owner') not in ('0', 'denied'),
          format('service_role can update public.%I', e.tbl))
from pg_temp.expectations e order by e.tbl;

select lives_ok(
  format($$ insert into public.voice_sessions (id, user_id, kind) values (%L, %L, 'browser') $$,
         '33333333-3333-4333-8333-333333333333', pg_temp.owner_id()),
  'service_role records a voice session for a user'
);
select is(
  (select ciphertext from public.user_secrets
   where user_id = pg_temp.owner_id() and name = 'OPENAI_API_KEY'),
  'sealed-owner',
  'service_role reads the sealed secret to hand it to the runtime'
);

select * from finish();
rollback;

-- Schema-wide guarantees, checked for every table in `public` (a new table
-- that forgets RLS, a policy, an index or a revoke fails here).
begin;
create extension if not exists pgtap with schema extensions;
\ir ../helpers/personas.psql

select plan(6 + 4 * (select count(*)::int from pg_tables where schemaname = 'public'));

select set_eq(
  $$ select tbl from pg_temp.expectations $$,
  $$ select tablename::text from pg_tables where schemaname = 'public' $$,
  'the persona tests know every table in public (add new tables to helpers/personas.psql)'
);

select ok(c.relrowsecurity, format('RLS is enabled on public.%I', c.relname))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
order by c.relname;

-- One policy per permitted operation, none for the others, none of kind ALL.
select is(
  coalesce((
    select string_agg(
      case p.cmd when 'SELECT' then 's' when 'INSERT' then 'i'
                 when 'UPDATE' then 'u' when 'DELETE' then 'd' else '*' end,
      '' order by case p.cmd when 'SELECT' then 1 when 'INSERT' then 2
                             when 'UPDATE' then 3 when 'DELETE' then 4 else 5 end)
    from pg_policies p where p.schemaname = 'public' and p.tablename = e.tbl
  ), ''),
  e.ops,
  format('public.%I has exactly the policies {%s}', e.tbl, e.ops)
)
from pg_temp.expectations e order by e.tbl;

select is_empty(
  $$ select tablename, policyname from pg_policies
     where schemaname = 'public' and roles <> '{authenticated}'::name[] $$,
  'every policy applies to authenticated only'
);

-- auth.uid() must be wrapped as (select auth.uid()) so it runs once per
-- statement (Supabase lint auth_rls_initplan).
select is_empty(
  $$ select tablename, policyname from pg_policies
     where schemaname = 'public'
       and (regexp_replace(coalesce(qual, '') || coalesce(with_check, ''),
                           '\( SELECT auth\.(uid|jwt|role|email)\(\) AS \w+\)', '', 'g')
            ~ 'auth\.(uid|jwt|role|email)\(\)'
            or coalesce(qual, '') || coalesce(with_check, '') ~ 'current_setting\(') $$,
  'every auth.*() call in a policy is wrapped in a scalar subquery'
);

select is_empty(
  $$ select c.conrelid::regclass::text as tbl, c.conname
     from pg_constraint c join pg_namespace n on n.oid = c.connamespace
     where c.contype = 'f' and n.nspname = 'public'
       and not exists (
         select 1 from pg_index i
         where i.indrelid = c.conrelid
           and (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey
       ) $$,
  'every foreign key in public has an index led by its columns (in any order)'
);

select ok(
  not has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
  and not has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'),
  format('anon has no privilege at all on public.%I', c.relname)
)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
order by c.relname;

-- TRUNCATE ignores RLS; REFERENCES and TRIGGER are never needed by users.
select ok(
  not has_table_privilege('authenticated', c.oid, 'TRUNCATE, REFERENCES, TRIGGER'),
  format('authenticated cannot truncate, reference or trigger public.%I', c.relname)
)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
order by c.relname;

select ok(
  not has_schema_privilege('anon', 'private', 'USAGE')
  and not has_schema_privilege('authenticated', 'private', 'CREATE'),
  'anon cannot use schema private and nobody but its owner creates objects there'
);

select is_empty(
  $$ select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('v', 'm')
       and not coalesce('security_invoker=true' = any (c.reloptions), false) $$,
  'no view in public bypasses RLS (views must be security_invoker)'
);

select * from finish();
rollback;

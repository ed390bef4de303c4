-- Every function in schema private (written by the API's migrations) is a
-- narrow privileged entry point: security definer, search_path pinned to
-- '', and never executable by anon or PUBLIC. Generic, so a new function
-- that forgets its revoke fails here.
begin;
create extension if not exists pgtap with schema extensions;

select plan(1 + 3 * (select count(*)::int from pg_proc p
                     join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'private'));

select ok(has_schema_privilege('service_role', 'private', 'USAGE')
          and has_schema_privilege('authenticated', 'private', 'USAGE'),
          'service_role and authenticated can reach schema private');

select ok(p.prosecdef, format('%s is security definer', p.oid::regprocedure))
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'private' order by p.oid::regprocedure::text;

select ok(coalesce(p.proconfig, '{}') && array['search_path=""'],
          format('%s pins search_path to ''''', p.oid::regprocedure))
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'private' order by p.oid::regprocedure::text;

-- proacl null means the default, which includes EXECUTE for PUBLIC.
select ok(
  p.proacl is not null
  and not exists (select 1 from aclexplode(p.proacl) a
                  where a.grantee = 0 and a.privilege_type = 'EXECUTE')
  and not has_function_privilege('anon', p.oid, 'EXECUTE'),
  format('%s is executable by neither PUBLIC nor anon', p.oid::regprocedure)
)
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'private' order by p.oid::regprocedure::text;

select * from finish();
rollback;

-- Plain-PostgreSQL stand-in for what Supabase provides before any migration runs.
--
-- Applied by `opendot db migrate` ONLY on plain PostgreSQL (embedded server, CI,
-- tests), never on Supabase, where these objects already exist and belong to
-- Supabase. It mirrors supabase/postgres' init scripts closely enough that the
-- migrations in supabase/migrations/ behave identically on both. Every statement
-- is idempotent, because roles are cluster-wide and outlive any one database,
-- and several databases in one cluster (test clones, other developers) run this
-- concurrently.

-- Roles (Supabase: anon/authenticated NOLOGIN, service_role NOLOGIN BYPASSRLS,
-- authenticator LOGIN NOINHERIT granted the three). A concurrent creator can
-- surface as unique_violation instead of duplicate_object, so both are absorbed.
do $bootstrap$
declare
  spec record;
begin
  for spec in
    select * from (values
      ('anon', 'nologin noinherit'),
      ('authenticated', 'nologin noinherit'),
      ('service_role', 'nologin noinherit bypassrls'),
      ('authenticator', 'login noinherit')
    ) as t(role_name, options)
  loop
    if not exists (select 1 from pg_roles where rolname = spec.role_name) then
      begin
        execute format('create role %I %s', spec.role_name, spec.options);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end
$bootstrap$;

-- Supabase later switched the API roles to INHERIT (migration 20230529180330)
-- and gives them statement timeouts. Altered only when different: ALTER ROLE
-- rewrites a cluster-wide catalogue row, and two databases bootstrapping at
-- once (parallel test runs) would otherwise fail with "tuple concurrently
-- updated".
do $bootstrap$
declare
  spec record;
begin
  for spec in
    select * from (values ('anon', '3s'), ('authenticated', '8s'), ('service_role', null))
      as t(role_name, timeout)
  loop
    begin
      if not (select rolinherit from pg_roles where rolname = spec.role_name) then
        execute format('alter role %I inherit', spec.role_name);
      end if;
      if spec.timeout is not null and not exists (
        select 1 from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
        where r.rolname = spec.role_name and s.setdatabase = 0
          and ('statement_timeout=' || spec.timeout) = any (s.setconfig)
      ) then
        execute format('alter role %I set statement_timeout = %L', spec.role_name, spec.timeout);
      end if;
    exception when internal_error then
      null;  -- a concurrent bootstrap is writing the same value
    end;
  end loop;
end
$bootstrap$;

do $bootstrap$
begin
  if not pg_has_role('authenticator', 'anon', 'member') then
    grant anon to authenticator;
  end if;
  if not pg_has_role('authenticator', 'authenticated', 'member') then
    grant authenticated to authenticator;
  end if;
  if not pg_has_role('authenticator', 'service_role', 'member') then
    grant service_role to authenticator;
  end if;
  -- A non-superuser migration owner (hosted-like setups) must be able to
  -- `set local role` into the API roles, as `postgres` can on Supabase.
  if not (select rolsuper from pg_roles where rolname = current_user) then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
exception when unique_violation or duplicate_object then
  null;  -- a concurrent bootstrap granted it first
end
$bootstrap$;

-- Schemas.
create schema if not exists auth;
create schema if not exists extensions;
comment on schema auth is 'OpenDot plain-PostgreSQL stand-in for Supabase Auth (shared/db/bootstrap.sql)';

grant usage on schema public to anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;

-- auth.users: the columns Supabase has that policies, tests or the API may read.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create index if not exists users_email_idx on auth.users (email);
grant select on auth.users to service_role;

-- Claim readers, character for character the logic of supabase/auth's
-- migrations: the legacy single-claim GUC first, then the JSON claims set by
-- PostgREST (or our API) with `set_config('request.jwt.claims', ..., true)`.
-- nullif() matters: after a transaction ends the GUC reads as '' not NULL.
create or replace function auth.uid() returns uuid
  language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function auth.role() returns text
  language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function auth.email() returns text
  language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function auth.jwt() returns jsonb
  language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- Supabase's default privileges for objects the migration owner creates in
-- public: the API roles get everything and RLS plus explicit revokes in each
-- migration narrow it. Emulating this keeps the migrations honest: a table
-- that forgets to revoke from anon is caught here exactly as on Supabase.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- Database-level search_path as on Supabase, so objects in `extensions`
-- (pgTAP in tests, for instance) resolve without qualification.
do $bootstrap$
begin
  execute format(
    'alter database %I set search_path = "$user", public, extensions', current_database()
  );
end
$bootstrap$;

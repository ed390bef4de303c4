-- Schema `private`: privileged helpers (security definer functions written in
-- later migrations) that PostgREST never exposes. Not in [api] schemas of
-- config.toml, and nobody but the owner may create objects in it.
--
-- Rules for every function placed here (checked by
-- supabase/tests/database/90-private-functions.test.sql):
--   security definer, `set search_path = ''`, fully qualified names,
--   `revoke execute ... from public, anon`, explicit `grant execute` to
--   service_role (internal flows) or authenticated (user flows such as claim).
--
-- USAGE is granted to authenticated and service_role only, so that even a
-- function that forgot its revoke cannot be reached by anon: without USAGE on
-- the schema the name does not resolve.

create schema if not exists private;
revoke all on schema private from public;
revoke all on schema private from anon;
grant usage on schema private to authenticated, service_role;

comment on schema private is
  'Privileged SQL functions (security definer, search_path ''''). Not exposed by the API.';

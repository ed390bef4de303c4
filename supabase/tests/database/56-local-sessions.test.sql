-- Local sessions (service role, as the API's auth routes call them): a refresh
-- token rotates; presenting a rotated one again revokes the whole session
-- (every access and refresh token it issued); renewing by access token alone
-- never changes the session's refresh token. And the throttle table prunes
-- itself as attempts are recorded.
begin;
create extension if not exists pgtap with schema extensions;

select plan(9);

create function pg_temp.h(label text) returns text language sql immutable
  as $$ select encode(sha256(convert_to(label, 'UTF8')), 'hex') $$;

insert into public.app_users (id, auth_provider, auth_subject, email)
values ('56000000-0000-4000-8000-000000000001', 'local', 'refresh@example.test',
        'refresh@example.test');
insert into public.local_sessions (jti, user_id, refresh_token_hash, expires_at)
values ('56000000-0000-4000-8000-0000000000e1', '56000000-0000-4000-8000-000000000001',
        pg_temp.h('rt-1'), now() + interval '30 days');

set local role service_role;
select is(
  (select outcome || ' ' || jti from private.local_session_refresh(pg_temp.h('rt-1'), pg_temp.h('rt-2'))),
  'rotated 56000000-0000-4000-8000-0000000000e1', 'a live refresh token rotates');
select is(
  (select outcome from private.local_session_refresh(pg_temp.h('rt-2'), pg_temp.h('rt-3'))),
  'rotated', 'and the new one rotates in turn');
select ok(
  private.local_session_touch('56000000-0000-4000-8000-0000000000e1'),
  'renewing by access token finds the session live');
select is(
  (select refresh_token_hash from public.local_sessions
   where jti = '56000000-0000-4000-8000-0000000000e1'),
  pg_temp.h('rt-3'), 'renewing by access token leaves the refresh token as it was');
select is(
  (select outcome from private.local_session_refresh(pg_temp.h('rt-1'), pg_temp.h('rt-x'))),
  'reused', 'a rotated token presented again is reuse');
select isnt(
  (select revoked_at from public.local_sessions where jti = '56000000-0000-4000-8000-0000000000e1'),
  null, 'reuse revokes the session');
select is(
  (select outcome from private.local_session_refresh(pg_temp.h('rt-3'), pg_temp.h('rt-4'))),
  'invalid', 'so the current refresh token stops working too');
select ok(
  not private.local_session_touch('56000000-0000-4000-8000-0000000000e1'),
  'and so does every access token of the session');
reset role;

insert into public.auth_throttle (scope, subject, created_at)
select 'login_email', 'old@example.test', now() - interval '2 days' from generate_series(1, 30);
set local role service_role;
select private.throttle_record('login_email', 'new@example.test', false);
reset role;
select is(
  (select count(*)::int from public.auth_throttle where subject = 'old@example.test'), 10,
  'recording an attempt deletes up to 20 rows older than a day');

select * from finish();
rollback;

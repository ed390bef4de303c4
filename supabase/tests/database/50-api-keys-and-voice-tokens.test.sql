-- SDK keys and voice-session tokens, as their owner: a revoked key cannot be
-- brought back (trigger api_keys_keep_revoked, 20261125000100_accounts.sql),
-- and voice-token lifetimes are clamped whatever the caller asks
-- (private.issue_runtime_token, 20261125001100_runtime_token_functions.sql).
begin;
create extension if not exists pgtap with schema extensions;

select plan(7);

insert into public.app_users (id, auth_provider, auth_subject, email)
values ('5a5a5a5a-0000-4000-8000-000000000001', 'supabase',
        '5a5a5a5a-0000-4000-8000-000000000001', 'hardening@example.test');
insert into public.agents (id, user_id, slug, name)
values ('5a5a5a5a-0000-4000-8000-0000000000a1', '5a5a5a5a-0000-4000-8000-000000000001',
        'hardening', 'Hardening');
insert into public.api_keys (id, user_id, name, prefix, token_hash)
values ('5a5a5a5a-0000-4000-8000-0000000000c1', '5a5a5a5a-0000-4000-8000-000000000001',
        'k', 'od_sk_5a5a', repeat('5', 64));

set local role authenticated;
select set_config('request.jwt.claims',
  '{"sub":"5a5a5a5a-0000-4000-8000-000000000001","role":"authenticated"}', true);

select lives_ok(
  $$update public.api_keys set status = 'revoked', revoked_at = now(), updated_at = now()
    where id = '5a5a5a5a-0000-4000-8000-0000000000c1'$$,
  'the owner revokes their key');
select lives_ok(
  $$update public.api_keys set name = 'renamed' where id = '5a5a5a5a-0000-4000-8000-0000000000c1'$$,
  'a revoked key may still be renamed');
select throws_ok(
  $$update public.api_keys set status = 'active' where id = '5a5a5a5a-0000-4000-8000-0000000000c1'$$,
  '23514', null, 'the owner cannot re-activate a revoked key');
select throws_ok(
  $$update public.api_keys set revoked_at = null where id = '5a5a5a5a-0000-4000-8000-0000000000c1'$$,
  '23514', null, 'the owner cannot clear revoked_at');

select ok(
  private.issue_runtime_token('5a5a5a5a-0000-4000-8000-0000000000a1', repeat('a', 64), 'voice',
                              100000000) <= now() + interval '600 seconds',
  'a huge voice-token lifetime is clamped to 600 s');
select ok(
  private.issue_runtime_token('5a5a5a5a-0000-4000-8000-0000000000a1', repeat('b', 64), 'voice',
                              -5) > now(),
  'a negative lifetime still yields a token that expires after it was made');
select is(
  private.issue_runtime_token('5a5a5a5a-0000-4000-8000-0000000000a1', repeat('c', 64), 'voice', 60),
  now() + interval '60 seconds',
  'the API''s 60 s lifetime is kept');

select * from finish();
rollback;

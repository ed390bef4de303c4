-- Demo data for local development: `opendot up`, `opendot db reset` and
-- `supabase db reset` apply it after the migrations. Idempotent: every insert
-- is `on conflict do nothing`, so it never overwrites what the demo user
-- changed since.
--
--   user   00000000-0000-4000-8000-000000000001  demo@opendot.local / opendot-demo
--   agent  00000000-0000-4000-8000-0000000000a1  "Demo agent" (pipeline + version 1)
--
-- The password hash is argon2id with argon2-cffi's PasswordHasher() defaults.
-- The demo agent's stages name what the runtime really runs for it with no
-- provider keys: Silero for voice activity, local Whisper (tiny.en) for speech
-- to text, the labelled echo model, and Piper (the "joe" voice) for speech, so
-- every console shows the truth. Only provider and model are stored; the API
-- projects them onto today's defaults for every setting when it reads them.

insert into public.app_users (id, auth_provider, auth_subject, email, display_name)
values (
  '00000000-0000-4000-8000-000000000001', 'local', 'demo@opendot.local',
  'demo@opendot.local', 'Demo'
)
on conflict do nothing;

insert into public.local_auth_credentials (id, user_id, email, email_normalized, password_hash)
values (
  '00000000-0000-4000-8000-0000000000c1',
  '00000000-0000-4000-8000-000000000001',
  'demo@opendot.local',
  'demo@opendot.local',
  '$argon2id$v=19$m=65536,t=3,p=4$w5erbN1q+9RA+2yD+remEQ$W1LWkGbFe9eIOQnjswqcY73qrY/MQ8PkWfU74Y9gW8Q'
)
on conflict do nothing;

insert into public.user_preferences (user_id)
values ('00000000-0000-4000-8000-000000000001')
on conflict do nothing;

insert into public.pipelines (id, user_id, slug, name)
values (
  '00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-000000000001',
  'demo-agent-pipeline', 'Demo agent pipeline'
)
on conflict do nothing;

insert into public.pipeline_versions (
  id, pipeline_id, version_number, manifest_json, created_by_user_id
)
values (
  '00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000b1', 1,
  '{"stages": [
     {"id": "vad", "provider": "silero", "model": "endpointing-vad"},
     {"id": "stt", "provider": "local", "model": "whisper-tiny.en"},
     {"id": "llm", "provider": "echo", "model": "echo"},
     {"id": "tts", "provider": "local", "model": "piper-en_US-joe-medium"}
   ]}',
  '00000000-0000-4000-8000-000000000001'
)
on conflict do nothing;

insert into public.agents (id, user_id, pipeline_id, slug, name, description)
values (
  '00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001',
  '00000000-0000-4000-8000-0000000000b1', 'demo-agent',
  'Demo agent', 'A local demo agent: offline speech engines and an echo language model.'
)
on conflict do nothing;

insert into public.agent_versions (
  id, agent_id, pipeline_version_id, version_number, manifest_json, created_by_user_id
)
values (
  '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000a1',
  '00000000-0000-4000-8000-0000000000b2', 1,
  '{"name": "Demo agent", "description": "A local demo agent: offline speech engines and an echo language model.", "status": "draft", "architecture": "sandwich"}',
  '00000000-0000-4000-8000-000000000001'
)
on conflict do nothing;

-- Agents and their pipelines, each with append-only versions.
--
-- Child rows are authorised through their parent's owner with
-- `parent_id in (select id from parent where user_id = (select auth.uid()))`
-- (Supabase's recommended shape: one hashed subplan per statement, no join
-- against the row). Foreign keys are checked without RLS, so every policy
-- that accepts a reference to another row also requires that row to belong
-- to the caller; otherwise a user could attach to a stranger's pipeline.

-- ---------------------------------------------------------------------------
create table public.pipelines (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  slug text not null check (slug ~ '^[a-z0-9-]{1,128}$'),
  name text not null check (length(btrim(name)) between 1 and 200),
  description text not null default '' check (length(description) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index pipelines_user_slug_key on public.pipelines (user_id, slug)
  where deleted_at is null;
create index pipelines_user_id_idx on public.pipelines (user_id, updated_at desc);
alter table public.pipelines enable row level security;

create policy "pipelines: read own" on public.pipelines
  for select to authenticated using (user_id = (select auth.uid()));
create policy "pipelines: create own" on public.pipelines
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "pipelines: update own" on public.pipelines
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));
create policy "pipelines: delete own" on public.pipelines
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.pipelines from anon, authenticated;
grant select, insert, update, delete on table public.pipelines to authenticated;
grant all on table public.pipelines to service_role;

-- ---------------------------------------------------------------------------
-- pipeline_versions: immutable snapshots of the four stages
-- (manifest_json = {stages: [...]}, only non-default values need be stored).
create table public.pipeline_versions (
  id uuid primary key default gen_random_uuid(),
  pipeline_id uuid not null references public.pipelines (id) on delete cascade,
  version_number integer not null check (version_number > 0),
  status text not null default 'draft' check (status in ('draft', 'published')),
  manifest_json jsonb not null default '{}'::jsonb check (jsonb_typeof(manifest_json) = 'object'),
  latency_budget_ms integer check (latency_budget_ms is null or latency_budget_ms >= 0),
  created_by_user_id uuid references public.app_users (id) on delete set null,
  created_at timestamptz not null default now(),
  published_at timestamptz,
  constraint pipeline_versions_pipeline_version_key unique (pipeline_id, version_number)
);
create index pipeline_versions_created_by_idx on public.pipeline_versions (created_by_user_id);
alter table public.pipeline_versions enable row level security;

create policy "pipeline_versions: read own" on public.pipeline_versions
  for select to authenticated
  using (
    pipeline_id in (select p.id from public.pipelines p where p.user_id = (select auth.uid()))
  );
-- Versions are append-only: insert, never update. They go when the pipeline goes.
create policy "pipeline_versions: append to own" on public.pipeline_versions
  for insert to authenticated
  with check (
    pipeline_id in (select p.id from public.pipelines p where p.user_id = (select auth.uid()))
    and (created_by_user_id is null or created_by_user_id = (select auth.uid()))
  );

revoke all on table public.pipeline_versions from anon, authenticated;
grant select, insert on table public.pipeline_versions to authenticated;
grant all on table public.pipeline_versions to service_role;

-- ---------------------------------------------------------------------------
create table public.agents (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.app_users (id) on delete cascade,
  pipeline_id uuid references public.pipelines (id) on delete set null,
  slug text not null check (slug ~ '^[a-z0-9-]{1,128}$'),
  name text not null check (length(btrim(name)) between 1 and 200),
  description text not null default '' check (length(description) <= 4000),
  status text not null default 'draft' check (status in ('draft', 'active', 'removed')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  check ((status = 'removed') = (deleted_at is not null))
);
create unique index agents_user_slug_key on public.agents (user_id, slug)
  where deleted_at is null;
create index agents_user_id_idx on public.agents (user_id, updated_at desc);
create index agents_pipeline_id_idx on public.agents (pipeline_id);
alter table public.agents enable row level security;

create policy "agents: read own" on public.agents
  for select to authenticated using (user_id = (select auth.uid()));
create policy "agents: create own" on public.agents
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and (
      pipeline_id is null
      or pipeline_id in (select p.id from public.pipelines p where p.user_id = (select auth.uid()))
    )
  );
create policy "agents: update own" on public.agents
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (
    user_id = (select auth.uid())
    and (
      pipeline_id is null
      or pipeline_id in (select p.id from public.pipelines p where p.user_id = (select auth.uid()))
    )
  );
create policy "agents: delete own" on public.agents
  for delete to authenticated using (user_id = (select auth.uid()));

revoke all on table public.agents from anon, authenticated;
grant select, insert, update, delete on table public.agents to authenticated;
grant all on table public.agents to service_role;

-- ---------------------------------------------------------------------------
-- agent_versions: immutable agent snapshots
-- (manifest_json = {name, description, status, architecture, realtime}).
create table public.agent_versions (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null references public.agents (id) on delete cascade,
  pipeline_version_id uuid references public.pipeline_versions (id) on delete set null,
  version_number integer not null check (version_number > 0),
  status text not null default 'draft' check (status in ('draft', 'published')),
  manifest_json jsonb not null default '{}'::jsonb check (jsonb_typeof(manifest_json) = 'object'),
  created_by_user_id uuid references public.app_users (id) on delete set null,
  created_at timestamptz not null default now(),
  published_at timestamptz,
  -- (agent_id, version_number desc) also answers "latest version of each agent".
  constraint agent_versions_agent_version_key unique (agent_id, version_number)
);
create index agent_versions_pipeline_version_id_idx on public.agent_versions (pipeline_version_id);
create index agent_versions_created_by_idx on public.agent_versions (created_by_user_id);
alter table public.agent_versions enable row level security;

create policy "agent_versions: read own" on public.agent_versions
  for select to authenticated
  using (agent_id in (select a.id from public.agents a where a.user_id = (select auth.uid())));
create policy "agent_versions: append to own" on public.agent_versions
  for insert to authenticated
  with check (
    agent_id in (select a.id from public.agents a where a.user_id = (select auth.uid()))
    and (
      pipeline_version_id is null
      or pipeline_version_id in (
        select pv.id
        from public.pipeline_versions pv
        join public.pipelines p on p.id = pv.pipeline_id
        where p.user_id = (select auth.uid())
      )
    )
    and (created_by_user_id is null or created_by_user_id = (select auth.uid()))
  );

revoke all on table public.agent_versions from anon, authenticated;
grant select, insert on table public.agent_versions to authenticated;
grant all on table public.agent_versions to service_role;

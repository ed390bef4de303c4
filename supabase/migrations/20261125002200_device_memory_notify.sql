-- A device's memory reset reaches the runtime process that holds its socket:
-- whoever moves device_state.memory_reset_at (the user's reset endpoint, the
-- runtime's internal one, a rebind) makes Postgres say so on the channel the
-- runtime LISTENs on, with the device id as payload.
create or replace function private.notify_device_memory()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.memory_reset_at is not null
     and (tg_op = 'INSERT' or new.memory_reset_at is distinct from old.memory_reset_at) then
    perform pg_notify('opendot_device_memory', new.device_id::text);
  end if;
  return null;
end;
$$;

revoke execute on function private.notify_device_memory() from public, anon;

create trigger device_state_memory_notify
  after insert or update of memory_reset_at on public.device_state
  for each row execute function private.notify_device_memory();

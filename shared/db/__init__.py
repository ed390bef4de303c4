"""Database tooling: the plain-PostgreSQL bootstrap, the migration runner and its commands.

The schema itself lives in `supabase/migrations/` so the Supabase CLI and this
package apply exactly the same files.
"""

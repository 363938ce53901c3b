-- Least privilege: the services (order API, execution workers, relays) connect as a login role that is a member
-- of tickfan_app; only migrations run as the superuser. tickfan_app may read and write what the services write,
-- but the journal and the executions are append-only facts: INSERT and SELECT, never UPDATE, DELETE or TRUNCATE.
--
-- Set-up, once per server, as the superuser (the role is cluster-wide; this migration only creates the group):
--   CREATE ROLE tickfan_svc LOGIN PASSWORD '...' IN ROLE tickfan_app;
-- and give the services DSNs such as postgresql://tickfan_svc:...@db:5432/tickfan_0?sslmode=verify-full&...

DO $$
BEGIN
    CREATE ROLE tickfan_app NOLOGIN;
EXCEPTION
    -- already there (another shard's database on this server, or a migration running beside this one)
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO tickfan_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO tickfan_app;
REVOKE UPDATE ON journal, executions, schema_migrations FROM tickfan_app;
REVOKE INSERT ON schema_migrations FROM tickfan_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO tickfan_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO tickfan_app;
-- tables and sequences later migrations create (as this same migrating role) are the services' too
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO tickfan_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO tickfan_app;

-- The journal's rules (001) made UPDATE and DELETE do nothing, silently, for everyone: an unconditional
-- DO INSTEAD NOTHING replaces the statement before its permissions are checked, so the services' role got
-- "UPDATE 0" rather than a refusal. With a condition the statement is kept (with the negated condition, which
-- matches no row), so its privileges are checked: tickfan_app is refused, and the superuser still changes
-- nothing.
CREATE OR REPLACE RULE journal_no_update AS ON UPDATE TO journal WHERE true DO INSTEAD NOTHING;
CREATE OR REPLACE RULE journal_no_delete AS ON DELETE TO journal WHERE true DO INSTEAD NOTHING;

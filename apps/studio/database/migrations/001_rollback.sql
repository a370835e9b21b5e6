-- Rollback of 001: removes the four core tables. The schema itself is only
-- dropped when nothing else lives in it, because the migration runner's own
-- tracking table (platform.schema_migrations) may share it.
DROP TABLE platform.projects;
DROP TABLE platform.organization_members;
DROP TABLE platform.users;
DROP TABLE platform.organizations;

-- RESTRICT, never CASCADE: if an object kind not checked below is still
-- there, the drop fails and the handler keeps the schema instead.
DO $$
DECLARE
    ns oid := to_regnamespace('platform');
BEGIN
    IF ns IS NULL THEN
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = ns)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace = ns)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace = ns) THEN
        RAISE NOTICE 'schema platform still holds other objects; leaving it in place';
        RETURN;
    END IF;

    DROP SCHEMA platform RESTRICT;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'schema platform is not empty; leaving it in place';
END
$$;

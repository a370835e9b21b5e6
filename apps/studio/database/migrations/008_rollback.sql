-- Rollback of 008: removes the active-organization functions, index,
-- foreign key and column; the backfilled values go with the column.
DROP FUNCTION platform.get_user_active_org(uuid);
DROP FUNCTION platform.set_user_active_org(uuid, uuid);
DROP INDEX platform.users_active_org_id_idx;
ALTER TABLE platform.users DROP CONSTRAINT users_active_org_id_fkey;
ALTER TABLE platform.users DROP COLUMN active_org_id;

-- Rollback of 006: drops the per-project database registry; its indexes and
-- constraints go with the table.
DROP TABLE platform.databases;

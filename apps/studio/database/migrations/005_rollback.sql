-- Rollback of 005: drops the audit log table (its indexes and trigger go with
-- it) and then the trigger function, which nothing else uses.
DROP TABLE platform.audit_logs;
DROP FUNCTION platform.audit_logs_reject_update();

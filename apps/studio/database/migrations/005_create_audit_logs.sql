-- 005: append-only audit trail of who did what in which organization.
--
-- organization_id and actor_user_id deliberately have no foreign keys: the
-- trail must survive deletion of the organization or user it talks about and
-- keep their original ids.
CREATE TABLE platform.audit_logs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid,
    actor_user_id   uuid,
    -- Dotted verb such as "project.paused", so it can be filtered by prefix.
    action          text        NOT NULL,
    target_type     text,
    -- text, not uuid: targets include things keyed by ref or name.
    target_id       text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ip_address      inet,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_action_check CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    CONSTRAINT audit_logs_target_check CHECK ((target_type IS NULL) = (target_id IS NULL)),
    CONSTRAINT audit_logs_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

-- The dashboard's audit page: newest events of one organization first.
CREATE INDEX audit_logs_organization_id_created_at_idx
    ON platform.audit_logs (organization_id, created_at DESC);
-- "What did this person do": partial, because system events have no actor.
CREATE INDEX audit_logs_actor_user_id_created_at_idx
    ON platform.audit_logs (actor_user_id, created_at DESC)
    WHERE actor_user_id IS NOT NULL;
-- History of a single object (a project, a member, an invoice...).
CREATE INDEX audit_logs_target_idx
    ON platform.audit_logs (target_type, target_id)
    WHERE target_id IS NOT NULL;
-- Retention jobs delete by age; BRIN stays tiny on an insert-ordered table.
CREATE INDEX audit_logs_created_at_brin_idx
    ON platform.audit_logs USING brin (created_at);

-- Rewriting history defeats the point of an audit log, so updates are refused
-- outright. Deletes stay possible for retention.
CREATE FUNCTION platform.audit_logs_reject_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, platform
AS $$
BEGIN
    RAISE EXCEPTION 'platform.audit_logs is append-only (row % cannot be updated)', OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_logs_reject_update
    BEFORE UPDATE ON platform.audit_logs
    FOR EACH ROW EXECUTE FUNCTION platform.audit_logs_reject_update();

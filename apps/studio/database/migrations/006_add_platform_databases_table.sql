-- 006: where each project's Postgres actually runs, so Studio can connect to
-- it and show its health. A project has one primary and may have read replicas.
-- No secrets here on purpose: passwords stay in the secrets store, looked up
-- by project and db_user.
CREATE TABLE platform.databases (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id       uuid        NOT NULL
        REFERENCES platform.projects (id) ON DELETE CASCADE,
    host             text        NOT NULL,
    port             integer     NOT NULL DEFAULT 5432,
    name             text        NOT NULL DEFAULT 'postgres',
    -- Replication role of this instance, not a Postgres login role.
    role             text        NOT NULL DEFAULT 'primary',
    -- Login role Studio connects as.
    db_user          text        NOT NULL DEFAULT 'postgres',
    postgres_version text,
    status           text        NOT NULL DEFAULT 'provisioning',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT databases_host_port_name_key UNIQUE (host, port, name),
    CONSTRAINT databases_port_check CHECK (port BETWEEN 1 AND 65535),
    CONSTRAINT databases_host_check CHECK (length(btrim(host)) > 0),
    CONSTRAINT databases_role_check CHECK (role IN ('primary', 'read_replica')),
    CONSTRAINT databases_status_check
        CHECK (status IN ('provisioning', 'active', 'unhealthy', 'paused', 'removed'))
);

CREATE INDEX databases_project_id_idx ON platform.databases (project_id);

-- Two live primaries for one project would make Studio's connection target
-- ambiguous; removed ones are kept for history and do not count.
CREATE UNIQUE INDEX databases_one_primary_per_project_key
    ON platform.databases (project_id)
    WHERE role = 'primary' AND status <> 'removed';

-- 001: control-plane core for Studio: organizations, users, who belongs where,
-- and the projects each organization owns. Every later platform migration
-- hangs off these four tables.
--
-- IF NOT EXISTS on the schema because the migration runner may already have
-- created platform.schema_migrations before this file runs.
CREATE SCHEMA IF NOT EXISTS platform;

CREATE TABLE platform.organizations (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text        NOT NULL,
    -- Slugs appear in dashboard URLs, so keep them URL-safe and lowercase.
    slug          text        NOT NULL,
    billing_email text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_slug_key UNIQUE (slug),
    CONSTRAINT organizations_slug_check CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    CONSTRAINT organizations_name_check CHECK (length(btrim(name)) > 0)
);

CREATE TABLE platform.users (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored lowercased so the plain unique constraint is also case-insensitive.
    email        text        NOT NULL,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_check CHECK (email = lower(email) AND position('@' IN email) > 1)
);

CREATE TABLE platform.organization_members (
    organization_id uuid        NOT NULL
        REFERENCES platform.organizations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL
        REFERENCES platform.users (id) ON DELETE CASCADE,
    role            text        NOT NULL DEFAULT 'developer',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_members_pkey PRIMARY KEY (organization_id, user_id),
    CONSTRAINT organization_members_role_check
        CHECK (role IN ('owner', 'admin', 'developer', 'read_only'))
);

-- The primary key serves "members of an org"; this serves "orgs of a user",
-- which the dashboard asks on every sign-in.
CREATE INDEX organization_members_user_id_idx
    ON platform.organization_members (user_id);

CREATE TABLE platform.projects (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL
        REFERENCES platform.organizations (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    -- Short public identifier used in hostnames and API URLs, so it must be
    -- globally unique and DNS-label safe.
    ref             text        NOT NULL,
    region          text        NOT NULL,
    status          text        NOT NULL DEFAULT 'provisioning',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_ref_key UNIQUE (ref),
    CONSTRAINT projects_ref_check CHECK (ref ~ '^[a-z0-9]{8,32}$'),
    CONSTRAINT projects_name_check CHECK (length(btrim(name)) > 0),
    CONSTRAINT projects_status_check
        CHECK (status IN ('provisioning', 'active', 'paused', 'restoring', 'removed'))
);

CREATE INDEX projects_organization_id_idx ON platform.projects (organization_id);

-- 003: fine-grained permissions. organization_members.role (from 001) stays the
-- member's base role; roles are named bundles of permissions, and member_roles
-- grants a member extra roles on top of the base one. Access checks go through
-- platform.user_has_permission so the rules live in one place.

CREATE TABLE platform.roles (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Names of base roles must match organization_members.role values.
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_name_key UNIQUE (name),
    CONSTRAINT roles_name_check CHECK (name ~ '^[a-z][a-z_]*$')
);

CREATE TABLE platform.permissions (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- "<resource>.<action>", e.g. projects.create: code checks these strings.
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT permissions_name_key UNIQUE (name),
    CONSTRAINT permissions_name_check CHECK (name ~ '^[a-z_]+\.[a-z_]+$')
);

CREATE TABLE platform.role_permissions (
    role_id       uuid        NOT NULL REFERENCES platform.roles (id) ON DELETE CASCADE,
    permission_id uuid        NOT NULL REFERENCES platform.permissions (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_permissions_pkey PRIMARY KEY (role_id, permission_id)
);

CREATE INDEX role_permissions_permission_id_idx ON platform.role_permissions (permission_id);

CREATE TABLE platform.member_roles (
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    -- RESTRICT: removing a role that is still granted must be a deliberate act.
    role_id         uuid        NOT NULL REFERENCES platform.roles (id) ON DELETE RESTRICT,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT member_roles_pkey PRIMARY KEY (organization_id, user_id, role_id),
    -- Extra roles disappear together with the membership they extend.
    CONSTRAINT member_roles_membership_fkey FOREIGN KEY (organization_id, user_id)
        REFERENCES platform.organization_members (organization_id, user_id) ON DELETE CASCADE
);

CREATE INDEX member_roles_role_id_idx ON platform.member_roles (role_id);

-- SECURITY DEFINER so callers (and row-level security policies) can ask the
-- question without being able to read the membership tables themselves.
CREATE FUNCTION platform.user_has_permission(p_user_id uuid, p_org_id uuid, p_permission text)
RETURNS boolean
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, platform
AS $$
    SELECT EXISTS (
        SELECT 1
        FROM (
            SELECT r.id AS role_id
            FROM platform.organization_members AS om
            JOIN platform.roles AS r ON r.name = om.role
            WHERE om.user_id = p_user_id AND om.organization_id = p_org_id
            UNION ALL
            -- member_roles rows cannot outlive the membership (FK), so no
            -- extra membership check is needed here.
            SELECT mr.role_id
            FROM platform.member_roles AS mr
            WHERE mr.user_id = p_user_id AND mr.organization_id = p_org_id
        ) AS held
        JOIN platform.role_permissions AS rp ON rp.role_id = held.role_id
        JOIN platform.permissions AS p ON p.id = rp.permission_id
        WHERE p.name = p_permission
    );
$$;

INSERT INTO platform.roles (name, description) VALUES
    ('owner',     'Full control, including billing and deleting the organization'),
    ('admin',     'Manages members and projects'),
    ('developer', 'Works on projects'),
    ('read_only', 'Can view but not change anything');

INSERT INTO platform.permissions (name, description) VALUES
    ('organizations.read',   'View organization settings'),
    ('organizations.update', 'Change organization settings'),
    ('organizations.delete', 'Delete the organization'),
    ('members.read',         'List members'),
    ('members.manage',       'Invite, remove and change roles of members'),
    ('projects.read',        'View projects'),
    ('projects.create',      'Create projects'),
    ('projects.update',      'Change project settings'),
    ('projects.delete',      'Delete projects'),
    ('billing.read',         'View plans, invoices and usage'),
    ('billing.manage',       'Change plan and payment details'),
    ('audit_logs.read',      'Read the audit log');

-- Each role gets every permission whose name matches one of its patterns;
-- overlapping patterns are why ON CONFLICT is needed.
INSERT INTO platform.role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM (VALUES
        ('owner',     '%'),
        ('admin',     '%'),
        ('developer', '%.read'),
        ('developer', 'projects.%'),
        ('read_only', '%.read')
     ) AS grants (role_name, pattern)
JOIN platform.roles AS r ON r.name = grants.role_name
JOIN platform.permissions AS p ON p.name LIKE grants.pattern
-- Admins run the organization but may not delete it or change its billing;
-- developers build projects but may not delete them.
WHERE NOT (grants.role_name = 'admin' AND p.name IN ('organizations.delete', 'billing.manage'))
  AND NOT (grants.role_name = 'developer' AND p.name = 'projects.delete')
ON CONFLICT DO NOTHING;

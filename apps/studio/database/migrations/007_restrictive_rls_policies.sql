-- migrate:hold requires session context middleware
-- 007: row-level security for the platform tables, keyed on the Studio user
-- that the API middleware puts in the session as app.current_user_id. Held
-- until that middleware ships: without it every non-owner query sees nothing.
--
-- Postgres denies everything when a table has only restrictive policies, so
-- each table gets a permissive policy that decides which commands are open at
-- all, plus restrictive ones that narrow rows to the user's organizations.
-- Restrictive policies are ANDed, so a permissive policy added later can never
-- widen access beyond membership. RLS is not forced: the owning role (the
-- migration runner, billing and provisioning jobs) keeps full access.

CREATE FUNCTION platform.current_app_user_id()
RETURNS uuid
LANGUAGE sql
STABLE
AS $$
    -- missing_ok = true: no session context means "nobody", not an error.
    SELECT nullif(pg_catalog.current_setting('app.current_user_id', true), '')::uuid;
$$;

-- SECURITY DEFINER so policies can consult organization_members without
-- recursing into organization_members' own policies.
CREATE FUNCTION platform.is_org_member(p_org_id uuid)
RETURNS boolean
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, platform
AS $$
    SELECT EXISTS (
        SELECT 1
        FROM platform.organization_members AS m
        WHERE m.organization_id = p_org_id
          AND m.user_id = platform.current_app_user_id()
    );
$$;

ALTER TABLE platform.organizations        ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.users                ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.organization_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.projects             ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.plans                ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.subscriptions        ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.invoices             ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.usage                ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.roles                ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.permissions          ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.role_permissions     ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.member_roles         ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.audit_logs           ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.databases            ENABLE ROW LEVEL SECURITY;

-- Open commands. Membership and role changes, billing, audit writes and
-- infrastructure records are read-only here: they change through owner-run
-- services, since writing them directly would be a privilege escalation.
CREATE POLICY organizations_open ON platform.organizations AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true);
CREATE POLICY projects_open ON platform.projects AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true);
CREATE POLICY users_open_select ON platform.users AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY users_open_update ON platform.users AS PERMISSIVE FOR UPDATE USING (true) WITH CHECK (true);
CREATE POLICY organization_members_open ON platform.organization_members AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY member_roles_open ON platform.member_roles AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY plans_open ON platform.plans AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY roles_open ON platform.roles AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY permissions_open ON platform.permissions AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY role_permissions_open ON platform.role_permissions AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY subscriptions_open ON platform.subscriptions AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY invoices_open ON platform.invoices AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY usage_open ON platform.usage AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY audit_logs_open ON platform.audit_logs AS PERMISSIVE FOR SELECT USING (true);
CREATE POLICY databases_open ON platform.databases AS PERMISSIVE FOR SELECT USING (true);

-- Membership limits. Creating an organization is therefore not possible
-- through these policies; the signup flow does it with the owner role.
CREATE POLICY organizations_member_only ON platform.organizations AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(id));
CREATE POLICY organization_members_member_only ON platform.organization_members AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(organization_id));
CREATE POLICY member_roles_member_only ON platform.member_roles AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(organization_id));
CREATE POLICY projects_member_only ON platform.projects AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(organization_id));
CREATE POLICY subscriptions_member_only ON platform.subscriptions AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(organization_id));
CREATE POLICY invoices_member_only ON platform.invoices AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member(organization_id));
CREATE POLICY usage_member_only ON platform.usage AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member((SELECT p.organization_id FROM platform.projects AS p
                                   WHERE p.id = usage.project_id)));
CREATE POLICY databases_member_only ON platform.databases AS RESTRICTIVE FOR ALL
    USING (platform.is_org_member((SELECT p.organization_id FROM platform.projects AS p
                                   WHERE p.id = databases.project_id)));
-- Being a member is not enough to read the audit log; it needs the permission.
CREATE POLICY audit_logs_permitted_only ON platform.audit_logs AS RESTRICTIVE FOR ALL
    USING (platform.user_has_permission(platform.current_app_user_id(), organization_id, 'audit_logs.read'));

-- Membership alone is not enough to change projects: the role must allow it.
CREATE POLICY projects_insert_permitted ON platform.projects AS RESTRICTIVE FOR INSERT
    WITH CHECK (platform.user_has_permission(platform.current_app_user_id(), organization_id, 'projects.create'));
CREATE POLICY projects_update_permitted ON platform.projects AS RESTRICTIVE FOR UPDATE
    USING (platform.user_has_permission(platform.current_app_user_id(), organization_id, 'projects.update'));
CREATE POLICY projects_delete_permitted ON platform.projects AS RESTRICTIVE FOR DELETE
    USING (platform.user_has_permission(platform.current_app_user_id(), organization_id, 'projects.delete'));

-- Users see themselves and people they share an organization with (the
-- subquery is itself filtered by organization_members' policies), and may
-- only ever change their own row.
CREATE POLICY users_self_or_colleague ON platform.users AS RESTRICTIVE FOR ALL
    USING (id = platform.current_app_user_id()
           OR EXISTS (SELECT 1 FROM platform.organization_members AS m WHERE m.user_id = users.id));
CREATE POLICY users_update_self ON platform.users AS RESTRICTIVE FOR UPDATE
    USING (id = platform.current_app_user_id()) WITH CHECK (id = platform.current_app_user_id());

-- Catalogs hold no tenant data, but still require an identified session.
CREATE POLICY plans_identified_only ON platform.plans AS RESTRICTIVE FOR ALL
    USING (platform.current_app_user_id() IS NOT NULL);
CREATE POLICY roles_identified_only ON platform.roles AS RESTRICTIVE FOR ALL
    USING (platform.current_app_user_id() IS NOT NULL);
CREATE POLICY permissions_identified_only ON platform.permissions AS RESTRICTIVE FOR ALL
    USING (platform.current_app_user_id() IS NOT NULL);
CREATE POLICY role_permissions_identified_only ON platform.role_permissions AS RESTRICTIVE FOR ALL
    USING (platform.current_app_user_id() IS NOT NULL);

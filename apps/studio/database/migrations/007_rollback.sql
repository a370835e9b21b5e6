-- Rollback of 007: removes the policies, switches row-level security back
-- off and drops the helper functions. Touches nothing from 008, so it works
-- whether or not 008 has been applied.

DROP POLICY organizations_open ON platform.organizations;
DROP POLICY projects_open ON platform.projects;
DROP POLICY users_open_select ON platform.users;
DROP POLICY users_open_update ON platform.users;
DROP POLICY organization_members_open ON platform.organization_members;
DROP POLICY member_roles_open ON platform.member_roles;
DROP POLICY plans_open ON platform.plans;
DROP POLICY roles_open ON platform.roles;
DROP POLICY permissions_open ON platform.permissions;
DROP POLICY role_permissions_open ON platform.role_permissions;
DROP POLICY subscriptions_open ON platform.subscriptions;
DROP POLICY invoices_open ON platform.invoices;
DROP POLICY usage_open ON platform.usage;
DROP POLICY audit_logs_open ON platform.audit_logs;
DROP POLICY databases_open ON platform.databases;
DROP POLICY organizations_member_only ON platform.organizations;
DROP POLICY organization_members_member_only ON platform.organization_members;
DROP POLICY member_roles_member_only ON platform.member_roles;
DROP POLICY projects_member_only ON platform.projects;
DROP POLICY subscriptions_member_only ON platform.subscriptions;
DROP POLICY invoices_member_only ON platform.invoices;
DROP POLICY usage_member_only ON platform.usage;
DROP POLICY databases_member_only ON platform.databases;
DROP POLICY audit_logs_permitted_only ON platform.audit_logs;
DROP POLICY projects_insert_permitted ON platform.projects;
DROP POLICY projects_update_permitted ON platform.projects;
DROP POLICY projects_delete_permitted ON platform.projects;
DROP POLICY users_self_or_colleague ON platform.users;
DROP POLICY users_update_self ON platform.users;
DROP POLICY plans_identified_only ON platform.plans;
DROP POLICY roles_identified_only ON platform.roles;
DROP POLICY permissions_identified_only ON platform.permissions;
DROP POLICY role_permissions_identified_only ON platform.role_permissions;

ALTER TABLE platform.organizations        DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.users                DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.organization_members DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.projects             DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.plans                DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.subscriptions        DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.invoices             DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.usage                DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.roles                DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.permissions          DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.role_permissions     DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.member_roles         DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.audit_logs           DISABLE ROW LEVEL SECURITY;
ALTER TABLE platform.databases            DISABLE ROW LEVEL SECURITY;

-- Functions last: the policies above were their only users.
DROP FUNCTION platform.is_org_member(uuid);
DROP FUNCTION platform.current_app_user_id();

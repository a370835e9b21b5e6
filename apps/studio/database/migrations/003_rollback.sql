-- Rollback of 003: drops the permission check and the permission tables
-- (including their seeded rows); organization_members.role is untouched.
DROP FUNCTION platform.user_has_permission(uuid, uuid, text);
DROP TABLE platform.member_roles;
DROP TABLE platform.role_permissions;
DROP TABLE platform.permissions;
DROP TABLE platform.roles;

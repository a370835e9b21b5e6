-- Rollback of 004: removes the Lancio organization. Memberships, projects and
-- billing rows that reference it are removed with it (ON DELETE CASCADE).
DELETE FROM platform.organizations WHERE slug = 'lancio';

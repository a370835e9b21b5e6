-- 004: seeds the Lancio organization, which owns Studio's internal projects.
-- ON CONFLICT keeps the file safe to run again and leaves an existing Lancio
-- row (for instance one created by hand) as it is.
INSERT INTO platform.organizations (name, slug)
VALUES ('Lancio', 'lancio')
ON CONFLICT (slug) DO NOTHING;

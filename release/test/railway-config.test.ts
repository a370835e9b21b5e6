/**
 * railway.toml (Config as Code, deprecated) and .railway/railway.ts (its successor) must describe
 * the same service: whichever one Railway reads, the build and the pre-deploy command are the same.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createRailwayContext, project, type BuildConfig, type DeployConfig, type ServiceNode } from "railway/iac";
import program, { partial } from "../../.railway/railway.ts";
import { REPO_ROOT } from "./support/run-migrate.ts";

interface ServiceSettings {
  readonly build: BuildConfig;
  readonly deploy: DeployConfig;
}

/** The settings both files declare; each must be equal in the two. */
const COMPARED = {
  build: ["builder", "dockerfilePath"],
  deploy: ["preDeployCommand", "healthcheckPath", "restartPolicyType", "restartPolicyMaxRetries"],
} as const satisfies { [Section in keyof ServiceSettings]: readonly (keyof ServiceSettings[Section])[] };

async function tomlSettings(): Promise<ServiceSettings> {
  const parsed = Bun.TOML.parse(await Bun.file(join(REPO_ROOT, "railway.toml")).text()) as Partial<ServiceSettings>;
  return { build: parsed.build ?? {}, deploy: parsed.deploy ?? {} };
}

/** Evaluates .railway/railway.ts as the CLI would for an environment, and picks this repository's service. */
async function iacSettings(): Promise<ServiceSettings> {
  const definition = await program(createRailwayContext({ environment: "production", projectName: "studio" }), project);
  const services = (definition.resources ?? []).flat().filter((resource): resource is ServiceNode => resource.type === "service");
  const studio = services.find((service) => service.name === partial);
  if (!studio) throw new Error(`.railway/railway.ts declares no service named "${partial}" (its partial)`);
  return { build: studio.build ?? {}, deploy: studio.deploy ?? {} };
}

/** One line per setting that differs, naming it and both values. */
function disagreements(toml: ServiceSettings, iac: ServiceSettings): string[] {
  const found: string[] = [];
  for (const section of ["build", "deploy"] as const) {
    for (const key of COMPARED[section]) {
      const [left, right] = [(toml[section] as Record<string, unknown>)[key], (iac[section] as Record<string, unknown>)[key]];
      if (!Bun.deepEquals(left, right)) found.push(`${section}.${key}: railway.toml has ${JSON.stringify(left)}, .railway/railway.ts has ${JSON.stringify(right)}`);
    }
  }
  return found;
}

describe("Railway configuration", () => {
  test("railway.toml and .railway/railway.ts agree on builder, Dockerfile, pre-deploy command, health check and restart policy", async () => {
    const toml = await tomlSettings();
    expect(disagreements(toml, await iacSettings())).toEqual([]);
    for (const section of ["build", "deploy"] as const) {
      for (const key of COMPARED[section]) expect((toml[section] as Record<string, unknown>)[key]).toBeDefined();
    }
  });

  test("the comparison names a setting that differs", async () => {
    const toml = await tomlSettings();
    const drifted = { ...toml, deploy: { ...toml.deploy, preDeployCommand: ["bun release/migrate.ts --allow-out-of-order"] } };
    expect(disagreements(toml, drifted)).toEqual([
      'deploy.preDeployCommand: railway.toml has ["bun release/migrate.ts"], .railway/railway.ts has ["bun release/migrate.ts --allow-out-of-order"]',
    ]);
  });

  test("the settings point at real files and build the Studio image", async () => {
    const { build, deploy } = await tomlSettings();
    expect(build.builder).toBe("DOCKERFILE");
    expect(existsSync(join(REPO_ROOT, build.dockerfilePath!))).toBe(true);
    expect(deploy.healthcheckPath).toBe("/api/platform/profile");
    expect(deploy.restartPolicyType).toBe("ON_FAILURE");
  });

  test("the pre-deploy command needs no shell: one command, plain words, the job's entry file", async () => {
    const { deploy } = await tomlSettings();
    expect(deploy.preDeployCommand).toHaveLength(1);
    const command = deploy.preDeployCommand![0]!;
    // Railway passes these characters to the program as they are; only a shell would interpret them.
    expect(command).not.toMatch(/[$`'"\\|&;<>(){}*?~]/);
    const [executable, script] = command.split(" ");
    expect(executable).toBe("bun");
    expect(existsSync(join(REPO_ROOT, script!))).toBe(true);
  });
});

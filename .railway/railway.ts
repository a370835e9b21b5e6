/**
 * Railway Infrastructure as Code for the Studio service: the successor of railway.toml, with the
 * same settings (release/test/railway-config.test.ts fails when the two differ). The Railway CLI
 * evaluates it: `railway config plan`, then `railway config apply`. See the README's "Railway
 * configuration" section before switching a service over; a service cannot use both.
 */
import { defineRailway, project, service } from "railway/iac";

/** This repository manages only its own service; the database and the rest of the project stay as they are. */
export const partial = "studio";

export default defineRailway((ctx) => {
  const studio = service(partial, {
    build: { builder: "DOCKERFILE", dockerfilePath: "Dockerfile" },
    // Run in a container of the new image before the release takes traffic, without a shell.
    preDeploy: ["bun release/migrate.ts"],
    // The endpoint the Studio image's own HEALTHCHECK polls.
    healthcheck: "/api/platform/profile",
    deploy: { restartPolicyType: "ON_FAILURE", restartPolicyMaxRetries: 10 },
  });
  return project(ctx.projectName ?? "studio", { resources: [studio] });
});

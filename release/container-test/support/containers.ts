/**
 * buildah and podman with the options this machine needs: the runc runtime (crun fails on its
 * hybrid cgroups), explicit limits (containers start only with them) and the host's network (the
 * test PostgreSQL listens on 127.0.0.1, and npm reaches its registry from there).
 */
import { mustRun, runCommand, type CommandResult } from "./commands.ts";

const RUNTIME = ["--runtime", "runc"];
const LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"];
const TEST_REPOSITORY = "localhost/studio-container-test";

/** Tags carry the run's id, so concurrent runs never share an image and clean-up finds all of a run's. */
export function testImageTag(name: string, runId: string): string {
  return `${TEST_REPOSITORY}/${name}:${runId}`;
}

/** Removes every image the run tagged, including those of a build that failed half-way. */
export async function removeTestImages(runId: string): Promise<void> {
  const images = (await mustRun(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"])).split("\n");
  const ours = images.filter((image) => image.startsWith(`${TEST_REPOSITORY}/`) && image.endsWith(`:${runId}`));
  if (ours.length > 0) await mustRun(["buildah", "rmi", "--force", ...ours]);
}

export interface BuildOptions {
  readonly context: string;
  readonly containerfile: string;
  readonly tag: string;
  readonly buildArgs?: Record<string, string>;
}

/**
 * Builds with local images only (`--pull=never`: there is no registry to fall back on), in Docker's
 * image format, which keeps HEALTHCHECK as Railway's builder does (the OCI format drops it).
 */
export async function buildImage({ context, containerfile, tag, buildArgs = {} }: BuildOptions): Promise<void> {
  const args = Object.entries(buildArgs).flatMap(([name, value]) => ["--build-arg", `${name}=${value}`]);
  await mustRun(["buildah", "bud", "--pull=never", "--format", "docker", ...RUNTIME, ...LIMITS, "--network", "host", ...args, "--file", containerfile, "--tag", tag, context]);
}

/** Makes an image of a root file system tarball, with PATH set as in Debian's own images. */
export async function importRootfs(tarball: string, tag: string): Promise<void> {
  await mustRun(["podman", "import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", tarball, tag]);
}

/** What a container of the image runs and how it is checked: the parts the Dockerfile must leave alone. */
export interface ImageRunConfig {
  readonly Cmd: string[] | null;
  readonly Entrypoint: string[] | null;
  readonly WorkingDir: string;
  readonly User: string;
  readonly ExposedPorts: Record<string, unknown> | null;
  readonly Healthcheck: unknown;
}

export async function imageRunConfig(tag: string): Promise<ImageRunConfig> {
  const [image] = JSON.parse(await mustRun(["podman", "image", "inspect", tag])) as {
    Config: Omit<ImageRunConfig, "Healthcheck">;
    Healthcheck?: unknown;
  }[];
  const { Cmd, Entrypoint, WorkingDir, User, ExposedPorts } = image!.Config;
  return { Cmd: Cmd ?? null, Entrypoint: Entrypoint ?? null, WorkingDir, User, ExposedPorts: ExposedPorts ?? null, Healthcheck: image!.Healthcheck ?? null };
}

export interface RunOptions {
  /** The container's only variables besides the image's own. Passed by name, so no value reaches podman's argv. */
  readonly env?: Record<string, string>;
  /** Host names the container resolves to 127.0.0.1, like Railway's private names. */
  readonly localHosts?: readonly string[];
  readonly workdir?: string;
}

/**
 * Runs `argv` as the container's process in exec form, the way Railway runs a pre-deploy command:
 * it replaces the image's entry point, and no shell sees it.
 */
export async function runInImage(tag: string, argv: readonly string[], { env = {}, localHosts = [], workdir }: RunOptions = {}): Promise<CommandResult> {
  return runCommand(
    [
      "podman",
      ...RUNTIME,
      "run",
      "--rm",
      "--pull=never",
      ...LIMITS,
      "--network",
      "host",
      ...localHosts.flatMap((host) => ["--add-host", `${host}:127.0.0.1`]),
      ...Object.keys(env).flatMap((name) => ["--env", name]),
      ...(workdir ? ["--workdir", workdir] : []),
      "--entrypoint",
      JSON.stringify(argv),
      tag,
    ],
    { env },
  );
}

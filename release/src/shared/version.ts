/**
 * The job's own version, recorded in the run history. It is kept here rather than read from
 * package.json because the Studio image carries release/ but not the repository's package.json;
 * a test keeps the two equal.
 */
export const JOB_NAME = "studio-release-migrations";
export const JOB_VERSION = "0.1.0";

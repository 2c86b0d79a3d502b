/**
 * What this build is: the package version (package.json) and the git revision and branch it was built
 * from (build-info.json, written by `npm run build`: scripts/write-build-info.js), in the spirit of
 * Prometheus's version.Info. Both files are two levels up from dist/core/, as from src/core/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const EXPORTER_VERSION = readVersion();

/** The git details of a build; each absent when unknown. */
export interface BuildInfo {
  /** The commit hash (Replicante's `checkout`, Prometheus's `revision`). */
  checkout?: string;
  /** Replicante's wording: "not tainted" or "working directory tainted". */
  taint?: string;
  branch?: string;
}

/**
 * DATASTORE_EXPORTER_GIT_COMMIT / _TAINT / _BRANCH, else build-info.json next to package.json
 * ({"commit", "taint", "branch"}), else unknown. The variables let an image built without the git
 * history (a Docker context has no .git) still say what it was built from.
 */
export function readBuildInfo(
  env: NodeJS.ProcessEnv = process.env,
  file = join(ROOT, 'build-info.json'),
): BuildInfo {
  let info: { commit?: unknown; taint?: unknown; branch?: unknown } = {};
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as typeof info;
  } catch {
    // Not written by this build (e.g. running from a source checkout): unknown.
  }
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  return {
    checkout: env.DATASTORE_EXPORTER_GIT_COMMIT || text(info.commit),
    taint: env.DATASTORE_EXPORTER_GIT_TAINT || text(info.taint),
    branch: env.DATASTORE_EXPORTER_GIT_BRANCH || text(info.branch),
  };
}

/** The labels of datastore_exporter_build_info and the facts of --version; "unknown" when not known. */
export interface VersionInfo {
  version: string;
  revision: string;
  branch: string;
  nodejsVersion: string;
}

export function versionInfo(build: BuildInfo = readBuildInfo()): VersionInfo {
  return {
    version: EXPORTER_VERSION,
    revision: build.checkout ?? 'unknown',
    branch: build.branch ?? 'unknown',
    nodejsVersion: process.version,
  };
}

/** `--version`, laid out like the Go exporters' (Prometheus version.Print). */
export function versionText(info: VersionInfo = versionInfo()): string {
  return [
    `datastore-exporter, version ${info.version} (branch: ${info.branch}, revision: ${info.revision})`,
    `  node version:     ${info.nodejsVersion}`,
    `  platform:         ${process.platform}/${process.arch}`,
  ].join('\n');
}

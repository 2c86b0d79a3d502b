/**
 * --web.telemetry-path: a literal path, never a route pattern.
 *
 * Express reads a route string as a pattern (`/:x` matches any path, `/*all` everything, `(` or `\`
 * are syntax errors at start-up), so with basic auth on, a telemetry path of `/healthz/`, `/:x` or
 * `/*all` served the metrics on the open /healthz. Here the path is validated at start-up and then
 * compared as it is (http/routes.ts): one exact, case-sensitive string, which can neither shadow
 * nor be shadowed by a built-in path.
 */

/**
 * The exporter's own paths (http/routes.ts), compared case-insensitively and without a trailing
 * slash, because Express routes them that way. `/api` covers the Replicante agent API and any later
 * version of it.
 */
export const BUILT_IN_PATHS: readonly string[] = ['/', '/healthz', '/ready', '/probe', '/discover'];
export const BUILT_IN_PREFIXES: readonly string[] = ['/api'];

/** RFC 3986 path characters without `%` (no escapes: the path is matched as it is sent). */
const PATH_CHARACTERS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]+$/;
const MAX_PATH_LENGTH = 256;

/** What is wrong with a telemetry path, or undefined. One line, quoting the value safely. */
export function telemetryPathProblem(path: string): string | undefined {
  const quoted = JSON.stringify(path.length > 64 ? `${path.slice(0, 64)}...` : path);
  if (!path.startsWith('/')) return 'must start with "/"';
  if (path.length > MAX_PATH_LENGTH) return `is longer than ${MAX_PATH_LENGTH} characters`;
  if (!PATH_CHARACTERS.test(path)) {
    return `${quoted} may hold only letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ / (no spaces, %-escapes, ? or #)`;
  }
  const segments = path.split('/').slice(1);
  if (segments.slice(0, -1).some((s) => s === '') || segments.some((s) => s === '.' || s === '..')) {
    return `${quoted} has an empty, "." or ".." segment (clients would normalise it away)`;
  }
  const folded = path.toLowerCase().replace(/\/+$/, '') || '/';
  const clash =
    BUILT_IN_PATHS.find((p) => p === folded) ??
    BUILT_IN_PREFIXES.find((p) => folded === p || folded.startsWith(`${p}/`));
  if (clash) {
    return `${quoted} is taken by the exporter's own ${clash === '/' ? 'landing page' : clash} (choose another path, e.g. /metrics)`;
  }
  return undefined;
}

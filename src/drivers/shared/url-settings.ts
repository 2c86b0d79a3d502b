/**
 * Checks shared by the drivers' validateTarget hooks (drivers/registration.ts): which URL parameters
 * a driver understands, and whether a file a parameter names can be read. Each returns a one-line
 * problem, or undefined; parameter values are never quoted (they may be secrets).
 */
import { readFailure, readRegularFile } from '../../core/files';

/** The first URL parameter the driver does not understand (a typo must not be silently ignored). */
export function unsupportedParam(url: URL, supported: readonly string[]): string | undefined {
  for (const name of new Set(url.searchParams.keys())) {
    if (!supported.includes(name)) {
      return supported.length === 0
        ? `unknown URL parameter "${name}" (this driver takes none)`
        : `unknown URL parameter "${name}" (supported: ${supported.join(', ')})`;
    }
  }
  return undefined;
}

/** A parameter given more than once: which one the client library would use is not obvious. */
export function repeatedParam(url: URL): string | undefined {
  const seen = new Set<string>();
  for (const name of url.searchParams.keys()) {
    if (seen.has(name)) return `URL parameter "${name}" is given more than once`;
    seen.add(name);
  }
  return undefined;
}

/** Whether the file a parameter names is a readable regular file (read again on each connect). */
export function unreadableFile(param: string, path: string): string | undefined {
  try {
    readRegularFile(path);
    return undefined;
  } catch (err) {
    return `cannot read ${param} file ${JSON.stringify(path)}: ${readFailure(err)}`;
  }
}

/** The URL path as one decoded name (database), or the problem with its %-escapes. */
export function decodedPath(url: URL): { name: string } | { problem: string } {
  try {
    return { name: decodeURIComponent(url.pathname.replace(/^\//, '')) };
  } catch {
    return { problem: 'the URL path has a malformed %-escape (write a literal % as %25)' };
  }
}

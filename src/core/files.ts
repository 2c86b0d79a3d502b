/**
 * Reading the small files the configuration names (target URL, passwords, config files, TLS
 * certificates and keys, CA bundles).
 *
 * Only regular files are read. A FIFO would block the whole process in readFileSync until someone
 * writes to it (silently, at start-up, or in the middle of a collection), and a device such as
 * /dev/zero or /dev/urandom never ends. The file is opened non-blocking (opening a FIFO for reading
 * would otherwise wait for a writer), checked with fstat on that same descriptor (no race with a file
 * swapped in between), and refused unless it is a regular file of a sensible size.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/** Far above any certificate bundle, key, URL or config file; a bigger file is a mistake. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/** Why a file could not be read: a system error code ('ENOENT', 'EACCES'...) or a short phrase. */
export class FileReadError extends Error {
  override name = 'FileReadError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function readRegularFile(path: string, encoding: 'utf8'): string;
export function readRegularFile(path: string): Buffer;
export function readRegularFile(path: string, encoding?: 'utf8'): string | Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new FileReadError((err as NodeJS.ErrnoException).code ?? 'error');
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new FileReadError(
        `not a regular file (${stat.isFIFO() ? 'a FIFO' : stat.isDirectory() ? 'a directory' : 'a device or socket'})`,
      );
    }
    if (stat.size > MAX_CONFIG_FILE_BYTES) {
      throw new FileReadError(`larger than ${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MiB`);
    }
    return encoding ? readFileSync(fd, encoding) : readFileSync(fd);
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw new FileReadError((err as NodeJS.ErrnoException).code ?? 'error');
  } finally {
    closeSync(fd);
  }
}

/** The reason of a failed read, for messages of the form `cannot read <what> "<path>": <reason>`. */
export function readFailure(err: unknown): string {
  if (err instanceof FileReadError) return err.reason;
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

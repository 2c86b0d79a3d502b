/**
 * Debian's headless Chromium, driven from the command line (no Playwright or Puppeteer download):
 * `--dump-dom` prints the DOM the browser built from a page, `--screenshot` writes a PNG. Each call
 * is one short-lived browser with its own throw-away profile, killed if it overruns.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { requireBinary, tempDir } from './processes';

export const CHROMIUM = '/usr/bin/chromium';

/** A phone's viewport (CSS pixels), for screenshots of a page as most on-call engineers first see it. */
export const PHONE = { width: 412, height: 915 };

function run(args: string[], timeoutMs = 60000): Promise<string> {
  requireBinary(CHROMIUM, 'the Debian package chromium');
  const profile = tempDir('chromium');
  return new Promise<string>((resolve, reject) => {
    execFile(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        `--user-data-dir=${profile.path}`,
        ...args,
      ],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        profile.remove();
        if (err)
          reject(new Error(`chromium ${args.join(' ')} failed (${err.message}): ${stderr.slice(-2000)}`));
        else resolve(stdout);
      },
    );
  });
}

/** The DOM after the browser parsed (and laid out) the page, serialised. */
export function dumpDom(url: string): Promise<string> {
  return run(['--dump-dom', url]);
}

/** Writes a PNG of the page at the given viewport; returns the file's bytes. */
export async function screenshot(
  url: string,
  file: string,
  viewport: { width: number; height: number } = PHONE,
): Promise<Buffer> {
  await run([
    `--window-size=${viewport.width},${viewport.height}`,
    '--hide-scrollbars',
    `--screenshot=${file}`,
    url,
  ]);
  return readFileSync(file);
}

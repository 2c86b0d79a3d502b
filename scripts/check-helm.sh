#!/usr/bin/env bash
# Lints and renders the Helm chart with $HELM_BIN (default: helm in PATH; .ci/run installs one with
# scripts/install-helm.sh), and validates the rendered objects when kubeconform is installed too
# (it is not installable here). Without helm it says so and exits 0. Run from .ci/run.
#
#   helm lint --strict          with the default values (+ a target) and every ci/*-values.yaml
#   helm template               for the same value sets (a template error fails)
#   helm template | kubeconform -strict -summary   the same, where kubeconform exists
#
# KUBECONFORM_SCHEMAS adds a schema location for the prometheus-operator CRDs (ServiceMonitor,
# PrometheusRule); the default needs network access to the datreeio CRDs catalog. Set it to a local
# directory (or to "" to skip those kinds with -ignore-missing-schemas) on offline machines.
set -euo pipefail
cd "$(dirname "$0")/.."
CHART=helm/datastore-exporter
HELM_BIN=${HELM_BIN:-helm}
KUBECONFORM_BIN=${KUBECONFORM_BIN:-kubeconform}
CRDS_CATALOG='https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'
KUBECONFORM_SCHEMAS=${KUBECONFORM_SCHEMAS-$CRDS_CATALOG}

if ! command -v "$HELM_BIN" >/dev/null 2>&1; then
  echo "check-helm: helm is not installed: skipped helm lint and helm template | kubeconform" \
    "(test/helm-chart.test.ts checks the schema, value references and file copies without it)"
  exit 0
fi

# Each value set: a name and the helm arguments that select it.
sets=("defaults|--set target=redis://redis:6379")
for f in "$CHART"/ci/*-values.yaml; do
  sets+=("$(basename "$f" -values.yaml)|--values $f")
done

kubeconform_args=(-strict -summary -schema-location default)
if [ -n "$KUBECONFORM_SCHEMAS" ]; then
  kubeconform_args+=(-schema-location "$KUBECONFORM_SCHEMAS")
else
  kubeconform_args+=(-ignore-missing-schemas)
fi
have_kubeconform=true
command -v "$KUBECONFORM_BIN" >/dev/null 2>&1 || have_kubeconform=false

for s in "${sets[@]}"; do
  name=${s%%|*}
  # shellcheck disable=SC2206 # the arguments are ours, word splitting intended
  args=(${s#*|})
  echo "check-helm: helm lint ($name)"
  "$HELM_BIN" lint --strict "$CHART" "${args[@]}"
  # Rendered, so that a template error fails here with or without kubeconform. --api-versions:
  # render as on a cluster with the prometheus-operator CRDs installed.
  rendered=$("$HELM_BIN" template check "$CHART" --namespace monitoring \
    --api-versions monitoring.coreos.com/v1 "${args[@]}")
  echo "check-helm: helm template ($name): $(grep -c '^kind:' <<<"$rendered") objects"
  if $have_kubeconform; then
    echo "check-helm: helm template | kubeconform ($name)"
    "$KUBECONFORM_BIN" "${kubeconform_args[@]}" <<<"$rendered"
  fi
done
$have_kubeconform || echo "check-helm: kubeconform is not installed: rendered, but skipped validating the objects against their schemas"

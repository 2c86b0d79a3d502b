#!/usr/bin/env bash
# Copies the alert rules and the Grafana dashboards into the Helm chart. Helm can only read files
# inside the chart directory (.Files.Get), so the chart keeps byte-identical copies of
#   rules/datastore-exporter.rules.yml -> helm/datastore-exporter/files/datastore-exporter.rules.yml
#   dashboards/*.json                  -> helm/datastore-exporter/files/dashboards/
# test/helm-chart.test.ts fails when the copies drift; run this script after editing the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=helm/datastore-exporter/files
mkdir -p "$FILES/dashboards"
cp rules/datastore-exporter.rules.yml "$FILES/datastore-exporter.rules.yml"
# Dashboards removed from dashboards/ disappear from the chart too.
rm -f "$FILES"/dashboards/*.json
cp dashboards/*.json "$FILES/dashboards/"
echo "synced: $FILES/datastore-exporter.rules.yml and $(ls "$FILES"/dashboards/*.json | wc -l) dashboard(s)"

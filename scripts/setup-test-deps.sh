#!/usr/bin/env bash
# Installs the datastore servers the test suite starts itself (Debian packages), plus promtool and
# Chromium (the status page is tested in a real headless browser), and unzip for scripts/install-helm.sh.
# Idempotent: skips apt-get when everything is already there. Needs root (or sudo).
set -euo pipefail
PACKAGES=(redis-server redis-tools postgresql mariadb-server mariadb-client zookeeper etcd-server etcd-client prometheus nats-server rabbitmq-server chromium unzip)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  # No systemd here: the packages' services are not started; the tests start their own servers.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

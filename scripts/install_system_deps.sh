#!/usr/bin/env bash
# Installs what the build and the tests run (Debian packages) when it is missing.
#   install_system_deps.sh        - the servers the test suite runs. As non-root it only reports what is
#                                   missing: those tests then skip locally (and fail in CI).
#   install_system_deps.sh node   - Node.js and npm, which the build needs (Loki's LogQL grammar checks every
#                                   log query). As non-root a missing one stops the build, naming what to install.
set -euo pipefail

if [ "${1:-}" = node ]; then
  need=()
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  [ ${#need[@]} -eq 0 ] && exit 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: the build needs Node.js >= 18 with npm (Loki's LogQL grammar checks every log query)." >&2
    echo "Install them (Debian/Ubuntu: sudo apt-get install ${need[*]}), then run make again." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
# the scale-out tests: the remote store (victoria-metrics) and the remote rule evaluator (vmalert), one package
{ command -v victoria-metrics >/dev/null && command -v vmalert >/dev/null; } || need+=(victoria-metrics)
{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  # Node.js and npm are not optional: the `node` step after this one stops the build without them.
  servers=()
  for pkg in "${need[@]}"; do
    case "$pkg" in nodejs|npm) ;; *) servers+=("$pkg") ;; esac
  done
  [ ${#servers[@]} -eq 0 ] || echo "missing system packages (tests needing them will skip): ${servers[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services where it can; the tests run their own throwaway servers.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql victoria-metrics; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done

#!/usr/bin/env bash
# Installs the real servers the test suite runs (Debian packages) when they are missing.
# As non-root it only reports what is missing: those tests then skip locally (and fail in CI).
set -euo pipefail

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
  echo "missing system packages (tests needing them will skip): ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services where it can; the tests run their own throwaway servers.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql victoria-metrics; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done

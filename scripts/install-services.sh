#!/usr/bin/env bash
# Installs what the loopback cluster (scripts/cluster.sh) and its test need from Debian: PostgreSQL and nginx.
# Idempotent and quick when both are present. The cluster runs its own PostgreSQL and nginx with files in its
# folder, so a system nginx the package's postinst starts on port 80 is stopped again.
set -euo pipefail

has_initdb() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
has_nginx() { [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null; }

need=()
has_initdb || need+=(postgresql)
has_nginx || need+=(nginx)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-services: postgresql and nginx already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-services: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

echo "install-services: installing ${need[*]}"
# Update the package lists only when they are missing or do not know a package we need.
lists_ok=1
for pkg in "${need[@]}"; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then lists_ok=0; fi
done
if [ "$lists_ok" -eq 0 ]; then
  $SUDO apt-get update -q
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"; then
  # Stale lists (a 404 on a superseded .deb): refresh once and try again.
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The postinst scripts may start the system services (nginx on port 80, a PostgreSQL "main" cluster on 5432);
# nothing here uses them. Stop them through the init system, which knows their pids.
for svc in nginx postgresql; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
    $SUDO service "$svc" stop || true
  fi
done

has_initdb || { echo "install-services: /usr/lib/postgresql/*/bin/initdb is still missing after the install" >&2; exit 1; }
has_nginx || { echo "install-services: nginx is still missing after the install" >&2; exit 1; }
echo "install-services: done"

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

bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" install-services "${need[@]}"

# The postinst scripts may start the system services (nginx on port 80, a PostgreSQL "main" cluster on 5432);
# nothing here uses them. Stop them through the init system, which knows their pids.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
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

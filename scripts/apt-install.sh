#!/usr/bin/env bash
# Installs Debian packages: `bash scripts/apt-install.sh NAME PKG...` (NAME prefixes the messages).
# sudo when not root; the package lists are updated only when they do not know a package, and once more
# when an install fails on stale lists (a 404 on a superseded .deb). Used by install-browser.sh and
# install-services.sh, which decide what is missing.
set -euo pipefail

name=$1
shift
[ $# -gt 0 ] || exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$name: need root (or sudo) to install: $*" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

echo "$name: installing $*"
lists_ok=1
for pkg in "$@"; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then lists_ok=0; fi
done
if [ "$lists_ok" -eq 0 ]; then
  $SUDO apt-get update -q
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "$@"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "$@"
fi

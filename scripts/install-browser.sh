#!/usr/bin/env bash
# Installs what the sidebar's browser tests need from Debian: headless Chromium and a Chinese font.
# Idempotent and quick when both are present; never downloads a browser of its own (no `playwright install`).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
FONT_PKG=fonts-wqy-microhei

need=()
[ -x "$CHROMIUM" ] || need+=(chromium)
# The font counts as present when the package is installed or fontconfig already knows it.
if ! dpkg-query -W -f='${Status}' "$FONT_PKG" 2>/dev/null | grep -q "install ok installed" \
   && ! { command -v fc-list >/dev/null && fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei"; }; then
  need+=("$FONT_PKG")
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "install-browser: chromium and $FONT_PKG already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-browser: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

echo "install-browser: installing ${need[*]}"
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
[ -x "$CHROMIUM" ] || { echo "install-browser: $CHROMIUM is still missing after the install" >&2; exit 1; }
echo "install-browser: done"

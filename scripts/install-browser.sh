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

bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" install-browser "${need[@]}"
[ -x "$CHROMIUM" ] || { echo "install-browser: $CHROMIUM is still missing after the install" >&2; exit 1; }
echo "install-browser: done"

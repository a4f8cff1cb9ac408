#!/usr/bin/env bash
# Installs Debian's chromium for the browser test of the web page (test/ui/page.test.ts).
# playwright-core drives /usr/bin/chromium; no Playwright-downloaded browser is used.
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup-chromium: /usr/bin/chromium is missing and this user cannot install it (no root, no sudo)." >&2
    echo "setup-chromium: install it with: apt-get install -y chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Another process (a CI step, a colleague's setup) may hold the dpkg lock: wait for it.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
echo "setup-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"

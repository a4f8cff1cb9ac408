#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond npm packages: bubblewrap (code
# sandbox), Chromium (browser test of the web page), Slurm + munge (the sbatch path).
# Idempotent; each part has its own script so a developer can run just one.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=()
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -E)
  else
    echo "setup-test-deps: not root and no sudo: skipping system packages (sandbox, browser and Slurm tests will say why they cannot run)" >&2
    exit 0
  fi
fi

for part in setup-sandbox setup-chromium setup-slurm; do
  if [ -f "scripts/$part.sh" ]; then
    echo "setup-test-deps: $part"
    "${as_root[@]}" bash "scripts/$part.sh"
  fi
done

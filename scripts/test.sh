#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it: system parts first
# (scripts/setup-test-deps.sh), then every test file in its own global (--isolate).
# Extra arguments go to `bun test` (e.g. a path filter).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

if [ "${BATON_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup-test-deps.sh
fi

mkdir -p test-results
# 60 s is the ceiling for ordinary tests; slow suites (multi-process, Slurm, browser) set
# their own larger per-test timeouts.
exec bun test --isolate --timeout 60000 --reporter=junit --reporter-outfile=test-results/junit.xml "$@"

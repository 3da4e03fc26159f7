#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Node.js and npm, installing and starting
# what it needs exactly as CI does (.ci/run calls this):
#
#   bash scripts/test.sh
#
# Installs from Debian what the tests use (scripts/host-setup.sh --tests: the Docker engine with
# gVisor's runsc registered, docker-registry, apache2-utils, gcc, Chromium, ...) and starts dockerd
# where needed, npm ci, builds the fixture task images, runs `npm test` (unit, then integration on
# the real engine). As root where something must be installed or started; as another user it says
# in one line what to run.
#
# Env: MECA_CI_SKIP_TESTS=1 stops before `npm test` (to try the set-up alone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "$(id -u)" != 0 ]]; then
  echo "test: the tests install packages, register runsc with the engine and manage host firewall rules: run \`sudo bash scripts/test.sh\`" >&2
  exit 1
fi
echo "kernel $(uname -r), $(nproc) cores; node $(node --version), npm $(npm --version)"
bash scripts/host-setup.sh --tests

printf '\n==== npm ci ====\n'
npm ci --no-audit --no-fund

printf '\n==== Fixture images ====\n'
bash test/fixtures/build-images.sh

if [[ "${MECA_CI_SKIP_TESTS:-}" == 1 ]]; then
  printf '\n==== Tests skipped (MECA_CI_SKIP_TESTS=1) ====\n'
  exit 0
fi

printf '\n==== npm test ====\n'
npm test

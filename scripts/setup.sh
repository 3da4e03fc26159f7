#!/usr/bin/env bash
# Sets a host up to run the executor from source, on a fresh Debian machine with Node.js and npm:
#
#   bash scripts/setup.sh && npm start
#
# Installs Debian's Docker engine (docker.io) when it is missing, and says so; starts dockerd when it
# is stopped; npm ci; builds the example task image meca-test/echo:1 (a static C server FROM
# scratch), which the README's curl runs. As root where something must be installed or started;
# as another user it says in one line what to run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "$(id -u)" != 0 ]] && ! docker version >/dev/null 2>&1; then
  echo "setup: the Docker engine is missing or stopped, or this user cannot reach it: run \`sudo bash scripts/setup.sh\` (it installs Debian's docker.io and starts dockerd)" >&2
  exit 1
fi
bash scripts/host-setup.sh

printf '\n==== npm ci ====\n'
npm ci --no-audit --no-fund

printf '\n==== The example task image ====\n'
bash test/fixtures/build-images.sh meca-test/echo:1
echo
echo "Ready: npm start, then: curl -s localhost:2591/ -d '{\"id\":\"meca-test/echo:1\",\"input\":\"hello\"}'"

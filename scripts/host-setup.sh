#!/usr/bin/env bash
# What a host needs, installed from Debian where missing and started where stopped: the one copy of
# that logic, called by scripts/setup.sh (run the executor), scripts/test.sh (run the tests) and CI.
#
#   bash scripts/host-setup.sh [--tests]
#
# Without --tests: the Docker engine (docker.io, iptables) and gcc with a static libc, for the example
# task image. With --tests, also what the test suite uses: gVisor's runsc (registered in
# /etc/docker/daemon.json, merging, never clobbering: it stands in for a microVM runtime),
# docker-registry and apache2-utils (pull tests), Chromium (the page's test), openssl, procps, ...
# Starts dockerd when no engine answers (no systemd needed: setsid, log in /tmp/meca-dockerd.log).
# Says what it installs and starts. Safe to run twice: every step checks first.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DOCKERD_LOG=/tmp/meca-dockerd.log
DAEMON_JSON=/etc/docker/daemon.json
tests=0
[[ "${1:-}" == "--tests" ]] && tests=1

section() { printf '\n==== %s ====\n' "$*"; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }
engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

section "System packages"
packages=(docker.io iptables gcc libc6-dev ca-certificates cgroupfs-mount)
if ((tests)); then
  packages+=(runsc docker-registry apache2-utils make openssl procps iproute2 xz-utils systemd chromium)
fi
# The engine loads its AppArmor profile with apparmor_parser when the kernel enforces AppArmor.
[[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" == Y ]] && packages+=(apparmor)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "all present: ${packages[*]}"
else
  [[ "$(id -u)" == 0 ]] || fail "missing: ${missing[*]}; run this as root (sudo) to install them from Debian"
  echo "installing from Debian: ${missing[*]}"
  # Packages must not start their services (docker, docker-registry) during the install:
  # this script starts dockerd itself, and the tests start their own registry.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
needed=(dockerd docker gcc)
((tests)) && needed+=(runsc docker-registry htpasswd chromium)
for cmd in "${needed[@]}"; do
  command -v "$cmd" >/dev/null || fail "$cmd is missing after the install"
done

section "Docker engine"
changed=no
if ((tests)); then
  # daemon.json: add runsc (gVisor, standing in for a microVM runtime) and keep every other key.
  changed="$(node - "$DAEMON_JSON" "$(command -v runsc)" <<'NODE'
const fs = require("node:fs");
const [file, runsc] = process.argv.slice(2);
let config = {};
if (fs.existsSync(file)) {
  const text = fs.readFileSync(file, "utf8");
  try { config = text.trim() ? JSON.parse(text) : {}; }
  catch (err) { console.error(`setup: ${file} is not valid JSON: ${err.message}`); process.exit(1); }
}
if (config.runtimes?.runsc) { console.log("no"); process.exit(0); }
config.runtimes = { ...config.runtimes, runsc: { path: runsc, runtimeArgs: ["--network=host"] } };
fs.mkdirSync(require("node:path").dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
console.log("yes");
NODE
)"
  [[ $changed == yes ]] && echo "registered runsc in $DAEMON_JSON" || echo "runsc already in $DAEMON_JSON"
fi

if engine_answers; then
  echo "an engine answers already"
  # Runtimes are reloadable: a running dockerd picks up the new one on SIGHUP.
  if [[ $changed == yes && -s /var/run/docker.pid ]]; then
    kill -HUP "$(cat /var/run/docker.pid)" && echo "asked dockerd to reload $DAEMON_JSON"
  fi
else
  [[ "$(id -u)" == 0 ]] || fail "no Docker engine answers; run this as root (sudo) to start dockerd"
  # cgroups: the VM may boot without them mounted.
  if [[ ! -e /sys/fs/cgroup/cgroup.controllers && ! -d /sys/fs/cgroup/memory ]]; then
    echo "mounting cgroups"
    cgroupfs-mount
  fi
  # Debian 12 defaults to iptables-nft; some VM kernels lack nf_tables: fall back to legacy.
  if ! iptables -t nat -S >/dev/null 2>&1 && iptables-legacy -t nat -S >/dev/null 2>&1; then
    echo "iptables-nft does not work here: switching to iptables-legacy"
    update-alternatives --set iptables /usr/sbin/iptables-legacy
    update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy || true
  fi
  echo "starting dockerd (log: $DOCKERD_LOG)"
  # Its own session, so that it outlives this script; no systemd needed.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  deadline=$((SECONDS + 60))
  until engine_answers; do
    if ((SECONDS > deadline)); then
      tail -n 30 "$DOCKERD_LOG" >&2
      fail "dockerd did not answer within 60 s"
    fi
    sleep 0.5
  done
fi
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'
if ((tests)); then
  runtimes="$(docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}')"
  echo "runtimes: $runtimes"
  [[ " $runtimes " == *" runsc "* ]] || fail "the engine does not list runsc; see $DAEMON_JSON and $DOCKERD_LOG"
fi

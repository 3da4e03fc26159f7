#!/usr/bin/env bash
# Smoke test of one way to run the executor, as an operator would, for CI (.ci/run):
#
#   bash build/smoke.sh binary   dist/meca-executor copied to an empty folder, run with
#                                `env -i` and an empty PATH (no Node.js, no node_modules)
#   bash build/smoke.sh image    meca-executor:latest with --network host and the Docker
#                                socket mounted, ended with `docker stop`
#   bash build/smoke.sh deno     `npx deno task start` from source
#
# Each: wait for GET /health, execute meca-test/echo:1 (npm run fixtures), stop it
# (POST /stop, or docker stop for the image), check the exit code is 0 and that no task
# container of its instance is left. Prints the time from exec to a healthy /health.
# Needs what it runs already built (npm run build / npm run build:image), curl and docker.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode="${1:?usage: build/smoke.sh binary|image|deno}"
instance="smoke-$mode-$$"
work="$(mktemp -d)"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"
container="meca-smoke-$$"
pid=""
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
  [[ $mode == image ]] && docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "smoke $mode: $*" >&2
  [[ -f $work/log ]] && tail -n 30 "$work/log" >&2
  [[ $mode == image ]] && docker logs "$container" 2>&1 | tail -n 30 >&2
  exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
left() { docker ps -aq --filter "label=meca.executor.instance=$instance" | wc -l; }

printf 'instance: %s\nhost: 127.0.0.1\nport: %s\nlog_format: json\n' "$instance" "$port" >"$work/config.yaml"

started=$(now_ms)
case "$mode" in
  binary)
    [[ -x dist/meca-executor ]] || fail "dist/meca-executor is missing: npm run build"
    mkdir "$work/bare" "$work/empty-path"
    cp dist/meca-executor "$work/bare/"
    started=$(now_ms)
    (cd "$work/bare" && exec env -i PATH="$work/empty-path" TMPDIR="$work" ./meca-executor --config "$work/config.yaml") >"$work/log" 2>&1 &
    pid=$!
    ;;
  deno)
    npx deno task start --config "$work/config.yaml" >"$work/log" 2>&1 &
    pid=$!
    ;;
  image)
    docker run -d --name "$container" --label meca.test=1 --network host \
      -v /var/run/docker.sock:/var/run/docker.sock -v "$work/config.yaml:/app/meca_executor.yaml:ro" \
      meca-executor:latest >/dev/null
    ;;
  *) fail "unknown mode (binary, image or deno)" ;;
esac

deadline=$((SECONDS + 60))
until curl -sf "$base/health" | grep -q '"status":"ok"'; do
  ((SECONDS < deadline)) || fail "no healthy /health within 60 s"
  [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || fail "it exited before it was healthy"
  sleep 0.01
done
healthy_ms=$(($(now_ms) - started))

answer="$(curl -s -X POST "$base/" -d '{"id":"meca-test/echo:1","resource":{"cpu":0.1,"mem":49},"input":"smoke"}')"
[[ $answer == '{"success":true,"msg":"smoke"}' ]] || fail "execute answered: $answer"
(($(left) == 1)) || fail "expected one task container of $instance, found $(left)"

if [[ $mode == image ]]; then
  docker stop "$container" >/dev/null
  code="$(docker wait "$container")"
else
  curl -sf -X POST "$base/stop" >/dev/null || fail "POST /stop failed"
  code=0
  wait "$pid" || code=$?
  pid=""
fi
[[ $code == 0 ]] || fail "exited with $code"
(($(left) == 0)) || fail "$(left) task container(s) of $instance left after stopping"

case "$mode" in
  binary) size="$(du -m dist/meca-executor | cut -f1) MiB" ;;
  image) size="$(($(docker image inspect -f '{{.Size}}' meca-executor:latest) / 1048576)) MiB" ;;
  deno) size="from source" ;;
esac
echo "smoke $mode: ok ($size; exec to healthy /health in $healthy_ms ms; executed, stopped with exit 0, no task container left)"

#!/usr/bin/env bash
# One-node swarm on embedded defaults with a sample WASM service, in the foreground: the
# `sleeper` guest (guests/programs/sleeper, built for wasm32-wasip2) runs as the service
# `ticker` with three replicas on the manager's own agent (the WASI backend, wasmtime).
# State lives in ./.swarm-demo (or $SWARM_STATE_DIR); Ctrl-C stops the manager, and running
# this again resumes the same cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

# swarm-guests' build script compiles the example guests into target/guests/.
cargo build --release --bins -p swarm-manager -p swarmctl -p swarm-agent
cargo build --release -p swarm-guests
guest=target/guests/wasm32-wasip2/release/sleeper.wasm
bin=target/release
state=${SWARM_STATE_DIR:-$PWD/.swarm-demo}
addr=${SWARM_LISTEN_ADDR:-127.0.0.1:4242}
export SWARM_SOCKET=$state/control.sock

if [ -f "$state/state.json" ]; then
  "$bin/swarm-manager" run --state-dir "$state" --listen-addr "$addr" &
else
  "$bin/swarm-manager" init --state-dir "$state" --listen-addr "$addr" &
fi
manager=$!
trap 'kill $manager 2>/dev/null; wait $manager 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  "$bin/swarmctl" cluster inspect >/dev/null 2>&1 && break
  sleep 0.1
done

if ! "$bin/swarmctl" service inspect ticker >/dev/null 2>&1; then
  "$bin/swarmctl" artifact push "$guest" sleeper:1
  # Waits until the three replicas run (Docker's progress display).
  "$bin/swarmctl" service create --name ticker --replicas 3 sleeper:1
fi
"$bin/swarmctl" node ls
"$bin/swarmctl" artifact ls
"$bin/swarmctl" service ls
"$bin/swarmctl" service ps ticker
echo
"$bin/swarmctl" service logs --tail 1 ticker
echo
echo "The swarm is running. In another shell: export SWARM_SOCKET=$SWARM_SOCKET; $bin/swarmctl service logs -f ticker"
echo "Ctrl-C stops the manager."
wait $manager

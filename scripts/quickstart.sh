#!/usr/bin/env bash
# One-node swarm on embedded defaults with a sample service, in the foreground.
# State lives in ./.swarm-demo (or $SWARM_STATE_DIR); Ctrl-C stops the manager, and running
# this again resumes the same cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins -p swarm-manager -p swarmctl -p swarm-agent
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

if ! "$bin/swarmctl" service inspect hello >/dev/null 2>&1; then
  "$bin/swarmctl" service create --name hello --replicas 3 hello:1
fi
"$bin/swarmctl" node ls
"$bin/swarmctl" service ls
"$bin/swarmctl" service ps hello
echo
echo "The swarm is running. In another shell: export SWARM_SOCKET=$SWARM_SOCKET; $bin/swarmctl service ls"
echo "Ctrl-C stops the manager."
wait $manager

#!/usr/bin/env bash
# End-to-end benchmark: offered load against a real local testnet.
#
#   scripts/bench.sh [phalanx-bench options]
#                                  build (release) phalanx and phalanx-bench,
#                                  start a fresh testnet (default: 4 HotStuff
#                                  validators, app kv, homes under ./bench-data),
#                                  offer load open loop (default 2000 tx/s for
#                                  20 s after 5 s of warm-up), print a table
#                                  and one JSON line, remove the testnet
#
#   scripts/bench.sh --app noop --sweep 10000,25000,50000
#   scripts/bench.sh --protocol raft --rate 3000
#   scripts/bench.sh --kill-leader-at 10 --json bench.jsonl
#   scripts/bench.sh --protocol raft --closed-loop 64 --rate 40000
#   scripts/bench.sh --attach 127.0.0.1:26601,127.0.0.1:26604,127.0.0.1:26607,127.0.0.1:26610
#   scripts/bench.sh --help        every option
#
# Exit status: 0 if no transaction was lost or committed twice, 1 if one was,
# 2 if the benchmark could not run. Method and definitions: docs/benchmarks.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

# Two builds: built together, cargo would unify features and give the
# validator the simulator's test hooks (phalanx-testnet enables them).
(cd "$ROOT" && cargo build --release --locked -p phalanx-node --bin phalanx)
(cd "$ROOT" && cargo build --release --locked -p phalanx-testnet --bin phalanx-bench)
exec "$TARGET/release/phalanx-bench" "$@"   # runs the phalanx binary next to it

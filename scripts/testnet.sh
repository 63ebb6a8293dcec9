#!/usr/bin/env bash
# A local Phalanx testnet: N validators on loopback, one process each.
#
#   scripts/testnet.sh up [-n N] [--mode hotstuff|raft]
#                                  build (release) if needed, create N validator
#                                  homes (default 4; 3 for raft) under
#                                  ./testnet-data, start them, wait for committed
#                                  blocks, print endpoints
#   scripts/testnet.sh status      height, round and peers of every node
#   scripts/testnet.sh down        stop the nodes this script started (by pid)
#   scripts/testnet.sh reset       down, then delete ./testnet-data
#   scripts/testnet.sh run FILE [--out DIR] [--keep]
#                                  build phalanx and phalanx-testnet (release) and
#                                  run a scenario (testnet/scenarios/*.toml): a fresh
#                                  testnet in a temporary directory, faults, a
#                                  workload, checks; prints a verdict per check and
#                                  writes report.json and timeline.svg (default
#                                  ./scenario-out/<name>-<time>/); exit status 0
#                                  when the verdict is the one the scenario expects
#
# Environment: PHALANX_TESTNET_DIR (default ./testnet-data),
#              PHALANX_BASE_PORT (default 26600; node i uses three ports from it,
#              skipping ports already in use).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${PHALANX_TESTNET_DIR:-$ROOT/testnet-data}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/phalanx
BASE_PORT=${PHALANX_BASE_PORT:-26600}

die() { echo "testnet: $*" >&2; exit 1; }

rpc_of() { # rpc address of node $1, from its node.toml
    awk '/^\[rpc\]/{s=1;next} /^\[/{s=0} s && /^listen_addr/{gsub(/"/,"",$3); print $3; exit}' "$DATA/node$1/config/node.toml"
}

count_nodes() { ls -d "$DATA"/node* 2>/dev/null | wc -l; }

mode_of() { # the consensus protocol in the testnet's genesis
    sed -n 's/.*"protocol": *"\([a-z]*\)".*/\1/p' "$DATA/node0/config/genesis.json" | head -n 1
}

node_running() { # is node $1 running (started by this script)?
    local f="$DATA/pids/node$1.pid"
    [ -f "$f" ] || return 1
    local pid; pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && grep -q phalanx "/proc/$pid/cmdline" 2>/dev/null
}

running_pids() {
    for f in "$DATA"/pids/*.pid; do
        [ -e "$f" ] || continue
        local pid; pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null && grep -q phalanx "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; fi
    done
}

field() { # value of the first "$1": <value> in pretty JSON on stdin
    sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n 1
}

height_of() { # committed height of node $1, or empty
    "$BIN" status --rpc "$(rpc_of "$1")" 2>/dev/null | field latest_block_height || true
}

build() {
    echo "testnet: building phalanx (release)..."
    (cd "$ROOT" && cargo build --release --locked -p phalanx-node --bin phalanx) ||
        die "build failed"
}

up() {
    local n=4 explicit_n=0 mode="" 
    while [ $# -gt 0 ]; do
        case "$1" in
            -n) [ $# -ge 2 ] || die "-n needs a number"; n=$2; explicit_n=1; shift 2 ;;
            -n*) n=${1#-n}; explicit_n=1; shift ;;
            --mode|--protocol) [ $# -ge 2 ] || die "$1 needs hotstuff or raft"; mode=$2; shift 2 ;;
            --mode=*|--protocol=*) mode=${1#*=}; shift ;;
            *) die "unknown option for up: $1 (usage: up [-n N] [--mode hotstuff|raft])" ;;
        esac
    done
    case "$mode" in
        ""|hotstuff|raft) ;;
        *) die "--mode must be hotstuff or raft, got '$mode'" ;;
    esac
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "-n must be a positive number, got '$n'"
    if [ "$mode" = raft ] && [ "$explicit_n" -eq 0 ]; then n=3; fi
    if [ -d "$DATA/node0" ] && [ "$(running_pids | wc -l)" -eq "$(count_nodes)" ]; then
        echo "testnet: already running ($(count_nodes) nodes under $DATA); use 'status', or 'down' first"
        exit 0
    fi
    build
    if [ -d "$DATA/node0" ]; then
        local have; have=$(count_nodes)
        if [ "$have" -ne "$n" ] && [ "$explicit_n" -eq 1 ]; then
            die "$DATA holds a testnet of $have nodes, not $n; run 'reset' first"
        fi
        local have_mode; have_mode=$(mode_of)
        if [ -n "$mode" ] && [ "$mode" != "$have_mode" ]; then
            die "$DATA holds a $have_mode testnet, not $mode; run 'reset' first"
        fi
        n=$have
        echo "testnet: starting the stopped nodes of the existing $n-node $have_mode testnet in $DATA"
    else
        "$BIN" testnet -n "$n" --output "$DATA" --base-port "$BASE_PORT" --protocol "${mode:-hotstuff}" >/dev/null
        echo "testnet: created $n ${mode:-hotstuff} validator homes in $DATA"
    fi
    mode=$(mode_of)
    mkdir -p "$DATA/logs" "$DATA/pids"
    for ((i = 0; i < n; i++)); do
        if node_running "$i"; then continue; fi
        nohup "$BIN" start --home "$DATA/node$i" >>"$DATA/logs/node$i.log" 2>&1 &
        echo $! >"$DATA/pids/node$i.pid"
        echo "testnet: started node$i (pid $!)"
    done
    echo -n "testnet: waiting for blocks"
    local deadline=$((SECONDS + 90))
    local start="" want=2
    # An idle Raft chain commits only its leader's no-op entry: wait for
    # that, then commit a sample transaction below.
    [ "$mode" = raft ] && want=0
    while :; do
        [ -n "$start" ] || start=$(height_of 0)
        [ "$mode" = raft ] && [ "${start:-0}" -eq 0 ] && start=""
        local ok=1
        for ((i = 0; i < n; i++)); do
            local h; h=$(height_of "$i")
            if [ -z "$start" ] || [ -z "$h" ] || [ "$h" -lt $((start + want)) ]; then ok=0; fi
        done
        [ $ok -eq 1 ] && break
        if [ $SECONDS -gt $deadline ]; then
            echo; die "no blocks committed within 90 s; see $DATA/logs/"
        fi
        if [ -z "$(running_pids)" ]; then
            echo; die "the nodes exited; see $DATA/logs/"
        fi
        echo -n "."
        sleep 0.5
    done
    echo
    local r0; r0=$(rpc_of 0)
    if [ "$mode" = raft ]; then
        echo "testnet: committing a sample transaction through node0"
        "$BIN" tx put testnet-up "$(date +%s)" --key "$DATA/clients/client0.json" --rpc "$r0" ||
            die "the sample transaction did not commit; see $DATA/logs/"
    fi
    status
    cat <<EOF

RPC endpoints: $(for ((i = 0; i < n; i++)); do echo -n "http://$(rpc_of "$i") "; done)
Logs: $DATA/logs/   Client keys: $DATA/clients/

Try:
  $BIN tx put hello world --key $DATA/clients/client0.json --rpc $r0
  $BIN query key hello --rpc $r0
  curl -s http://$r0 -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"status"}'
  scripts/testnet.sh status
  scripts/testnet.sh down
EOF
}

status() {
    [ -d "$DATA/node0" ] || die "no testnet in $DATA; run 'up' first"
    local n; n=$(count_nodes)
    local col=round
    [ "$(mode_of)" = raft ] && col=term
    printf "%-6s %-8s %-22s %-8s %-8s %-6s %s\n" node pid rpc height "$col" peers role
    for ((i = 0; i < n; i++)); do
        local pid="-"
        [ -f "$DATA/pids/node$i.pid" ] && pid=$(cat "$DATA/pids/node$i.pid")
        local st h="down" r="-" role="-" peers="-"
        st=$("$BIN" status --rpc "$(rpc_of "$i")" 2>/dev/null) || st=""
        if [ -n "$st" ]; then
            h=$(field latest_block_height <<<"$st")
            r=$(field "$col" <<<"$st")
            role=$(field role <<<"$st")
            peers=$("$BIN" rpc net_info --rpc "$(rpc_of "$i")" 2>/dev/null | field n_peers)
        fi
        printf "%-6s %-8s %-22s %-8s %-8s %-6s %s\n" "node$i" "$pid" "$(rpc_of "$i")" "$h" "$r" "$peers" "$role"
    done
}

down() {
    local pids; pids=$(running_pids)
    if [ -z "$pids" ]; then echo "testnet: not running"; rm -rf "$DATA/pids"; return 0; fi
    kill -TERM $pids 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while [ -n "$(running_pids)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    local left; left=$(running_pids)
    [ -n "$left" ] && kill -KILL $left 2>/dev/null || true
    rm -rf "$DATA/pids"
    echo "testnet: stopped $(echo "$pids" | wc -w) nodes"
}

run_scenario() {
    [ $# -ge 1 ] || die "run needs a scenario file, e.g. run testnet/scenarios/partition-heal.toml"
    local file=$1; shift
    [ -f "$file" ] || die "no scenario file $file"
    echo "testnet: building phalanx and phalanx-testnet (release)..."
    # Two builds: built together, phalanx would share the testnet crate's
    # consensus features (its simulator's test hooks).
    (cd "$ROOT" && cargo build --release --locked -p phalanx-node --bin phalanx) || die "build failed"
    (cd "$ROOT" && cargo build --release --locked -p phalanx-testnet --bin phalanx-testnet) || die "build failed"
    exec "$TARGET/release/phalanx-testnet" run "$file" --bin "$BIN" "$@"
}

reset() {
    down
    rm -rf "$DATA"
    echo "testnet: removed $DATA"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up) up "$@" ;;
    status) status ;;
    down) down ;;
    reset) reset ;;
    run) run_scenario "$@" ;;
    *) echo "usage: scripts/testnet.sh up [-n N] [--mode hotstuff|raft] | status | down | reset | run FILE [--out DIR] [--keep]" >&2; exit 2 ;;
esac

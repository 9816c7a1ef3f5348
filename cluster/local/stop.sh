#!/usr/bin/env bash
# Stop the loopback cluster that cluster/local/start.sh started, by PID: each node's `ray start --block`
# process leads its own process group, so only that group is signalled. Never `ray stop`, never a name pattern.
#
# usage: cluster/local/stop.sh [--dir DIR] [--node NAME] [--signal TERM|KILL] [--timeout S]
#   --dir DIR        the directory given to start.sh (default .ray_tmp/lc under the repo)
#   --node NAME      stop only this node (e.g. worker-1); default: all, workers first, head last
#   --signal KILL    SIGKILL the whole group at once: simulates a crashed machine (Ray sees the node die;
#                    trials on it fail and are retried elsewhere). Default TERM: the node shuts down cleanly,
#                    and whatever of its group is still alive after --timeout seconds (default 20) is killed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="$ROOT/.ray_tmp/lc"
NODE=""
SIG=TERM
TIMEOUT=20

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR=$2; shift 2 ;;
        --node) NODE=$2; shift 2 ;;
        --signal) SIG=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "stop.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$SIG" in TERM|KILL) ;; *) echo "stop.sh: --signal must be TERM or KILL" >&2; exit 2 ;; esac

NODES="$DIR/nodes"
if [[ ! -s "$NODES" ]]; then
    echo "stop.sh: no running cluster recorded in $NODES"
    exit 0
fi

group_alive() { kill -0 -- "-$1" 2> /dev/null; }

# True when PID still is the `ray start` this directory launched (guards against a recycled PID).
is_ours() {
    local pid=$1 cmd
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
    [[ $cmd == *"ray start "* ]] || return 1
    [[ $(ps -o pgid= -p "$pid" | tr -d ' ') == "$pid" ]]
}

stop_one() {  # NAME PID
    local name=$1 pid=$2 i
    if ! group_alive "$pid"; then
        echo "$name (pgid $pid): already gone"
        return 0
    fi
    if [[ $SIG == KILL ]]; then
        kill -KILL -- "-$pid" 2> /dev/null || true
        echo "$name (pgid $pid): killed"
        return 0
    fi
    if is_ours "$pid"; then
        kill -TERM "$pid" 2> /dev/null || true  # the leader drains the node and stops its own children
    else
        kill -TERM -- "-$pid" 2> /dev/null || true  # leader gone: ask the rest of its group directly
    fi
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        group_alive "$pid" || { echo "$name (pgid $pid): stopped"; return 0; }
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2> /dev/null || true
    echo "$name (pgid $pid): killed after ${TIMEOUT}s"
}

if [[ -n $NODE ]]; then
    line=$(awk -v n="$NODE" '$1 == n' "$NODES")
    if [[ -z $line ]]; then
        echo "stop.sh: no node '$NODE' in $NODES (have: $(awk '{print $1}' "$NODES" | tr '\n' ' '))" >&2
        exit 2
    fi
    stop_one $line
    exit 0
fi

# Workers first (so the head does not log every worker as dead), head last.
while read -r name pid; do
    [[ $name == head ]] || stop_one "$name" "$pid"
done < "$NODES"
while read -r name pid; do
    [[ $name == head ]] && stop_one "$name" "$pid"
done < "$NODES"
rm -f "$NODES" "$DIR/env" "$DIR/auth_token"
echo "logs kept in $DIR/logs"

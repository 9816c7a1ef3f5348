#!/usr/bin/env bash
# Start a multi-node Ray cluster on ONE machine over loopback: a head and N workers, each a separate Ray node
# (its own raylet, object store and resources) on 127.0.0.2. Stop it with cluster/local/stop.sh, which kills
# exactly the processes this script started (by process group), never `ray stop` (that would also stop every
# other Ray cluster on a shared machine).
#
# Why 127.0.0.2: Ray rewrites 127.0.0.1/localhost to the machine's primary IP, and then clients dial an address
# the GCS is not listening on and hang. 127.0.0.2 is loopback too, and Ray leaves it alone.
#
# usage: cluster/local/start.sh [--workers N] [--cpus C] [--head-cpus C] [--gpus G] [--object-store-mb M]
#                               [--auth token|disabled] [--dashboard] [--dir DIR]
#   --workers N          worker nodes besides the head (default 2)
#   --cpus C             logical CPUs per worker node (default 1)
#   --head-cpus C        logical CPUs on the head (default 1; 0 keeps trials off the head)
#   --gpus G             logical GPUs per worker node (default 0). On a CPU-only machine this only exercises
#                        Ray's GPU scheduling (CUDA_VISIBLE_DEVICES, fractional shares), not CUDA itself.
#   --object-store-mb M  object store per node (default 200; Ray's default is 30% of RAM per node)
#   --auth MODE          token (default): a fresh token in DIR/auth_token, required by every node and driver
#                        (raylets listen on all interfaces, not only on 127.0.0.2); disabled: no auth
#   --dashboard          run the full dashboard on 127.0.0.2 (needs the cluster extra: `pip install -c
#                        constraints.txt -e ".[cluster]"`, checked before any node starts): enables
#                        `ray job submit --address $RAY_API_SERVER_ADDRESS ...`; default: Ray's minimal one
#   --dir DIR            state, logs and Ray temp files (default .ray_tmp/lc under the repo; keep it short:
#                        Ray's unix sockets live below it and socket paths are limited to ~107 bytes)
#
# Each node has its own Ray temp dir (DIR/tmp for the head, DIR/worker-N for the workers), as separate
# machines would. Nodes sharing one would share the unpacked `--working-dir` of a Ray job: every node's
# runtime-env agent unpacks it with overwrite, deleting the directory the job's driver runs in.
# The nodes run with the venv's bin directory first on PATH, so a job's entrypoint finds `mrmp`.
#
# Writes DIR/nodes ("NAME PID" per node; PID is the `ray start --block` process and its process group) and
# DIR/env (PATH, RAY_ADDRESS, RAY_TMPDIR, RAY_AUTH_MODE[, RAY_AUTH_TOKEN_PATH, RAY_API_SERVER_ADDRESS]). Then:
#   source DIR/env && mrmp sweep sweeps/quickstart.yaml --address auto
#   cluster/local/stop.sh --node worker-1 --signal KILL     # simulate losing a node mid-sweep
#   cluster/local/stop.sh                                    # stop the rest
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKERS=2
CPUS=1
HEAD_CPUS=1
GPUS=0
OBJECT_STORE_MB=200
AUTH=token
DASHBOARD=false
DIR="$ROOT/.ray_tmp/lc"
IP=127.0.0.2

while [[ $# -gt 0 ]]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --head-cpus) HEAD_CPUS=$2; shift 2 ;;
        --gpus) GPUS=$2; shift 2 ;;
        --object-store-mb) OBJECT_STORE_MB=$2; shift 2 ;;
        --auth) AUTH=$2; shift 2 ;;
        --dashboard) DASHBOARD=true; shift ;;
        --dir) DIR=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "start.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$AUTH" in token|disabled) ;; *) echo "start.sh: --auth must be token or disabled" >&2; exit 2 ;; esac

# The venv's ray/python when there is one (the CLI must match the Ray the sweep imports), else PATH's.
if [[ -x "$ROOT/.venv/bin/ray" ]]; then
    RAY="$ROOT/.venv/bin/ray"
else
    RAY=$(command -v ray) || { echo "start.sh: ray not found (pip install -c constraints.txt -e \".[cluster]\" first)" >&2; exit 1; }
fi
BIN=$(cd "$(dirname "$RAY")" && pwd)
PY="$BIN/python"
[[ -x $PY ]] || PY=$(command -v python3)
# Every node (and so every job entrypoint and worker it starts) finds this venv's `mrmp`, `python` and `ray`.
export PATH="$BIN:$PATH"
if [[ $DASHBOARD == true ]] && ! "$PY" -c 'import ray.dashboard.optional_deps' 2> /dev/null; then
    # Ray's own test for the full dashboard. Failing here starts nothing (`ray start --include-dashboard=true`
    # without it fails after the GCS has started, and leaves it running).
    echo "start.sh: --dashboard needs Ray's dashboard packages: pip install -c constraints.txt -e \".[cluster]\"" >&2
    exit 1
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [[ -s "$DIR/nodes" ]]; then
    echo "start.sh: $DIR/nodes exists: a cluster from this directory may still run; stop it first:" >&2
    echo "  $ROOT/cluster/local/stop.sh --dir $DIR" >&2
    exit 1
fi
mkdir -p "$DIR/tmp" "$DIR/logs"

# Ray's own environment for every node (and, via DIR/env, for drivers).
export RAY_TMPDIR="$DIR/tmp"          # session dirs and ray_current_cluster live here, not in /tmp/ray
export RAY_USAGE_STATS_ENABLED=0
# Ray >= 2.49 leaves CUDA_VISIBLE_DEVICES unset for a task that asked for no GPU, so a `gpu: 0` trial on a GPU
# node would see (and, with train.device=auto, use) every GPU. This restores the empty value for such tasks.
export RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1
export RAY_AUTH_MODE=$AUTH
if [[ $AUTH == token ]]; then
    export RAY_AUTH_TOKEN_PATH="$DIR/auth_token"
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH")
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
# Even with the dashboard off, the head runs a minimal one on 8265 without retries: give it a free port so two
# clusters on one machine do not collide. Likewise Ray Client's server (10001 by default).
DASHBOARD_PORT=$(free_port)
CLIENT_PORT=$(free_port)
ADDRESS="$IP:$PORT"
OSM=$((OBJECT_STORE_MB * 1024 * 1024))
: > "$DIR/nodes"

# Each node runs in its own session (setsid), so its process group id is the PID of its `ray start --block`
# process: stop.sh signals exactly that group. The background job of a non-interactive shell is not a group
# leader, so setsid does not fork and $! is the ray process itself.
# --dashboard-agent-listen-port=0: every node's dashboard agent takes a free port. Ray's fixed default (52365)
# would go to whichever agent on this machine binds it first: the other nodes' agents, and the head of any other
# loopback cluster, would run without one, and a head without one takes no job ("No available agent to submit
# job").
start_node() {  # NAME ARGS...
    local name=$1; shift
    setsid "$RAY" start --node-ip-address="$IP" --object-store-memory="$OSM" --dashboard-agent-listen-port=0 \
        --block "$@" > "$DIR/logs/$name.log" 2>&1 < /dev/null &
    echo "$name $!" >> "$DIR/nodes"
}

wait_started() {  # NAME PID -> 0 when up; 1 when it exited or did not come up within 120 s
    local name=$1 pid=$2 i
    for ((i = 0; i < 1200; i++)); do
        if grep -q "Ray runtime started" "$DIR/logs/$name.log" 2> /dev/null; then return 0; fi
        kill -0 "$pid" 2> /dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Start a node and wait for it; on a loaded machine a raylet can miss Ray's fixed 30 s registration window
# ("The current node timed out during startup"), so a node that fails is retried once (its group killed first).
start_and_wait() {  # NAME ARGS...
    local name=$1 try pid
    for try in 1 2; do
        start_node "$@"
        pid=$(awk -v n="$name" '$1 == n {p = $2} END {print p}' "$DIR/nodes")
        wait_started "$name" "$pid" && return 0
        echo "start.sh: node $name (pid $pid) failed to start (try $try); log tail:" >&2
        tail -n 5 "$DIR/logs/$name.log" >&2
        kill -KILL -- "-$pid" 2> /dev/null || true
        awk -v n="$name" '$1 != n' "$DIR/nodes" > "$DIR/nodes.tmp" && mv "$DIR/nodes.tmp" "$DIR/nodes"
        mv "$DIR/logs/$name.log" "$DIR/logs/$name.failed-$try.log"
    done
    echo "start.sh: giving up; stopping what started" >&2
    "$ROOT/cluster/local/stop.sh" --dir "$DIR" >&2 || true
    exit 1
}

start_and_wait head --head --port="$PORT" --num-cpus="$HEAD_CPUS" --num-gpus=0 \
    --include-dashboard="$DASHBOARD" --dashboard-host="$IP" --dashboard-port="$DASHBOARD_PORT" \
    --ray-client-server-port="$CLIENT_PORT"
# One worker at a time: starting them together on a small machine is what makes raylets miss the window.
# Each worker gets its own temp dir (the head's is RAY_TMPDIR): see the header.
for ((w = 1; w <= WORKERS; w++)); do
    mkdir -p "$DIR/worker-$w"
    start_and_wait "worker-$w" --address="$ADDRESS" --num-cpus="$CPUS" --num-gpus="$GPUS" \
        --temp-dir="$DIR/worker-$w"
done

{
    echo "export PATH=$BIN:\$PATH"
    echo "export RAY_ADDRESS=$ADDRESS"
    echo "export RAY_TMPDIR=$RAY_TMPDIR"
    echo "export RAY_AUTH_MODE=$RAY_AUTH_MODE"
    [[ $AUTH == token ]] && echo "export RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
    [[ $DASHBOARD == true ]] && echo "export RAY_API_SERVER_ADDRESS=http://$IP:$DASHBOARD_PORT"
    echo "export RAY_USAGE_STATS_ENABLED=0"
    echo "export RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1"
} > "$DIR/env"

echo "Ray cluster at $ADDRESS: head ($HEAD_CPUS CPU) + $WORKERS worker(s) ($CPUS CPU, $GPUS GPU each), auth=$AUTH"
cat "$DIR/nodes"
echo "use it:  source $DIR/env && mrmp sweep SWEEP.yaml --address auto"
echo "stop it: $ROOT/cluster/local/stop.sh --dir $DIR"

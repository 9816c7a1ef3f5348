#!/usr/bin/env bash
# The sweep's MLflow tracking server, run on the Ray head node: one writer for the SQL backend (so trials on any
# node log over HTTP and nobody shares a sqlite file over NFS), artifacts proxied to a root every node reaches.
#
# usage: cluster/mlflow/server.sh start [--host ADDR] [--port P] [--backend URI] [--artifacts DEST]
#                                       [--workers N] [--allowed-hosts LIST] [--dir DIR] [--dry-run]
#        cluster/mlflow/server.sh stop|status [--dir DIR]
#   --host ADDR       interface to bind (default: the address the other nodes reach this one at, as
#                     cluster/node-ip.sh finds it: never loopback). Never 0.0.0.0 on a machine with a public
#                     interface. (mrmp's own `mrmp ui` binds 127.0.0.1.)
#   --port P          default 5000
#   --backend URI     default sqlite:///DIR/mlflow.db on the head's LOCAL disk (sqlite over NFS is not safe);
#                     or postgresql://USER:PASS@DBHOST:5432/mlflow (needs `pip install psycopg2-binary`)
#   --artifacts DEST  where artifacts land: s3://BUCKET/PREFIX (server needs boto3 + credentials), gs://..., or a
#                     path (default DIR/mlartifacts). The server proxies uploads (--serve-artifacts), so trials
#                     on other nodes need only HTTP access to the server, not to DEST.
#   --workers N       uvicorn workers (default 1: right for sqlite; 4 for PostgreSQL)
#   --allowed-hosts   extra Host headers to accept (fnmatch patterns, comma-separated), e.g. the Kubernetes
#                     service name 'mrmp-head-svc*'. MLflow answers 403 ("Invalid Host header") to any Host it
#                     does not know; its default list (localhost, 127.0.0.1, 10.*, 172.16-31.*, 192.168.*)
#                     misses hostnames and 127.0.0.2, and any --allowed-hosts REPLACES it. So this script always
#                     passes the bound address, this node's hostnames and localhost, plus what you add here.
#   --dir DIR         state (pid file, log, default sqlite DB and artifacts); default ~/mrmp-mlflow
#   --dry-run         print the `mlflow server` command line (one argument per line) and start nothing
#
# Then point the sweep at it: `tracking.uri: http://HEAD_IP:5000` in the sweep file, or MLFLOW_TRACKING_URI.
set -euo pipefail

CMD=${1:-}
[[ $# -gt 0 ]] && shift
HOST=""
PORT=5000
BACKEND=""
ARTIFACTS=""
WORKERS=1
ALLOWED=""
DIR="${HOME}/mrmp-mlflow"
DRY_RUN=false

while [[ $# -gt 0 ]]; do
    case "$1" in
        --host) HOST=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --backend) BACKEND=$2; shift 2 ;;
        --artifacts) ARTIFACTS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --allowed-hosts) ALLOWED=$2; shift 2 ;;
        --dir) DIR=$2; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        *) echo "server.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -x "$ROOT/.venv/bin/mlflow" ]]; then MLFLOW="$ROOT/.venv/bin/mlflow"; else MLFLOW=$(command -v mlflow || true); fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDFILE="$DIR/server.pid"

running() { [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2> /dev/null; }

case "$CMD" in
    start)
        [[ -n $MLFLOW ]] || { echo "server.sh: mlflow not found (pip install -c constraints.txt -e \".[cluster]\" installs it)" >&2; exit 1; }
        if running && [[ $DRY_RUN == false ]]; then echo "server.sh: already running (pid $(cat "$PIDFILE"))"; exit 0; fi
        [[ -n $HOST ]] || HOST=$("$ROOT/cluster/node-ip.sh") || { echo "server.sh: pass --host" >&2; exit 1; }
        [[ -n $BACKEND ]] || BACKEND="sqlite:///$DIR/mlflow.db"
        [[ -n $ARTIFACTS ]] || ARTIFACTS="$DIR/mlartifacts"
        hosts="$HOST,$HOST:$PORT,localhost,localhost:$PORT,127.0.0.1,127.0.0.1:$PORT"
        for h in $(hostname 2> /dev/null) $(hostname -f 2> /dev/null); do hosts+=",$h,$h:$PORT"; done
        [[ -n $ALLOWED ]] && hosts+=",$ALLOWED"
        args=(server --backend-store-uri "$BACKEND" --serve-artifacts --artifacts-destination "$ARTIFACTS"
              --host "$HOST" --port "$PORT" --workers "$WORKERS" --allowed-hosts "$hosts")
        if [[ $DRY_RUN == true ]]; then printf '%s\n' "$MLFLOW" "${args[@]}"; exit 0; fi
        # No background job runner (it forks 7 huey consumers); setsid: the server is its own process group.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$MLFLOW" "${args[@]}" > "$DIR/server.log" 2>&1 < /dev/null &
        echo $! > "$PIDFILE"
        URL="http://$HOST:$PORT"
        for ((i = 0; i < 1200; i++)); do  # 120 s
            if curl -fsS -o /dev/null "$URL/health" 2> /dev/null; then
                # /health skips the Host check: make one real API call the way a trial will.
                api="$URL/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
                if ! out=$(curl -sS "$api" 2>&1) || [[ $out != *experiment* ]]; then
                    echo "server.sh: the server is up but refuses API calls to $URL: $out" >&2
                    exit 1
                fi
                echo "$URL" > "$DIR/url"
                echo "MLflow tracking server at $URL (pid $(cat "$PIDFILE"), backend $BACKEND, artifacts $ARTIFACTS)"
                exit 0
            fi
            running || { echo "server.sh: server exited; log tail:" >&2; tail -n 20 "$DIR/server.log" >&2; exit 1; }
            sleep 0.1
        done
        echo "server.sh: no answer on $URL/health after 120 s (log: $DIR/server.log)" >&2
        exit 1
        ;;
    stop)
        if ! running; then echo "server.sh: not running"; rm -f "$PIDFILE"; exit 0; fi
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid"
        for ((i = 0; i < 200; i++)); do
            kill -0 -- "-$pid" 2> /dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2> /dev/null || true
        rm -f "$PIDFILE" "$DIR/url"
        echo "stopped (pid $pid)"
        ;;
    status)
        if running; then echo "running (pid $(cat "$PIDFILE")) at $(cat "$DIR/url" 2> /dev/null)"; else echo "not running"; exit 1; fi
        ;;
    *) usage; exit 2 ;;
esac

#!/usr/bin/env bash
# Print this node's IPv4 address that the other nodes of the cluster can reach: what the Ray head binds
# (`ray start --head --node-ip-address`), what the workers dial, and what the MLflow server listens on.
#
# usage: cluster/node-ip.sh
#
# Never a loopback (127.0.0.0/8) or link-local (169.254.0.0/16) address. `hostname --ip-address` alone is not
# enough: it resolves the hostname, which many Debian/Ubuntu hosts map to 127.0.1.1 in /etc/hosts (containers
# often to 127.0.0.1), and a head bound there is unreachable from every other node. So, first that answers:
#   1. the hostname's IPv4 addresses, as the other nodes would resolve it (`getent ahostsv4`: /etc/hosts, DNS);
#   2. the address of the interface that holds the default route (`ip`);
#   3. the node's interface addresses (`hostname -I`).
# Exits 1 (and prints nothing) when none is found: then pass the address yourself (HEAD_IP=..., --host ...).
set -euo pipefail

routable() {  # keep the IPv4 addresses of stdin (one per line) that other hosts can reach, in order
    awk '/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ && !/^127\./ && !/^169\.254\./ && !seen[$0]++'
}

candidates() {
    getent ahostsv4 "$(hostname)" 2> /dev/null | awk '{print $1}' | routable || true
    if command -v ip > /dev/null; then
        dev=$(ip -4 -o route show default 2> /dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
        if [[ -n $dev ]]; then
            ip -4 -o addr show dev "$dev" scope global 2> /dev/null | awk '{sub(/\/.*/, "", $4); print $4}' | routable
        fi
    fi
    hostname -I 2> /dev/null | tr ' ' '\n' | routable || true
}

address=$(candidates | awk "NR == 1")
[[ -n $address ]] || { echo "node-ip.sh: no routable IPv4 address found for $(hostname)" >&2; exit 1; }
echo "$address"

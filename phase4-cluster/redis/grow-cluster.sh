#!/bin/sh
# Grow the cluster by one primary, under load: add NEW_PRIMARY as an empty primary, NEW_REPLICA
# as its replica, then move an even share of the slots onto it (redis-cli --cluster rebalance,
# which migrates them key by key while the cluster keeps serving: a client that asks for a
# moving key is redirected with ASK, and redis-py follows).
# Usage: grow-cluster.sh EXISTING_NODE NEW_PRIMARY NEW_REPLICA (each HOST:PORT)
set -eu
[ "$#" -eq 3 ] || { echo "usage: grow-cluster.sh EXISTING_NODE NEW_PRIMARY NEW_REPLICA" >&2; exit 2; }
existing=$1 primary=$2 replica=$3
id_of() { redis-cli -h "${1%:*}" -p "${1##*:}" cluster myid; }
# Until every node of the cluster knows node $1: a node joins by gossip, and redis-cli refuses
# the next step while the nodes disagree about the configuration.
known_to_all() {
  id=$(id_of "$1")
  tries=0
  while :; do
    missing=0
    for node in $(redis-cli -h "${existing%:*}" -p "${existing##*:}" cluster nodes | awk '{ sub(/@.*/, "", $2); print $2 }'); do
      redis-cli -h "${node%:*}" -p "${node##*:}" cluster nodes | grep -q "^$id " || missing=1
    done
    [ "$missing" -eq 0 ] && return 0
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "grow-cluster.sh: $1 is not known to every node after 30 s" >&2; exit 1; }
    sleep 0.1
  done
}
redis-cli --cluster add-node "$primary" "$existing"
known_to_all "$primary"
redis-cli --cluster add-node "$replica" "$existing" --cluster-slave --cluster-master-id "$(id_of "$primary")"
known_to_all "$replica"
redis-cli --cluster rebalance "$existing" --cluster-use-empty-masters
echo  # redis-cli ends on a colour code without a newline
redis-cli --cluster check "$existing" | tail -3
echo "cluster grown: $primary serves its share of the slots, $replica replicates it"

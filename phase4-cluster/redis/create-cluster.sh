#!/bin/sh
# Form the Redis Cluster once its nodes answer: PRIMARIES primaries (the 16,384 slots split
# evenly between them), each with one replica, from the first 2 x PRIMARIES nodes given. Nodes
# past those are spares, left out for grow-cluster.sh to add under load. A cluster that is
# formed already is left as it is, so this runs again harmlessly on every start.
# Usage: [PRIMARIES=3] create-cluster.sh HOST:PORT HOST:PORT ... (addresses, not names)
set -eu
primaries=${PRIMARIES:-3}
case $primaries in ''|*[!0-9]*) echo "create-cluster.sh: PRIMARIES=$primaries is not a number" >&2; exit 2;; esac
[ "$primaries" -ge 3 ] || { echo "create-cluster.sh: PRIMARIES=$primaries: a cluster needs at least 3" >&2; exit 2; }
[ "$#" -ge $((2 * primaries)) ] || { echo "create-cluster.sh: $primaries primaries and their replicas need $((2 * primaries)) nodes, got $#" >&2; exit 2; }
# Every node must answer, spares included; only the first 2 x PRIMARIES form the cluster.
all="$*"
set -- $(echo "$all" | tr ' ' '\n' | head -n $((2 * primaries)))
first=$1
host=${first%:*}
port=${first##*:}
for node in $all; do
  tries=0
  until redis-cli -h "${node%:*}" -p "${node##*:}" ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { echo "create-cluster.sh: $node does not answer" >&2; exit 1; }
    sleep 0.1
  done
done
if redis-cli -h "$host" -p "$port" cluster info | grep -q '^cluster_slots_assigned:16384'; then
  echo "cluster formed already"
else
  redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
  echo  # redis-cli ends on a colour code without a newline
fi
# Until every node agrees that every slot is served, and every primary has its replica
# online, WAIT would have nothing to wait for.
tries=0
until [ "$(for node in "$@"; do redis-cli -h "${node%:*}" -p "${node##*:}" cluster info; done | grep -c '^cluster_state:ok')" -eq "$#" ] &&
  [ "$(for node in "$@"; do redis-cli -h "${node%:*}" -p "${node##*:}" info replication; done | grep -c '^slave0:.*state=online')" -eq "$(($# / 2))" ]; do
  tries=$((tries + 1))
  [ "$tries" -lt 300 ] || { echo "create-cluster.sh: cluster not ok after 30 s" >&2; redis-cli -h "$host" -p "$port" cluster nodes >&2; exit 1; }
  sleep 0.1
done
spares=$(($(echo "$all" | wc -w) - $#))
echo "cluster ok: $(($# / 2)) primaries, each with a replica; $spares spare nodes"

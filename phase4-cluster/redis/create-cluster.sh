#!/bin/sh
# Form the Redis Cluster once its nodes answer: the first half become primaries (the 16,384
# slots split evenly between them), each of the others a replica of one primary. A cluster that
# is formed already is left as it is, so this runs again harmlessly on every start.
# Usage: create-cluster.sh HOST:PORT HOST:PORT ... (Redis Cluster wants addresses, not names.)
set -eu
[ "$#" -ge 6 ] || { echo "create-cluster.sh: need at least 6 nodes (3 primaries, 3 replicas), got $#" >&2; exit 2; }
first=$1
host=${first%:*}
port=${first##*:}
for node in "$@"; do
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
echo "cluster ok: $(($# / 2)) primaries, each with a replica"

#!/bin/sh
# The Docker side of `make phaseN`, `status`, `logs`, `down` and `clean`: docker and Compose v2
# only, no Python, so a Docker user needs nothing else (the native runtime is shared/lab/native).
#
#   shared/docker.sh check                    is Compose v2 there, and recent enough?
#   shared/docker.sh up PHASE_FOLDER          build what changed, start, wait until healthy
#   shared/docker.sh status                   every lab project's containers
#   shared/docker.sh logs [SERVICE]           the running phase's logs (LINES, default 20)
#   shared/docker.sh down [--volumes]         every phase's project (--volumes: and its data)
#   shared/docker.sh grow                     phase 4: two spare nodes join as a primary and
#                                             its replica, then the slots are rebalanced
#
# WITHOUT="grafana cadvisor" leaves those services out of `up` (on a machine whose engine
# cannot run them). A phase is a compose project: the `name:` of its compose file.
set -eu
cd "$(dirname "$0")/.."

# 2.25.0: in 2.24.0 to 2.24.6 `include` reads env_file relative to the working directory, not
# to the including file (docker/compose#11577), and 2.24.7 breaks includes of `-f dir/compose.yaml`
# (docker/compose#11613): both are how the phases include the monitoring stack.
COMPOSE_MIN=2.25.0

die() { echo "error: $*" >&2; exit 1; }

check() {
    v=$(docker compose version --short 2>/dev/null | sed 's/^v//') || v=
    [ -n "$v" ] || die "the Docker runtime needs Docker Compose v2 (\`docker compose\`)," \
        "$COMPOSE_MIN or later; or run natively: RUNTIME=native"
    [ "$(printf '%s\n' "$COMPOSE_MIN" "$v" | sort -V | head -n 1)" = "$COMPOSE_MIN" ] ||
        die "Docker Compose $v is too old: the compose files need $COMPOSE_MIN or later" \
            "(include with env_file); update Docker, or run natively: RUNTIME=native"
}

phases() { for f in phase*/compose.yaml; do echo "${f%/compose.yaml}"; done; }

up() {
    [ -f "${1:-}/compose.yaml" ] || die "up: no compose.yaml in '${1:-}' (one of: $(phases | xargs))"
    file="$1/compose.yaml"
    services=$(docker compose -f "$file" config --services)
    for s in ${WITHOUT:-}; do
        echo "$services" | grep -qxF "$s" ||
            die "WITHOUT: '$s' is not a service of $file ($(echo "$services" | xargs))"
    done
    set --
    for s in $services; do
        case " ${WITHOUT:-} " in *" $s "*) ;; *) set -- "$@" "$s" ;; esac
    done
    [ -z "${WITHOUT:-}" ] || echo "leaving out: ${WITHOUT}"
    # --build: an edit in shared/ is in the next run (the build cache makes an unchanged
    # image a few seconds). Without WITHOUT the list is every service, as a bare `up` starts.
    echo "Docker: docker compose -f $file up -d --wait --build"
    docker compose -f "$file" up -d --wait --build "$@"
}

# An engine that does not answer is an error, not "nothing runs": each `ps` is checked (a
# failure inside $(...) would only end the subshell).
status() {
    found=
    for phase in $(phases); do
        ids=$(docker compose -f "$phase/compose.yaml" ps --quiet --all) || exit 1
        [ -n "$ids" ] || continue
        found=1
        echo "$phase (Docker, compose project $(sed -n 's/^name: *//p' "$phase/compose.yaml")):"
        docker compose -f "$phase/compose.yaml" ps --all
    done
    [ -n "$found" ] || echo "nothing is running (Docker runtime: no compose project of the lab)"
}

logs() {
    for phase in $(phases); do
        ids=$(docker compose -f "$phase/compose.yaml" ps --quiet --status=running) || exit 1
        if [ -n "$ids" ]; then
            exec docker compose -f "$phase/compose.yaml" logs --tail "${LINES:-20}" "$@"
        fi
    done
    die "no logs: no phase runs with Docker"
}

down() {
    [ "$#" = 0 ] || [ "$*" = --volumes ] || die "down: the only option is --volumes, not '$*'"
    code=0
    for phase in $(phases); do  # every one, even after a failure: down is the way out
        # The containers with their anonymous volumes first: phase 4's cluster nodes keep
        # their data in one each (replicas of one service cannot share a named volume), kept
        # across restarts, and `down` alone would leave them behind, never used again.
        echo "$phase: docker compose -f $phase/compose.yaml rm --stop --force --volumes"
        docker compose -f "$phase/compose.yaml" rm --stop --force --volumes || code=1
        echo "$phase: docker compose -f $phase/compose.yaml down $*"
        docker compose -f "$phase/compose.yaml" down "$@" || code=1
    done
    return "$code"
}

# Phase 4's cluster grows by its spares: nodes past the first 2 x REDIS_PRIMARIES, which
# create-cluster.sh leaves out (a node that knows no other is one). grow-cluster.sh runs in a
# one-off container of the `cluster` service, on the compose network where the names resolve.
grow() {
    file=phase4-cluster/compose.yaml
    ids=$(docker compose -f "$file" ps --quiet --status=running redis-node) || exit 1
    n=$(echo "$ids" | grep -c . || true)
    [ "$n" -gt 0 ] || die "cluster-grow: phase 4 does not run with Docker (make phase4 REDIS_NODES=8)"
    set --
    i=1
    while [ "$i" -le "$n" ]; do
        # Asked first, parsed after: a node that does not answer is an error, not a member.
        info=$(docker compose -f "$file" exec -T --index "$i" redis-node redis-cli cluster info) ||
            die "cluster-grow: redis-node $i did not answer"
        known=$(echo "$info" | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')
        [ "$known" != 1 ] || set -- "$@" "signup-phase4-redis-node-$i:6379"
        i=$((i + 1))
    done
    [ "$#" -ge 2 ] || die "cluster-grow: $# spare node(s) of $n, and a new primary needs two" \
        "(one for its replica); start phase 4 with more nodes" \
        "(make phase4 REDIS_NODES=$((n + 2 - $#))), then grow again"
    echo "Docker: grow-cluster.sh in a one-off container of the cluster service"
    docker compose -f "$file" run --rm --no-deps --entrypoint sh cluster /grow-cluster.sh \
        signup-phase4-redis-node-1:6379 "$1" "$2"
}

command=${1:-}
[ "$#" = 0 ] || shift
case "$command" in
    check) check ;;
    up) check && up "$@" ;;
    status) check && status ;;
    logs) check && logs "$@" ;;
    down) check && down "$@" ;;
    grow) check && grow ;;
    *) die "usage: shared/docker.sh check | up PHASE_FOLDER | status | logs [SERVICE] | down [--volumes] | grow" ;;
esac

#!/usr/bin/env bash
# scripts/kafka-node.sh DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID [KEY=VALUE ...]
#
# Runs one Apache Kafka node in KRaft mode, broker and controller combined, on 127.0.0.1, in the
# foreground (it execs the JVM, so the caller's pid is the broker's and SIGKILL kills it).
# services.sh, the test kit (testkit/src/broker.rs) and bench.sh all start brokers through
# this one file, so a development broker, a test's own broker and each node of a test cluster
# are configured alike.
#
#   DIR              the node's directory: server.properties is written there, data in DIR/data
#   NODE_ID          node.id, 1..N
#   PORT             client listener (advertised as 127.0.0.1:PORT)
#   CONTROLLER_PORT  controller listener
#   VOTERS           controller.quorum.voters of the whole cluster: "1@127.0.0.1:9093,2@…"
#   CLUSTER_ID       the cluster's id (22 characters of base64url; every node of a cluster the same)
#   KEY=VALUE        extra broker settings, last wins (e.g. min.insync.replicas=2)
#
# The data directory is formatted once (kafka.tools.StorageTool format); a restart on the same
# DIR keeps every topic, message and committed offset, as a production broker does. Replication
# factors of the internal topics follow the cluster's size (1 for one node, 3 for three).
#
# Environment: PULSE_KAFKA_HEAP (default 512m, -Xms = -Xmx), PULSE_KAFKA_JVM_OPTS (extra JVM
# options), PULSE_KAFKA_HOME (an install of install-kafka.sh; found or installed if unset).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 6)) || die "usage: scripts/kafka-node.sh DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID [KEY=VALUE ...]"
dir=$1 node_id=$2 port=$3 controller_port=$4 voters=$5 cluster_id=$6
shift 6

home=${PULSE_KAFKA_HOME:-$(kafka_home)}
[[ -f $home/.complete ]] || home=$("$PULSE_ROOT/scripts/install-kafka.sh" | tail -n 1)
command -v java >/dev/null || die "java is not on PATH (install-kafka.sh installs a JRE)"

nodes=$(tr ',' '\n' <<<"$voters" | grep -c .)
rf=$((nodes < 3 ? nodes : 3))
min_isr=$((rf > 1 ? 2 : 1))
mkdir -p "$dir/data"
props="$dir/server.properties"
{
    echo "# Written by scripts/kafka-node.sh; rewritten at every start."
    echo "process.roles=broker,controller"
    echo "node.id=$node_id"
    echo "controller.quorum.voters=$voters"
    echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
    echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "log.dirs=$dir/data"
    # Internal topics sized for a small cluster: fewer partitions start faster.
    echo "offsets.topic.num.partitions=8"
    echo "offsets.topic.replication.factor=$rf"
    echo "transaction.state.log.num.partitions=4"
    echo "transaction.state.log.replication.factor=$rf"
    echo "transaction.state.log.min.isr=$min_isr"
    echo "share.coordinator.state.topic.replication.factor=$rf"
    echo "share.coordinator.state.topic.min.isr=$min_isr"
    echo "default.replication.factor=$rf"
    # No delay before the first rebalance of a new group (tests start consumers constantly).
    echo "group.initial.rebalance.delay.ms=0"
    echo "min.insync.replicas=$min_isr"
    echo "unclean.leader.election.enable=false"
    for setting in "$@"; do echo "$setting"; done
} >"$props"

classpath="$home/libs/*"
if [[ ! -f $dir/data/meta.properties ]]; then
    java -Xmx256m -cp "$classpath" -Dlog4j2.configurationFile="$home/config/log4j2.yaml" \
        kafka.tools.StorageTool format --ignore-formatted --cluster-id="$cluster_id" -c "$props" >"$dir/format.log" 2>&1 \
        || { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
fi

heap=${PULSE_KAFKA_HEAP:-512m}
# shellcheck disable=SC2086 # PULSE_KAFKA_JVM_OPTS is a list of options
exec java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    ${PULSE_KAFKA_JVM_OPTS:-} \
    -Dlog4j2.configurationFile="$home/config/log4j2.yaml" -Dkafka.logs.dir="$dir" \
    -cp "$classpath" kafka.Kafka "$props"

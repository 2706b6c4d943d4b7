#!/usr/bin/env bash
# Installs the Apache Kafka broker Pulse develops, tests and benchmarks on: the jars of
# org.apache.kafka:kafka_2.13 $PULSE_KAFKA_VERSION and their runtime dependencies, resolved from
# Maven Central by `mvn dependency:copy-dependencies` on scripts/kafka/pom.xml, into
# ${PULSE_CACHE_DIR:-/opt/pulse-cache}/kafka-<version>/libs. Prints the install directory on
# the last line; scripts/kafka-node.sh runs a KRaft node from it.
#
# Idempotent: a complete install (its .complete marker) is reused at once; parallel runs wait
# for each other on a lock. A fresh install takes 10-40 s (about 45 MB of jars); Maven keeps
# its own copy in ~/.m2, so a second cache directory fills without the network.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

home=$(kafka_home)
if [[ -f $home/.complete ]]; then
    ok "Apache Kafka $PULSE_KAFKA_VERSION already installed in $home" >&2
    echo "$home"
    exit 0
fi

command -v java >/dev/null || need_apt openjdk-17-jre-headless
command -v mvn >/dev/null || need_apt maven
mkdir -p "$home"
exec 9>"$home/.install.lock"
if ! flock -n 9; then
    say "Another Kafka install is running; waiting for it" >&2
    flock 9
    [[ -f $home/.complete ]] && { echo "$home"; exit 0; }
fi

say "Installing Apache Kafka $PULSE_KAFKA_VERSION into $home (jars from Maven Central)" >&2
log="$PULSE_STATE_DIR/kafka-install.log"
start=$SECONDS
rm -rf "$home/libs" "$home/config"
if ! mvn -B -q -f "$PULSE_ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$PULSE_KAFKA_VERSION" -DincludeScope=runtime \
    -DoutputDirectory="$home/libs" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "mvn could not resolve Apache Kafka $PULSE_KAFKA_VERSION (full log: $log)"
fi
[[ -f $home/libs/kafka_2.13-$PULSE_KAFKA_VERSION.jar ]] || die "mvn finished but kafka_2.13-$PULSE_KAFKA_VERSION.jar is missing (log: $log)"
mkdir -p "$home/config"
cp "$PULSE_ROOT/scripts/kafka/log4j2.yaml" "$home/config/log4j2.yaml"
echo "$PULSE_KAFKA_VERSION" >"$home/.complete"
ok "Apache Kafka $PULSE_KAFKA_VERSION installed in $(elapsed "$start") ($(du -sh "$home/libs" | cut -f1) of jars)" >&2
echo "$home"

#!/usr/bin/env bash
# scripts/services.sh up|down|status — the services Pulse needs on a development machine:
#
#   PostgreSQL  127.0.0.1:5432  the local cluster (started if down, installed if absent), with a
#                               `pulse` database for development
#   Kafka       127.0.0.1:9092  the broker, picked by PULSE_BROKER:
#                               kafka (default) Apache Kafka in KRaft mode, one node, controller
#                                 on 127.0.0.1:9093, heap PULSE_KAFKA_HEAP (512m), data in
#                                 .pulse/kafka/ (kept across restarts; `down` keeps it too)
#                               tansu  the light option; memory storage by default,
#                                 PULSE_TANSU_STORAGE=sqlite keeps topics in .pulse/tansu/tansu.db
#   SMTP sink   127.0.0.1:2525  aiosmtpd, prints every mail it receives to .pulse/smtp.log
#
# Every step is idempotent: a port that already answers is taken as that service and left alone.
# `down` stops only what `up` started (pid files under .pulse/).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_ADMIN_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
PG_DEV_DB="${PULSE_DEV_DATABASE:-pulse}"
PG_STARTED_MARK="$PULSE_STATE_DIR/postgres.started"
TANSU_DIR="$PULSE_STATE_DIR/tansu"
TANSU_PID="$PULSE_STATE_DIR/tansu.pid"
TANSU_LOG="$PULSE_STATE_DIR/tansu.log"
KAFKA_DIR="$PULSE_STATE_DIR/kafka"
KAFKA_PID="$PULSE_STATE_DIR/kafka.pid"
KAFKA_LOG="$PULSE_STATE_DIR/kafka.log"
SMTP_PID="$PULSE_STATE_DIR/smtp.pid"
SMTP_LOG="$PULSE_STATE_DIR/smtp.log"

# --- PostgreSQL -------------------------------------------------------------------------------

# pg_cluster: "VERSION NAME" of the Debian cluster configured for $PG_PORT (empty if none).
pg_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters --no-header 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

# A PostgreSQL cluster this script starts accepts postgres over TCP from 127.0.0.1 without a
# password (once: the lines are marked); a cluster that was already running is not touched.
pg_trust_loopback() {
    local version=$1 name=$2 hba="/etc/postgresql/$1/$2/pg_hba.conf"
    grep -q '^# pulse-dev' "$hba" 2>/dev/null && return 0
    local tmp
    tmp=$(mktemp)
    {
        echo "# pulse-dev: local development, added by scripts/services.sh"
        echo "host all all 127.0.0.1/32 trust"
        echo "host all all ::1/128 trust"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null 2>&1 || true
}

postgres_up() {
    if ! port_open "$PG_HOST" "$PG_PORT"; then
        if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z $(pg_cluster) ]]; then
            need_apt postgresql postgresql-client
        fi
        local cluster version name
        cluster=$(pg_cluster)
        [[ -n $cluster ]] || die "PostgreSQL is installed but no cluster is configured for port $PG_PORT (pg_lsclusters); create one with pg_createcluster"
        read -r version name <<<"$cluster"
        say "Starting PostgreSQL $version (cluster $name, port $PG_PORT)"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start \
            || die "pg_ctlcluster $version $name start failed; see /var/log/postgresql/postgresql-$version-$name.log"
        echo "$cluster" >"$PG_STARTED_MARK"
        # A cluster this script starts is a development one (a machine where nothing runs
        # until a script starts it): let postgres in over loopback without a password.
        pg_trust_loopback "$version" "$name"
        wait_port PostgreSQL "$PG_HOST" "$PG_PORT" 60 "" "/var/log/postgresql/postgresql-$version-$name.log"
    fi
    command -v psql >/dev/null 2>&1 || need_apt postgresql-client
    local deadline=$((SECONDS + 30))
    until psql "$PG_ADMIN_URL" -tAqc 'SELECT 1' >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "PostgreSQL on $PG_HOST:$PG_PORT refuses 'psql $PG_ADMIN_URL' (it must accept user postgres without a password from 127.0.0.1)"
        sleep 0.5
    done
    if [[ $(psql "$PG_ADMIN_URL" -tAqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DEV_DB'") != 1 ]]; then
        psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$PG_DEV_DB\"" >/dev/null || die "could not create database $PG_DEV_DB"
        ok "created database $PG_DEV_DB"
    fi
    ok "PostgreSQL on $PG_HOST:$PG_PORT (dev database: $PG_DEV_DB)"
}

postgres_down() {
    if [[ -f $PG_STARTED_MARK ]]; then
        local version name
        read -r version name <"$PG_STARTED_MARK"
        if [[ -n $version && -n $name ]]; then
            pg_ctlcluster --skip-systemctl-redirect "$version" "$name" stop >/dev/null 2>&1 || true
            ok "stopped PostgreSQL $version/$name (it was started by services.sh)"
        fi
        rm -f "$PG_STARTED_MARK"
    else
        ok "PostgreSQL left running (services.sh did not start it)"
    fi
}

# --- Apache Kafka ----------------------------------------------------------------------------

# A port that answers is taken as a broker only when nothing of ours started there: report what
# it is and go on, as with PostgreSQL.
broker_already_up() {
    port_open "$KAFKA_HOST" "$KAFKA_PORT" || return 1
    if pid_alive "$KAFKA_PID"; then
        ok "Apache Kafka on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    elif pid_alive "$TANSU_PID"; then
        ok "Tansu on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$TANSU_PID"))"
    else
        ok "a broker already listens on $KAFKA_HOST:$KAFKA_PORT; using it"
    fi
}

kafka_up() {
    broker_already_up && return 0
    "$PULSE_ROOT/scripts/install-kafka.sh" >/dev/null
    mkdir -p "$KAFKA_DIR"
    # The cluster id is made once, with the data directory, and kept with it.
    [[ -s $KAFKA_DIR/cluster.id ]] || kafka_cluster_id >"$KAFKA_DIR/cluster.id"
    say "Starting Apache Kafka $PULSE_KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (KRaft, data in $KAFKA_DIR)"
    local pid
    pid=$(start_bg kafka "$KAFKA_LOG" "$PULSE_ROOT/scripts/kafka-node.sh" "$KAFKA_DIR" 1 \
        "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT" "$(cat "$KAFKA_DIR/cluster.id")")
    wait_port "Apache Kafka" "$KAFKA_HOST" "$KAFKA_PORT" 90 "$pid" "$KAFKA_LOG"
    ok "Apache Kafka on $KAFKA_HOST:$KAFKA_PORT (pid $pid, log $KAFKA_LOG)"
}

broker_up() {
    case "$PULSE_BROKER" in
        kafka) kafka_up ;;
        tansu) tansu_up ;;
    esac
}

# --- Tansu ------------------------------------------------------------------------------------

tansu_storage_url() {
    case "${PULSE_TANSU_STORAGE:-memory}" in
        memory) echo "memory://tansu/" ;;
        # Tansu resolves the sqlite path against its working directory, which is $TANSU_DIR.
        sqlite) echo "sqlite://tansu.db" ;;
        *://*) echo "$PULSE_TANSU_STORAGE" ;;
        *) die "PULSE_TANSU_STORAGE: \"$PULSE_TANSU_STORAGE\" is not memory, sqlite or a storage URL" ;;
    esac
}

tansu_up() {
    broker_already_up && return 0
    local bin storage
    bin=$(tansu_bin)
    [[ -n $bin ]] || bin=$("$PULSE_ROOT/scripts/install-tansu.sh" | tail -n 1)
    storage=$(tansu_storage_url)
    mkdir -p "$TANSU_DIR"
    say "Starting Tansu on $KAFKA_HOST:$KAFKA_PORT (storage $storage)"
    local pid
    # The broker listens on IPv4 only, so it advertises 127.0.0.1 (not localhost, which a
    # client may resolve to ::1 first). Run from $TANSU_DIR: a relative sqlite path lands there,
    # and Tansu's own .env loading cannot pick up the repository's .env.
    pid=$(cd "$TANSU_DIR" && start_bg tansu "$TANSU_LOG" "$bin" broker \
        --cluster-id pulse-dev \
        --listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
        --advertised-listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
        --storage-engine "$storage")
    wait_port Tansu "$KAFKA_HOST" "$KAFKA_PORT" 30 "$pid" "$TANSU_LOG"
    echo "$storage" >"$TANSU_DIR/storage"
    ok "Tansu on $KAFKA_HOST:$KAFKA_PORT (pid $pid, log $TANSU_LOG)"
}

# --- SMTP sink --------------------------------------------------------------------------------

smtp_up() {
    if port_open "$SMTP_HOST" "$SMTP_PORT"; then
        ok "SMTP sink on $SMTP_HOST:$SMTP_PORT"
        return 0
    fi
    # Debian's python3-aiosmtpd belongs to /usr/bin/python3, not to a pyenv python on PATH.
    /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need_apt python3-aiosmtpd
    say "Starting the SMTP sink on $SMTP_HOST:$SMTP_PORT"
    local pid
    pid=$(start_bg smtp "$SMTP_LOG" /usr/bin/python3 -u -m aiosmtpd -n -l "$SMTP_HOST:$SMTP_PORT")
    wait_port "SMTP sink" "$SMTP_HOST" "$SMTP_PORT" 20 "$pid" "$SMTP_LOG"
    ok "SMTP sink on $SMTP_HOST:$SMTP_PORT (pid $pid, mails printed to $SMTP_LOG)"
}

# --- commands ---------------------------------------------------------------------------------

show() {
    local name=$1 host=$2 port=$3 pidfile=${4:-} extra=${5:-}
    local state="down" owner=""
    port_open "$host" "$port" && state="up"
    if [[ -n $pidfile && $pidfile == "$PG_STARTED_MARK" && -f $pidfile && $state == up ]]; then
        owner=" (started by services.sh)"
    elif [[ -n $pidfile ]] && pid_alive "$pidfile"; then
        owner=" pid $(cat "$pidfile")"
    elif [[ $state == up ]]; then
        owner=" (not started by these scripts)"
    fi
    printf '  %-16s %-22s %-5s%s%s\n' "$name" "$host:$port" "$state" "$owner" "$extra"
}

status() {
    local storage=""
    [[ -f $TANSU_DIR/storage ]] && pid_alive "$TANSU_PID" && storage=", storage $(cat "$TANSU_DIR/storage")"
    echo "Services:"
    show PostgreSQL "$PG_HOST" "$PG_PORT" "$PG_STARTED_MARK"
    if pid_alive "$TANSU_PID"; then
        show Tansu "$KAFKA_HOST" "$KAFKA_PORT" "$TANSU_PID" "$storage"
    else
        show "Apache Kafka" "$KAFKA_HOST" "$KAFKA_PORT" "$KAFKA_PID" " $PULSE_KAFKA_VERSION"
    fi
    show "SMTP sink" "$SMTP_HOST" "$SMTP_PORT" "$SMTP_PID"
    echo "Pulse processes:"
    local name addr
    for name in api worker scheduler; do
        case $name in
            api) addr=${PULSE_API_ADDR:-127.0.0.1:8080} ;;
            worker) addr=${PULSE_WORKER_ADDR:-127.0.0.1:9101} ;;
            scheduler) addr=${PULSE_SCHEDULER_ADDR:-127.0.0.1:9102} ;;
        esac
        local ready="not ready"
        curl -fsS -o /dev/null --max-time 2 "http://$addr/readyz" 2>/dev/null && ready="ready"
        show "pulse-$name" "${addr%:*}" "${addr##*:}" "$PULSE_STATE_DIR/$name.pid" " /readyz: $ready"
    done
}

case "${1:-}" in
    up)
        postgres_up
        broker_up
        smtp_up
        ;;
    down)
        say "Stopping services started by scripts/services.sh"
        stop_pidfile "SMTP sink" "$SMTP_PID" 10
        stop_pidfile Tansu "$TANSU_PID" 20
        stop_pidfile "Apache Kafka" "$KAFKA_PID" 30
        postgres_down
        ;;
    status) status ;;
    *)
        echo "usage: scripts/services.sh up|down|status" >&2
        exit 2
        ;;
esac

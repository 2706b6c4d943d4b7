# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this file
# Shared helpers for the scripts in this folder. Sourced, never run.
#
# Everything a script starts keeps its pid and log under $PULSE_STATE_DIR (default: .pulse/ in
# the repository, which is gitignored), so `scripts/down.sh` stops exactly what was started.

set -euo pipefail

PULSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PULSE_STATE_DIR="${PULSE_STATE_DIR:-$PULSE_ROOT/.pulse}"
PULSE_CACHE_DIR="${PULSE_CACHE_DIR:-/opt/pulse-cache}"
export PULSE_ROOT PULSE_STATE_DIR PULSE_CACHE_DIR
mkdir -p "$PULSE_STATE_DIR"

# Ports of the local services and the Pulse binaries (the binaries' defaults from
# shared/src/config/mod.rs).
PG_HOST=127.0.0.1
PG_PORT="${PULSE_PG_PORT:-5432}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${PULSE_KAFKA_PORT:-${PULSE_TANSU_PORT:-9092}}"
# The development broker's controller listener (Apache Kafka only).
KAFKA_CONTROLLER_PORT="${PULSE_KAFKA_CONTROLLER_PORT:-9093}"

# Which broker the scripts start: kafka (Apache Kafka, the default: what production runs) or
# tansu (the light option; see docs/operations.md for its known faults).
PULSE_BROKER="${PULSE_BROKER:-kafka}"
case "$PULSE_BROKER" in
    kafka | tansu) ;;
    *) echo "error: PULSE_BROKER: \"$PULSE_BROKER\" is neither kafka nor tansu" >&2; exit 1 ;;
esac
# The Apache Kafka release install-kafka.sh resolves from Maven Central.
PULSE_KAFKA_VERSION="${PULSE_KAFKA_VERSION:-4.2.0}"
export PULSE_BROKER PULSE_KAFKA_VERSION
SMTP_HOST=127.0.0.1
SMTP_PORT="${PULSE_SMTP_PORT:-2525}"

if [[ -t 1 ]]; then
    _bold=$'\e[1m' _red=$'\e[31m' _green=$'\e[32m' _reset=$'\e[0m'
else
    _bold='' _red='' _green='' _reset=''
fi

say() { printf '%s==>%s %s\n' "$_bold" "$_reset" "$*"; }
ok() { printf '    %sok%s %s\n' "$_green" "$_reset" "$*"; }
die() {
    printf '%serror:%s %s\n' "$_red" "$_reset" "$*" >&2
    exit 1
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
    timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_for NAME WHAT SECONDS PID LOG PROBE...: runs PROBE until it succeeds. Dies, with the tail
# of LOG, when PID (if given) exits first or SECONDS pass. WHAT completes "NAME is not …".
wait_for() {
    local name=$1 what=$2 seconds=$3 pid=$4 log=$5
    shift 5
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            [[ -n $log && -f $log ]] && tail -n 30 "$log" >&2
            die "$name exited before $what${log:+ (log: $log)}"
        fi
        if ((SECONDS >= deadline)); then
            [[ -n $log && -f $log ]] && tail -n 30 "$log" >&2
            die "$name is not $what after ${seconds}s${log:+ (log: $log)}"
        fi
        sleep 0.2
    done
}

# wait_port NAME HOST PORT SECONDS [PID] [LOG]: waits until HOST:PORT accepts connections.
wait_port() { wait_for "$1" "listening on $2:$3" "$4" "${5:-}" "${6:-}" port_open "$2" "$3"; }

# http_ok URL: true when URL answers 2xx within 2 s.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# wait_http NAME URL SECONDS [PID] [LOG]: waits until URL answers 2xx.
wait_http() { wait_for "$1" "answering 2xx at $2" "$3" "${4:-}" "${5:-}" http_ok "$2"; }

# pid_alive FILE: true when FILE holds the pid of a live process.
pid_alive() {
    [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pidfile NAME FILE [SECONDS]: SIGTERM, wait, then SIGKILL; removes the pid file.
stop_pidfile() {
    local name=$1 file=$2 seconds=${3:-30}
    if ! pid_alive "$file"; then
        rm -f "$file"
        return 0
    fi
    local pid
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + seconds))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            printf '    %s did not stop within %ss after SIGTERM; sending SIGKILL\n' "$name" "$seconds" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$file"
    ok "stopped $name (pid $pid)"
}

# start_bg NAME LOG CMD...: starts CMD detached from this shell (own session, no stdin),
# writes its pid to $PULSE_STATE_DIR/NAME.pid and prints the pid.
start_bg() {
    local name=$1 log=$2
    shift 2
    setsid "$@" </dev/null >>"$log" 2>&1 &
    local pid=$!
    echo "$pid" >"$PULSE_STATE_DIR/$name.pid"
    echo "$pid"
}

_apt_updated=0
# need_apt PKG...: installs the Debian packages that are not installed yet.
need_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    say "Installing Debian packages: ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    local log="$PULSE_STATE_DIR/apt.log"
    if ((_apt_updated == 0)); then
        "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"; }
    ok "installed ${missing[*]}"
}

# Debian packages the scripts and the build need on a machine of the rust-svc kind:
# PostgreSQL server and client, the SMTP sink, curl for the readiness checks, and the C
# toolchain pieces librdkafka's bundled build (rdkafka-sys) uses.
PULSE_APT_PACKAGES=(postgresql postgresql-client python3-aiosmtpd python3-venv curl ca-certificates
    build-essential pkg-config zlib1g-dev libssl-dev)

# tansu_bin: path of the cached Tansu binary, or of one on PATH; empty if neither.
tansu_bin() {
    local cached="$PULSE_CACHE_DIR/tansu/bin/tansu"
    if [[ -n ${PULSE_TANSU_BIN:-} && -x ${PULSE_TANSU_BIN} ]]; then
        echo "$PULSE_TANSU_BIN"
    elif [[ -x $cached ]]; then
        echo "$cached"
    elif command -v tansu >/dev/null 2>&1; then
        command -v tansu
    fi
}

# kafka_home: where install-kafka.sh puts (or put) Apache Kafka $PULSE_KAFKA_VERSION.
kafka_home() { echo "$PULSE_CACHE_DIR/kafka-$PULSE_KAFKA_VERSION"; }

# kafka_cluster_id: a fresh KRaft cluster id (16 random bytes, base64url without padding).
kafka_cluster_id() { head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22; }

# elapsed SECONDS_AT_START: "12s" / "3m04s".
elapsed() {
    local s=$((SECONDS - $1))
    if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

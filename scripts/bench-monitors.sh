#!/usr/bin/env bash
# scripts/bench-monitors.sh — uptime checks at scale on this machine: N monitors at one interval
# against a local HTTP target, checked by release pulse-scheduler replicas.
#
#   scripts/bench-monitors.sh                       5,000 monitors every 30 s, one replica, 180 s
#   scripts/bench-monitors.sh --replicas 2          the same with two replicas sharing the work
#
# Options (defaults in brackets):
#   --monitors N      monitors created                                     [5000]
#   --interval S      their interval_s                                     [30]
#   --seconds S       measured window, after a warm-up of one interval     [180]
#   --replicas R      pulse-scheduler replicas                             [1]
#   --no-build        use the release binaries already built
#
# Steps: PostgreSQL and the development broker via scripts/services.sh up (the scheduler
# announces state changes on the stored-events topic); a fresh `pulse_bench_monitors_<run>`
# database (runs side by side do not meet);
# `pulse-bench webhook-receiver` as the target (it answers every request 200 and counts them);
# the monitors inserted with SQL, first checks spread over one interval; R release schedulers
# (PULSE_MONITOR_ALLOW_NETS=127.0.0.0/8, so loopback may be checked). After the warm-up, the
# window: checks stored per second, the target's requests per second, lateness behind schedule
# (checked_at − scheduled_at of every check in the window, p50/p99/max), checks run twice for one
# slot (must be 0), failures by class, and each scheduler's CPU (cores) and memory (VmRSS at the
# end, VmHWM). Everything started here is stopped on exit; all traffic stays on 127.0.0.1.
#
# A markdown block for bench/RESULTS.md goes to stdout and to .pulse/bench/monitors-<run>/results.md.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PULSE_ROOT"

command_line="scripts/bench-monitors.sh${*:+ $*}"
monitors=5000
interval=30
seconds=180
replicas=1
build=1
while (($#)); do
    case $1 in
        --monitors) monitors=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --replicas) replicas=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$monitors" "$interval" "$seconds" "$replicas"; do
    [[ $n =~ ^[0-9]+$ ]] || die "options take whole numbers, got '$n'"
done
((interval >= 10)) || die "--interval must be at least 10 (monitors allow no less)"
((replicas >= 1 && replicas <= 4)) || die "--replicas takes 1 to 4"
((seconds >= 30 && seconds <= 3600)) || die "--seconds takes 30 to 3600"

run_id=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$PULSE_STATE_DIR/bench/monitors-$run_id"
mkdir -p "$RUN_DIR"
BIN="$PULSE_ROOT/target/release"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
TARGET_ADDR=127.0.0.1:$(free_port)
ADMIN_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
DB_NAME="pulse_bench_monitors_${run_id,,}"
DB_URL="postgres://postgres@$PG_HOST:$PG_PORT/$DB_NAME"

pids=()
cleanup() {
    local pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$RUN_DIR/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    echo "$pid" >"$RUN_DIR/$name.pid"
}

say "Services (scripts/services.sh up)" >&2
"$PULSE_ROOT/scripts/services.sh" up >&2
if ((build)); then
    say "cargo build --release (pulse-api, pulse-scheduler, pulse-bench)" >&2
    cargo build --release --bin pulse-api --bin pulse-scheduler --bin pulse-bench >&2 || die "release build failed"
fi
for b in pulse-api pulse-scheduler pulse-bench; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing (run without --no-build)"; done

say "Fresh database $DB_NAME, $monitors monitors every $interval s against $TARGET_ADDR" >&2
psql "$ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >&2
export PULSE_DATABASE_URL="$DB_URL"
export PULSE_KAFKA_BROKERS="$KAFKA_HOST:$KAFKA_PORT"
export PULSE_TOPIC_PREFIX="bench-monitors-$run_id."
export PULSE_LOG="${PULSE_LOG:-warn}"
export PULSE_MONITOR_ALLOW_NETS=127.0.0.0/8
# Only the monitors are measured: the other cron jobs stay out of the window.
export PULSE_RETENTION_CRON="0 0 0 1 1 *"
"$BIN/pulse-api" migrate >&2 || die "pulse-api migrate failed"

start target "$BIN/pulse-bench" webhook-receiver --addr "$TARGET_ADDR"
wait_http pulse-bench "http://$TARGET_ADDR/stats" 30 "$(cat "$RUN_DIR/target.pid")" "$RUN_DIR/target.log"

psql "$DB_URL" -qX -v ON_ERROR_STOP=1 >&2 <<SQL
INSERT INTO organizations (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'bench');
INSERT INTO projects (id, organization_id, name) VALUES ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'monitors');
INSERT INTO monitors (id, project_id, name, url, interval_s, timeout_ms, next_check_at)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000002', 'bench ' || i, 'http://$TARGET_ADDR/m' || i, $interval, 5000,
       now() + interval '3 seconds' + random() * $interval * interval '1 second'
FROM generate_series(1, $monitors) AS i;
SQL

say "Starting $replicas pulse-scheduler replica(s) (release)" >&2
scheduler_pids=()
for ((r = 1; r <= replicas; r++)); do
    addr=127.0.0.1:$(free_port)
    start "scheduler-$r" env PULSE_SCHEDULER_ADDR="$addr" PULSE_SCHEDULER_REPLICA="bench-$r" "$BIN/pulse-scheduler"
    wait_http pulse-scheduler "http://$addr/readyz" 90 "$(cat "$RUN_DIR/scheduler-$r.pid")" "$RUN_DIR/scheduler-$r.log"
    scheduler_pids+=("$(cat "$RUN_DIR/scheduler-$r.pid")")
done

ticks=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

say "Warm-up: one interval and 10 s" >&2
sleep $((interval + 10))
curl -fsS -X POST "http://$TARGET_ADDR/reset" >/dev/null
window_start=$(psql "$DB_URL" -XAt -c "SELECT now()")
cpu_before=()
for pid in "${scheduler_pids[@]}"; do cpu_before+=("$(proc_cpu "$pid")"); done
machine_before=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
say "Measuring $seconds s" >&2
sleep "$seconds"
window_end=$(psql "$DB_URL" -XAt -c "SELECT now()")
machine_after=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
: >"$RUN_DIR/schedulers.txt"
for i in "${!scheduler_pids[@]}"; do
    pid=${scheduler_pids[i]}
    echo "${cpu_before[i]} $(proc_cpu "$pid") $(status_kb "$pid" VmRSS) $(status_kb "$pid" VmHWM)" >>"$RUN_DIR/schedulers.txt"
done
curl -fsS "http://$TARGET_ADDR/stats" >"$RUN_DIR/target.json"

psql "$DB_URL" -XAt -F ' ' >"$RUN_DIR/checks.txt" <<SQL
WITH w AS (SELECT * FROM monitor_checks WHERE checked_at >= '$window_start' AND checked_at < '$window_end')
SELECT count(*),
       count(*) FILTER (WHERE ok),
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM checked_at - scheduled_at)), 0),
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM checked_at - scheduled_at)), 0),
       coalesce(max(extract(epoch FROM checked_at - scheduled_at)), 0),
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), 0),
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), 0),
       (SELECT count(*) FROM (SELECT 1 FROM monitor_checks WHERE scheduled_at IS NOT NULL GROUP BY monitor_id, scheduled_at HAVING count(*) > 1) d),
       coalesce((SELECT string_agg(error_class || ' ' || n, ', ') FROM (SELECT error_class, count(*) AS n FROM w WHERE NOT ok GROUP BY 1 ORDER BY 1) f), 'none')
FROM w;
SQL

git_commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (with uncommitted changes)" || true)
python3 - "$RUN_DIR" "$command_line" "$git_commit$dirty" "$monitors" "$interval" "$seconds" "$replicas" \
    "$machine_before" "$machine_after" >"$RUN_DIR/results.md" <<'PY'
import json, os, sys
run_dir, command, commit, monitors, interval, seconds, replicas, m_before, m_after = sys.argv[1:]
monitors, interval, seconds, replicas = int(monitors), int(interval), int(seconds), int(replicas)
fields = open(os.path.join(run_dir, "checks.txt")).read().split(" ", 8)
checks, ok = int(fields[0]), int(fields[1])
late50, late99, late_max, lat50, lat99 = (float(x) for x in fields[2:7])
twice, failures = int(fields[7]), fields[8].strip()
target = json.load(open(os.path.join(run_dir, "target.json")))
busy0, all0 = (int(x) for x in m_before.split())
busy1, all1 = (int(x) for x in m_after.split())
machine = (busy1 - busy0) / max(all1 - all0, 1) * os.cpu_count()
print(f"### Monitors run {os.path.basename(run_dir)}\n")
print(f"- command: `{command}`")
print(f"- git commit: {commit}")
print(f"- machine: {os.cpu_count()} cores; PostgreSQL, the target (pulse-bench webhook-receiver) and the scheduler(s) all on it")
print(f"- {monitors:,} monitors every {interval} s (expected {monitors / interval:,.1f} checks/s), {replicas} replica(s), window {seconds} s after a warm-up of one interval\n")
print("| checks/s stored | target requests/s | passed | lateness p50 / p99 / max s | check latency p50 / p99 ms | checks run twice for one slot | failures |")
print("|---:|---:|---:|---|---|---:|---|")
print(f"| {checks / seconds:,.1f} | {target['requests'] / seconds:,.1f} | {ok:,} of {checks:,} | {late50:.3f} / {late99:.3f} / {late_max:.3f} | {lat50:.0f} / {lat99:.0f} | {twice} | {failures} |")
print()
print("| replica | CPU (cores of the window) | VmRSS at the end MB | VmHWM MB |")
print("|---|---:|---:|---:|")
for i, line in enumerate(open(os.path.join(run_dir, "schedulers.txt"))):
    before, after, rss, hwm = (float(x) for x in line.split())
    print(f"| {i + 1} | {(after - before) / seconds:.2f} | {rss / 1024:.0f} | {hwm / 1024:.0f} |")
print(f"\nThe whole machine was {machine:.2f} cores busy over the window.")
PY
cat "$RUN_DIR/results.md"
ok "results in $RUN_DIR/results.md" >&2

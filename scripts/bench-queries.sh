#!/usr/bin/env bash
# scripts/bench-queries.sh — the read side's benchmark: a month of events, then the read routes.
#
#   scripts/bench-queries.sh                 10,000,000 events over 30 days, seeded afresh
#   scripts/bench-queries.sh --reuse         the database of an earlier run (skips the seeding)
#
# Options (defaults in brackets):
#   --events N        events seeded                              [10000000]
#   --days D          days they cover, ending now (minute-aligned) [30]
#   --rounds R        timed requests per query                   [50]
#   --export-days D   days of events in the timed CSV export     [3]
#   --reuse           keep the pulse_bench_queries database and its project (seed once, measure often)
#   --minutes-only    answer whole hours from the minute rows, as without the hourly cascade: for
#                     the timing, every minute row is marked a delta and the hourly rows and
#                     totals are set aside (restored afterwards, also on failure); implies
#                     --export-days 0. Slow: a month of hourly buckets takes ~10 s per request
#   --no-build        use the release binaries already built
#
# Steps: PostgreSQL and Kafka via scripts/services.sh up (the api needs a broker to be ready; no
# event is produced); database `pulse_bench_queries` (migrated by pulse-api migrate); a
# project and a read key (pulse-api admin create-project); `pulse-bench seed` (binary COPY into
# daily partitions); `pulse-api admin rebuild-rollups` over the month (timed: it writes the
# compacted minute rows and the hourly rows); a release pulse-api on a free port; one CSV export
# read to its end while the api's VmHWM is watched; then each query `--rounds` times, one at a
# time. Progress goes to stderr; a markdown block for bench/RESULTS.md to stdout and to
# .pulse/bench-queries/<run>/results.md. Everything started here is stopped on exit; all traffic
# stays on 127.0.0.1.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PULSE_ROOT"

command_line="scripts/bench-queries.sh${*:+ $*}"
events=10000000
days=30
rounds=50
export_days=3
reuse=0
build=1
minutes_only=0
while (($#)); do
    case $1 in
        --events) events=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --export-days) export_days=$2; shift 2 ;;
        --reuse) reuse=1; shift ;;
        --minutes-only) minutes_only=1; export_days=0; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$events" "$days" "$rounds" "$export_days"; do
    [[ $n =~ ^[0-9]+$ ]] || die "options take whole numbers, got '$n'"
done

run_id=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$PULSE_ROOT/.pulse/bench-queries/$run_id"
mkdir -p "$RUN_DIR"
BIN="$PULSE_ROOT/target/release"
DB_NAME=pulse_bench_queries
PG_HOST=${PULSE_PG_HOST:-127.0.0.1}
PG_PORT=${PULSE_PG_PORT:-5432}
ADMIN_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
DB_URL="postgres://postgres@$PG_HOST:$PG_PORT/$DB_NAME"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_ADDR=127.0.0.1:$(free_port)

api_pid=""
set_aside=0
# Undoes --minutes-only: the hourly rows back, the minute rows compacted again.
restore_hourly() {
    psql "$DB_URL" -qX -v ON_ERROR_STOP=1 <<'SQL' >&2
BEGIN;
DROP TABLE event_rollups_hourly;
ALTER TABLE event_rollups_hourly_set_aside RENAME TO event_rollups_hourly;
DROP TABLE event_rollups_hourly_totals;
ALTER TABLE event_rollups_hourly_totals_set_aside RENAME TO event_rollups_hourly_totals;
UPDATE event_rollups SET compacted = true;
COMMIT;
SQL
}
cleanup() {
    [[ -n $api_pid ]] && kill "$api_pid" 2>/dev/null
    wait 2>/dev/null || true
    if ((set_aside)); then restore_hourly || echo "restoring event_rollups_hourly failed: see $DB_NAME" >&2; fi
}
trap cleanup EXIT

say "Services (scripts/services.sh up)" >&2
"$PULSE_ROOT/scripts/services.sh" up >&2
if ((build)); then
    say "cargo build --release (pulse-api, pulse-bench)" >&2
    cargo build --release --bin pulse-api --bin pulse-bench >&2 || die "release build failed"
fi

export PULSE_DATABASE_URL="$DB_URL" PULSE_API_ADDR="$API_ADDR"
export PULSE_KAFKA_BROKERS="${PULSE_KAFKA_BROKERS:-127.0.0.1:9092}" PULSE_TOPIC_PREFIX="bench-queries."
export PULSE_JWT_SECRET
PULSE_JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
# The benchmark times queries one at a time; the per-key read limit is not what it measures.
export PULSE_READ_RATE_LIMIT_PER_SEC=100000
export PULSE_LOG="${PULSE_LOG:-warn}"
state="$PULSE_ROOT/.pulse/bench-queries/seeded.json"

if ((reuse)) && [[ -f $state ]]; then
    ok "reusing $DB_NAME: $(cat "$state")" >&2
else
    say "Fresh database $DB_NAME" >&2
    psql "$ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >&2
    "$BIN/pulse-api" migrate >&2 || die "pulse-api migrate failed"
    project=$("$BIN/pulse-api" admin create-project --org pulse-bench --name "queries-$run_id") \
        || die "pulse-api admin create-project failed"
    end=$(date -u +%Y-%m-%dT%H:%M:00Z)
    say "Seeding $events events over $days days ending $end" >&2
    seeded=$("$BIN/pulse-bench" seed --database-url "$DB_URL" --project-id "$(jq -r .project_id <<<"$project")" \
        --events "$events" --days "$days" --end "$end" | tail -n 1) || die "seeding failed"
    start=$(jq -r .start <<<"$seeded")
    say "pulse-api admin rebuild-rollups over the month" >&2
    began=$SECONDS
    rebuilt=$("$BIN/pulse-api" admin rebuild-rollups --project "$(jq -r .project_id <<<"$project")" \
        --from "$start" --to "$end" | tail -n 1) || die "rebuild-rollups failed"
    rebuild_seconds=$((SECONDS - began))
    psql "$DB_URL" -qX -c "ANALYZE" >&2
    jq -cn --argjson project "$project" --argjson seeded "$seeded" --argjson rebuilt "$rebuilt" \
        --arg seeded_end "$end" --argjson rebuild_seconds "$rebuild_seconds" \
        '{project: $project, seeded: $seeded, rebuilt: $rebuilt, "end": $seeded_end, rebuild_seconds: $rebuild_seconds}' >"$state"
fi
cp "$state" "$RUN_DIR/seeded.json"
end=$(jq -r .end "$state")
api_key=$(jq -r .project.api_key "$state")

if ((minutes_only)); then
    [[ -f $state ]] || die "--minutes-only needs a seeded database (run once without it, or with --reuse)"
    say "Setting the hourly rows aside: whole hours merge minute rows" >&2
    psql "$DB_URL" -qX -v ON_ERROR_STOP=1 <<'SQL' >&2 || die "setting event_rollups_hourly aside failed"
BEGIN;
ALTER TABLE event_rollups_hourly RENAME TO event_rollups_hourly_set_aside;
CREATE TABLE event_rollups_hourly (LIKE event_rollups_hourly_set_aside INCLUDING ALL);
ALTER TABLE event_rollups_hourly_totals RENAME TO event_rollups_hourly_totals_set_aside;
CREATE TABLE event_rollups_hourly_totals (LIKE event_rollups_hourly_totals_set_aside INCLUDING ALL);
UPDATE event_rollups SET compacted = false;
COMMIT;
VACUUM ANALYZE event_rollups;
SQL
    set_aside=1
fi

say "Starting pulse-api (release) on $API_ADDR" >&2
setsid "$BIN/pulse-api" </dev/null >>"$RUN_DIR/api.log" 2>&1 &
api_pid=$!
wait_http pulse-api "http://$API_ADDR/readyz" 90 "$api_pid" "$RUN_DIR/api.log"
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_before=$(status_kb "$api_pid" VmRSS)

say "Timing the export ($export_days days) and the queries ($rounds rounds each)" >&2
PULSE_BENCH_API_KEY="$api_key" "$BIN/pulse-bench" queries --url "http://$API_ADDR" --end "$end" \
    --rounds "$rounds" --export-days "$export_days" >"$RUN_DIR/queries.json" || die "pulse-bench queries failed"
jq -cn --argjson before "$rss_before" --argjson hwm "$(status_kb "$api_pid" VmHWM)" \
    '{api_rss_before_kb: $before, api_hwm_kb: $hwm}' >"$RUN_DIR/memory.json"
echo "$command_line" >"$RUN_DIR/command"

python3 - "$RUN_DIR" "$DB_URL" <<'PY' | tee "$RUN_DIR/results.md"
import json, os, subprocess, sys
run_dir, db_url = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(os.path.join(run_dir, name)))
sh = lambda cmd: subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
state, queries, memory = load("seeded.json"), load("queries.json"), load("memory.json")
seeded, rebuilt = state["seeded"], state["rebuilt"]
sizes = sh(f"psql -XAt '{db_url}' -c \"select string_agg(t || ' ' || pg_size_pretty(pg_total_relation_size(t)), ', ') from unnest(array['event_rollups','event_rollups_hourly','event_rollups_hourly_totals']) t\"")
events_size = sh(f"psql -XAt '{db_url}' -c \"select pg_size_pretty(sum(pg_total_relation_size(inhrelid))) from pg_inherits where inhparent = 'events'::regclass\"")
rows = sh(f"psql -XAt '{db_url}' -c \"select (select count(*) from event_rollups) || ' minute rows, ' || (select count(*) from event_rollups_hourly) || ' hourly rows'\"")
commit = sh("git rev-parse --short HEAD") + (" (dirty tree)" if sh("git status --porcelain -- api worker shared bench scheduler") else "")
minutes_only = "--minutes-only" in open(os.path.join(run_dir, 'command')).read()
print(f"### Read side, run {os.path.basename(run_dir)}{' (hourly rows set aside: whole hours merged from minute rows)' if minutes_only else ''}\n")
print(f"- command: `{open(os.path.join(run_dir, 'command')).read().strip()}`")
pg_version = sh("psql -XAt '" + db_url + "' -c 'show server_version'")
print(f"- git commit: {commit}; {os.cpu_count()} cores; PostgreSQL {pg_version}; api and database on this machine")
print(f"- data: {seeded['events']:,} events from {seeded['start']} to {seeded['end']} (one project, daily partitions, events {events_size} with indexes), "
      f"seeded by COPY at {seeded['rows_per_s']:,.0f} rows/s; rollups by `pulse-api admin rebuild-rollups` in {state['rebuild_seconds']} s ({rows}; {sizes})")
print()
print("| query | p50 ms | p95 ms | p99 ms | max ms | answer bytes |")
print("|---|---:|---:|---:|---:|---:|")
for q in queries["queries"]:
    l = q["latency_ms"]
    print(f"| {q['name']} | {l['p50_ms']:.1f} | {l['p95_ms']:.1f} | {l['p99_ms']:.1f} | {l['max_ms']:.1f} | {q['answer_bytes']:,} |")
print()
e = queries.get("export")
if e:
    print(f"CSV export (`{e['path'].split('?')[0]}`, {e['rows']:,} rows, {e['bytes']/1e6:,.0f} MB): {e['rows_per_s']:,.0f} rows/s "
          f"({e['megabytes_per_s']:.1f} MB/s, {e['seconds']:.1f} s); api RSS {memory['api_rss_before_kb']/1024:.0f} MiB before, peak (VmHWM) {memory['api_hwm_kb']/1024:.0f} MiB.")
PY

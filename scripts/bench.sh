#!/usr/bin/env bash
# scripts/bench.sh — one measured benchmark run of Pulse on this machine, end to end.
#
#   scripts/bench.sh               COPY baseline, then (a) batches of 100, (b) single events
#   scripts/bench.sh --soak 600    COPY baseline, then one rate-limited run of 600 s whose
#                                  api/worker memory is compared first minute vs last minute
#
# Options (defaults in brackets):
#   --events N               events of scenario (a)                         [1000000]
#   --batch-concurrency C    requests in flight in scenario (a)             [16]
#   --single-seconds S       length of scenario (b)                         [30]
#   --single-concurrency C[,C...]  requests in flight in scenario (b), one
#                            run per value                                  [64,96,128]
#   --baseline-rows N        rows per COPY-baseline phase                   [500000]
#   --soak SECONDS           run the soak instead of (a) and (b)
#   --soak-rate EVENTS_PER_S target rate of the soak, batches of 100        [15000]
#   --broker B               kafka (Apache Kafka, one KRaft node), tansu (Tansu,
#                            memory storage) or both (one after the other, each
#                            with its own COPY baseline, both reports printed)  [kafka]
#   --stream-clients N       live-stream (SSE) clients connected through the scenarios,
#                            reading, their delay from acceptance reported    [0]
#   --stream-filter Q        query string of those clients                    [event_type=error&source=backend]
#   --no-publish             PULSE_STREAM_PUBLISH=false: the worker announces nothing on the
#                            stored-events topic (the live stream's cost, measured by difference)
#   --webhooks N             after the scenarios, N enabled event.created webhook endpoints
#                            (to a local pulse-bench webhook-receiver) and scenario (a)
#                            again: the webhooks' cost, deliveries/s and accept->receipt delay [0]
#   --webhook-dead           one of those N endpoints is dead (connection refused)
#   --webhook-rate R         then a paced run at R events/s for 30 s with the same endpoints:
#                            the accept->receipt delay at a rate they keep up with   [2000]
#   --alert-rules N          after the scenarios, N enabled alert rules on the project (count,
#                            error_ratio and absent over the generator's event types and
#                            sources, none breached) and scenario (a) again: their cost on
#                            persist; then the delay from a breaching event's acceptance to
#                            its email's arrival at a local SMTP capture server, 20 samples [0]
#   --retention-events N     after the scenarios, N old events seeded with SQL (half of a
#                            project keeping 3 days, in days 30-day projects still keep:
#                            deleted in batches; half of a project keeping 30 days, older than
#                            that: whole partitions dropped), then a paced run
#                            without retention and one with `pulse-scheduler run-once retention`
#                            started with it: the run's time, and ingest's rate and latency
#                            meanwhile                                                      [0]
#   --retention-rate R       events/s of those paced runs (batches of 100)                [5000]
#   --retention-seconds S    length of each paced run                                     [120]
#   --no-build               use the release binaries already built
#   --report DIR             only print the markdown block of an earlier run (.pulse/bench/<run>)
#
# Steps: PostgreSQL via scripts/services.sh up; a dedicated broker on free 127.0.0.1 ports,
# isolated from the shared dev/test broker and removed at the end: Apache Kafka (one KRaft node
# through scripts/kafka-node.sh, heap 512m, data on disk in the run directory, acks=all as
# always) or Tansu with MEMORY storage; a fresh `pulse_bench` database; release pulse-api, pulse-worker
# and pulse-scheduler (which folds the rollup deltas the worker writes, as in production) on free ports
# with their own topic prefix; a project; the COPY baseline; the scenarios.
# VmRSS/VmHWM of api and worker are sampled from /proc every second, CPU time of every
# process is read before and after each scenario. Everything started here is stopped on exit.
# All traffic goes to 127.0.0.1; every loop is bounded in count and time.
#
# Progress goes to stderr; a markdown block for bench/RESULTS.md goes to stdout and to
# .pulse/bench/<run>/results.md (raw JSON and samples beside it).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PULSE_ROOT"

command_line="scripts/bench.sh${*:+ $*}"
original_args=("$@")
events=1000000
batch_concurrency=16
single_seconds=30
single_concurrency=64,96,128
baseline_rows=500000
soak=0
soak_rate=15000
build=1
report_dir=""
broker=kafka
stream_clients=0
stream_filter='event_type=error&source=backend'
publish=true
webhooks=0
alert_rules=0
retention_events=0
retention_rate=5000
retention_seconds=120
webhook_dead=0
webhook_rate=2000
while (($#)); do
    case $1 in
        --events) events=$2; shift 2 ;;
        --batch-concurrency) batch_concurrency=$2; shift 2 ;;
        --single-seconds) single_seconds=$2; shift 2 ;;
        --single-concurrency) single_concurrency=$2; shift 2 ;;
        --baseline-rows) baseline_rows=$2; shift 2 ;;
        --soak) soak=$2; shift 2 ;;
        --soak-rate) soak_rate=$2; shift 2 ;;
        --broker) broker=$2; shift 2 ;;
        --stream-clients) stream_clients=$2; shift 2 ;;
        --stream-filter) stream_filter=$2; shift 2 ;;
        --no-publish) publish=false; shift ;;
        --webhooks) webhooks=$2; shift 2 ;;
        --alert-rules) alert_rules=$2; shift 2 ;;
        --retention-events) retention_events=$2; shift 2 ;;
        --retention-rate) retention_rate=$2; shift 2 ;;
        --retention-seconds) retention_seconds=$2; shift 2 ;;
        --webhook-dead) webhook_dead=1; shift ;;
        --webhook-rate) webhook_rate=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --report) report_dir=$2; shift 2 ;;
        -h | --help) sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for n in "$retention_events" "$retention_rate" "$retention_seconds" "$webhooks" "$alert_rules" "$webhook_rate" "$stream_clients" "$events" "$batch_concurrency" "$single_seconds" ${single_concurrency//,/ } "$baseline_rows" "$soak" "$soak_rate"; do
    [[ $n =~ ^[0-9]+$ ]] || die "options take whole numbers, got '$n'"
done
((soak == 0 || soak >= 120)) || die "--soak needs at least 120 seconds (first and last minute are compared)"
((soak <= 3600)) || die "--soak is capped at 3600 seconds"
case $broker in
    kafka | tansu) ;;
    both)
        # One run per broker, in this order, with the same options; the second skips the build.
        skip=0
        for b in kafka tansu; do
            own=()
            prev=""
            for arg in "${original_args[@]}"; do
                if [[ $prev == --broker ]]; then own+=("$b"); else own+=("$arg"); fi
                prev=$arg
            done
            ((skip && build)) && own+=(--no-build)
            "$0" "${own[@]}" || exit $?
            skip=1
        done
        exit 0
        ;;
    *) die "--broker takes kafka, tansu or both, got '$broker'" ;;
esac

# render_report RUN_DIR: the markdown block of a finished run, from the files in RUN_DIR.
render_report() {
    python3 - "$1" <<'PY'
import json, os, subprocess, sys

run_dir = sys.argv[1]
command = open(os.path.join(run_dir, "command")).read().strip()
soak = os.path.exists(os.path.join(run_dir, "soak.json"))

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return "?"

def load(name):
    path = os.path.join(run_dir, name)
    return json.load(open(path)) if os.path.exists(path) else None

def kv(path):
    out = {}
    for part in open(path).read().split():
        k, v = part.split("=")
        out[k] = float(v)
    return out

baseline = load("baseline.json")
copy_rate = next(p["rows_per_s"] for p in baseline["phases"] if p["name"] == "copy")
cpu_model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
mem_gb = int(sh("awk '/MemTotal/ {print $2}' /proc/meminfo") or 0) / 1024 / 1024
commit = sh("git rev-parse --short HEAD") + (" (dirty tree)" if sh("git status --porcelain -- api worker shared bench") else "")
pg = sh("psql -XAtc 'show server_version' postgres://postgres@127.0.0.1:5432/postgres")
pg_settings = sh("psql -XAtc \"select string_agg(name || '=' || setting, ', ' order by name) from pg_settings where name in ('fsync','synchronous_commit','full_page_writes','wal_level','shared_buffers','max_wal_size')\" postgres://postgres@127.0.0.1:5432/postgres")

print(f"### Run {os.path.basename(run_dir)}\n")
print(f"- command: `{command}`")
print(f"- git commit: {commit}")
print(f"- machine: {os.cpu_count()} cores ({cpu_model}), {mem_gb:.0f} GiB, kernel {sh('uname -r')}; {sh('rustc --version')}")
version_file = next((os.path.join(run_dir, f) for f in ("broker.version", "tansu.version") if os.path.exists(os.path.join(run_dir, f))), None)
broker = (open(version_file).read().strip() if version_file else "") or "broker"
print(f"- PostgreSQL {pg} ({pg_settings}); {broker}; api, worker, scheduler, broker, database and load generator all on this machine")
if os.path.exists(os.path.join(run_dir, "stream.txt")):
    line = open(os.path.join(run_dir, "stream.txt")).read().strip()
    if os.path.exists(os.path.join(run_dir, "webhooks.txt")):
        hooks = load("webhooks.json")
        text = open(os.path.join(run_dir, "webhooks.txt")).read().strip()
        if hooks:
            d = hooks["delay"]
            text += (f"; the receiver got {hooks['requests']:,} requests with {hooks['events']:,} events"
                     f" ({hooks['requests_per_s']:,.0f} deliveries/s, {hooks['events_per_s']:,.0f} events/s from first to last),"
                     f" accept->receipt delay p50 / p99 / max {d['p50_ms']:.0f} / {d['p99_ms']:.0f} / {d['max_ms']:.0f} ms")
        print(f"- webhooks: {text}")
        paced = load("webhooks-paced.json")
        if paced:
            d = paced["delay"]
            print(f"- webhooks, paced scenario: the receiver got {paced['requests']:,} requests with {paced['events']:,} events"
                  f" ({paced['requests_per_s']:,.0f} deliveries/s), accept->receipt delay p50 / p99 / max"
                  f" {d['p50_ms']:.0f} / {d['p99_ms']:.0f} / {d['max_ms']:.0f} ms")
    stream = load("stream.json") if os.path.exists(os.path.join(run_dir, "stream.json")) and os.path.getsize(os.path.join(run_dir, "stream.json")) else None
    if stream:
        d = stream["delay"]
        line += (f"; {stream['connected']} of {stream['clients']} clients connected (filter `{stream['filter']}`),"
                 f" {stream['events_received']:,} events received ({stream['events_per_s']:,.0f}/s over all clients),"
                 f" accept->client delay p50 / p99 / max {d['p50_ms']:.0f} / {d['p99_ms']:.0f} / {d['max_ms']:.0f} ms,"
                 f" {stream['dropped_notices']} dropped")
    print(f"- live stream: {line}")
if os.path.exists(os.path.join(run_dir, "alerts.txt")):
    print(f"- alert rules: {open(os.path.join(run_dir, 'alerts.txt')).read().strip()}")
if os.path.exists(os.path.join(run_dir, "retention.txt")):
    print(f"- retention: {open(os.path.join(run_dir, 'retention.txt')).read().strip()}")
if os.path.exists(os.path.join(run_dir, "rollups.txt")):
    print(f"- rollups at the end: {open(os.path.join(run_dir, 'rollups.txt')).read().strip() or '?'}")
print()
print("COPY baseline (scratch database, same schema and indexes, same kind of rows):\n")
print("| way | rows | rows/s |")
print("|---|---:|---:|")
for p in baseline["phases"]:
    print(f"| {p['description']} | {p['rows']:,} | {p['rows_per_s']:,.0f} |")
print()

names = ["soak"] if soak else ["batch100"] + sorted(
    (f[:-5] for f in os.listdir(run_dir) if f.startswith("single-c") and f.endswith(".json")),
    key=lambda n: int(n[8:])) + [n for n in ("batch100-webhooks", "paced-webhooks", "batch100-alerts", "paced-before-retention", "paced-with-retention") if os.path.exists(os.path.join(run_dir, n + ".json"))]
print("| scenario | accepted events/s | requests/s | API p50 / p95 / p99 / max ms | errors | stored (rows in events) | end-to-end stored events/s | ratio to COPY | accept->stored p50 / p99 ms | drain after load s |")
print("|---|---:|---:|---|---|---:|---:|---:|---|---:|")
for name in names:
    r = load(name + ".json")
    if r is None:
        continue
    l, p = r["latency"], r.get("persisted") or {}
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
    e2e = p.get("end_to_end_events_per_s", 0)
    d = p.get("delay", {})
    label = f"{name} (batch {r['batch_size']}, concurrency {r['concurrency']}" + (f", rate {r['target_rate_events_per_s']:.0f}/s" if r.get("target_rate_events_per_s") else "") + ")"
    complete = "" if p.get("complete", False) else " (incomplete)"
    print(f"| {label} | {r['accepted_events_per_s']:,.0f} | {r['requests_per_s']:,.0f} | {l['p50_ms']:.1f} / {l['p95_ms']:.1f} / {l['p99_ms']:.1f} / {l['max_ms']:.1f} | {errors} | {p.get('stored_events', 0):,} ({p.get('events_rows', 0):,}) | {e2e:,.0f}{complete} | {e2e / copy_rate:.2f} | {d.get('p50_ms', 0):.0f} / {d.get('p99_ms', 0):.0f} | {p.get('drain_after_load_s', 0):.1f} |")
print()

print("CPU over each scenario (load and drain), in cores of the 2 (from /proc; 'anything else' is other work on the machine, e.g. builds):\n")
print("| scenario | wall s | api | worker | notify worker | broker | postgres (all backends) | pulse-bench | anything else | machine busy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    if not os.path.exists(os.path.join(run_dir, name + ".cpu-after")):
        continue
    b, a = kv(os.path.join(run_dir, name + ".cpu-before")), kv(os.path.join(run_dir, name + ".cpu-after"))
    for snapshot in (a, b):
        snapshot.setdefault("broker", snapshot.get("tansu", 0))  # runs from before --broker
        snapshot.setdefault("notify", 0)  # runs from before the notify worker
    user, system, wall = (float(x) for x in open(os.path.join(run_dir, name + ".time")).read().split()[-3:])
    busy = (a["busy"] - b["busy"]) / max(a["all"] - b["all"], 1) * (os.cpu_count() or 2)
    cores = lambda k: (a[k] - b[k]) / wall
    bench = (user + system) / wall
    ours = sum(cores(k) for k in ("api", "worker", "notify", "broker", "postgres")) + bench
    print(f"| {name} | {wall:.1f} | {cores('api'):.2f} | {cores('worker'):.2f} | {cores('notify'):.2f} | {cores('broker'):.2f} | {cores('postgres'):.2f} | {bench:.2f} | {max(busy - ours, 0):.2f} | {busy:.2f} |")
print()

rows = [list(map(int, line.split())) for line in open(os.path.join(run_dir, "memory.txt")) if len(line.split()) == 6]
if rows:
    mb = lambda kb: kb / 1024
    peak_api = max(r[2] for r in rows); peak_worker = max(r[4] for r in rows); peak_broker = max(r[5] for r in rows)
    print(f"Memory (VmHWM, peak resident): api {mb(peak_api):.0f} MB, worker {mb(peak_worker):.0f} MB; broker peak RSS {mb(peak_broker):.0f} MB ({broker}).")
    avg = lambda xs, i: sum(x[i] for x in xs) / max(len(xs), 1) / 1024
    for name in names:
        w = os.path.join(run_dir, name + ".window")
        if not os.path.exists(w):
            continue
        start, end = map(int, open(w).read().split())
        inside = [r for r in rows if start <= r[0] <= end]
        if not inside:
            continue
        line = f"- {name}: peak RSS api {mb(max(r[1] for r in inside)):.0f} MB, worker {mb(max(r[3] for r in inside)):.0f} MB"
        if end - start >= 120:
            first = [r for r in inside if r[0] < start + 60]
            last = [r for r in inside if r[0] > end - 60]
            line += (f"; mean RSS first minute -> last minute: api {avg(first, 1):.0f} -> {avg(last, 1):.0f} MB,"
                     f" worker {avg(first, 3):.0f} -> {avg(last, 3):.0f} MB")
            # Least-squares slope over the last third: warm-up growth vs growth that goes on.
            half = [r for r in inside if r[0] >= end - (end - start) / 3]
            def slope(i):
                n = len(half)
                mt = sum(r[0] for r in half) / n
                mv = sum(r[i] for r in half) / n
                den = sum((r[0] - mt) ** 2 for r in half) or 1
                return sum((r[0] - mt) * (r[i] - mv) for r in half) / den * 60 / 1024
            line += f"; RSS slope over the last third: api {slope(1):+.2f} MB/min, worker {slope(3):+.2f} MB/min"
            minutes = [r for r in inside if (r[0] - start) % 60 == 0]
            line += "\n  - worker RSS each minute (MB): " + ", ".join(f"{r[3] / 1024:.0f}" for r in minutes)
            line += "\n  - api RSS each minute (MB): " + ", ".join(f"{r[1] / 1024:.0f}" for r in minutes)
        print(line)
PY
}

if [[ -n $report_dir ]]; then
    render_report "$report_dir"
    exit 0
fi

command -v jq >/dev/null 2>&1 || need_apt jq
command -v python3 >/dev/null 2>&1 || need_apt python3

run_id=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$PULSE_STATE_DIR/bench/$run_id"
mkdir -p "$RUN_DIR"
BIN="$PULSE_ROOT/target/release"
# Free ports chosen by the kernel, so the run never meets a dev instance or a test broker.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_ADDR=127.0.0.1:$(free_port)
WORKER_ADDR=127.0.0.1:$(free_port)
METRICS_WORKER_ADDR=127.0.0.1:$(free_port)
NOTIFY_WORKER_ADDR=127.0.0.1:$(free_port)
RECEIVER_ADDR=127.0.0.1:$(free_port)
SCHEDULER_ADDR=127.0.0.1:$(free_port)
KAFKA_ADDR=127.0.0.1:$(free_port)
CONTROLLER_PORT=$(free_port)
ADMIN_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
DB_NAME=pulse_bench
DB_URL="postgres://postgres@$PG_HOST:$PG_PORT/$DB_NAME"

pids=()
sampler_pid=""
cleanup() {
    local pid
    [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
    # Reverse start order: api and worker first, the broker last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The measured rows are not needed afterwards; a soak leaves gigabytes of them.
    psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    # So are the broker's logs of them (Apache Kafka keeps them on disk).
    rm -rf "$RUN_DIR/kafka/data"
}
trap cleanup EXIT

# start NAME CMD...: starts CMD in its own session, logs to $RUN_DIR/NAME.log, records its pid.
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$RUN_DIR/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    echo "$pid" >"$RUN_DIR/$name.pid"
}

say "Services (PostgreSQL via scripts/services.sh up)" >&2
"$PULSE_ROOT/scripts/services.sh" up >&2

port_open "${KAFKA_ADDR%:*}" "${KAFKA_ADDR##*:}" && die "$KAFKA_ADDR is already in use"
if [[ $broker == kafka ]]; then
    say "Apache Kafka $PULSE_KAFKA_VERSION on $KAFKA_ADDR (one KRaft node, data on disk), for this run only" >&2
    "$PULSE_ROOT/scripts/install-kafka.sh" >/dev/null
    start broker "$PULSE_ROOT/scripts/kafka-node.sh" "$RUN_DIR/kafka" 1 "${KAFKA_ADDR##*:}" "$CONTROLLER_PORT" \
        "1@127.0.0.1:$CONTROLLER_PORT" "$(kafka_cluster_id)"
    wait_port "Apache Kafka" "${KAFKA_ADDR%:*}" "${KAFKA_ADDR##*:}" 90 "$(cat "$RUN_DIR/broker.pid")" "$RUN_DIR/broker.log"
    echo "Apache Kafka $PULSE_KAFKA_VERSION (one KRaft node, heap ${PULSE_KAFKA_HEAP:-512m}, log on disk)" >"$RUN_DIR/broker.version"
else
    say "Tansu on $KAFKA_ADDR, memory storage, for this run only" >&2
    tansu=$(tansu_bin)
    [[ -n $tansu ]] || tansu=$("$PULSE_ROOT/scripts/install-tansu.sh" | tail -n 1)
    mkdir -p "$RUN_DIR/tansu"
    (cd "$RUN_DIR/tansu" && start broker "$tansu" broker --cluster-id pulse-bench \
        --listener-url "tcp://$KAFKA_ADDR" --advertised-listener-url "tcp://$KAFKA_ADDR" \
        --storage-engine memory://tansu/)
    # The subshell's pids array is lost; take the pid from its file.
    pids+=("$(cat "$RUN_DIR/broker.pid")")
    wait_port Tansu "${KAFKA_ADDR%:*}" "${KAFKA_ADDR##*:}" 30 "$(cat "$RUN_DIR/broker.pid")" "$RUN_DIR/broker.log"
    echo "$("$tansu" --version 2>/dev/null | sed -n 1p || echo tansu) with memory storage (holds every message in RAM)" >"$RUN_DIR/broker.version"
fi
ok "broker pid $(cat "$RUN_DIR/broker.pid")" >&2

if ((build)); then
    say "cargo build --release (pulse-api, pulse-worker, pulse-scheduler, pulse-bench)" >&2
    cargo build --release --bin pulse-api --bin pulse-worker --bin pulse-scheduler --bin pulse-bench >&2 || die "release build failed"
fi
for b in pulse-api pulse-worker pulse-scheduler pulse-bench; do [[ -x $BIN/$b ]] || die "$BIN/$b is missing (run without --no-build)"; done

say "Fresh database $DB_NAME" >&2
psql "$ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >&2
export PULSE_DATABASE_URL="$DB_URL"
export PULSE_KAFKA_BROKERS="$KAFKA_ADDR"
export PULSE_TOPIC_PREFIX="bench-$run_id."
export PULSE_API_ADDR="$API_ADDR" PULSE_WORKER_ADDR="$WORKER_ADDR" PULSE_SCHEDULER_ADDR="$SCHEDULER_ADDR"
export PULSE_JWT_SECRET
PULSE_JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
# The per-key ingest rate limit (default 10,000 requests/s) would cap scenario (b) at its own
# target; the benchmark measures the pipeline, not the limiter.
export PULSE_INGEST_RATE_LIMIT_PER_SEC=10000000
# Stream connections count as reads: --stream-clients opens them all at once.
export PULSE_READ_RATE_LIMIT_PER_SEC=100000
export PULSE_LOG="${PULSE_LOG:-warn}"
# Retention runs when --retention-events says (run-once), not on the serving scheduler's hour.
export PULSE_RETENTION_CRON="0 0 0 1 1 *"
export PULSE_STREAM_PUBLISH="$publish"
# Webhook endpoints of --webhooks point at a receiver on loopback.
export PULSE_WEBHOOK_ALLOW_NETS=127.0.0.0/8
# The email of --alert-rules goes to a capture server on loopback.
SMTP_CAPTURE_PORT=$(free_port)
export PULSE_SMTP_URL="smtp://127.0.0.1:$SMTP_CAPTURE_PORT"
"$BIN/pulse-api" migrate >&2 || die "pulse-api migrate failed"

say "Starting pulse-api, pulse-worker (persist and metrics) and pulse-scheduler (release)" >&2
start api "$BIN/pulse-api"
wait_http pulse-api "http://$API_ADDR/readyz" 90 "$(cat "$RUN_DIR/api.pid")" "$RUN_DIR/api.log"
start worker "$BIN/pulse-worker"
wait_http pulse-worker "http://$WORKER_ADDR/readyz" 90 "$(cat "$RUN_DIR/worker.pid")" "$RUN_DIR/worker.log"
# The metrics worker (named-metric points) runs beside the persist worker, as in production;
# idle unless a scenario sends points.
start metrics-worker env PULSE_WORKER_ADDR="$METRICS_WORKER_ADDR" "$BIN/pulse-worker" metrics
wait_http pulse-worker "http://$METRICS_WORKER_ADDR/readyz" 90 "$(cat "$RUN_DIR/metrics-worker.pid")" "$RUN_DIR/metrics-worker.log"
# The notify worker (webhook delivery) too; idle until --webhooks creates endpoints.
start notify-worker env PULSE_WORKER_ADDR="$NOTIFY_WORKER_ADDR" "$BIN/pulse-worker" notify
wait_http pulse-worker "http://$NOTIFY_WORKER_ADDR/readyz" 90 "$(cat "$RUN_DIR/notify-worker.pid")" "$RUN_DIR/notify-worker.log"
start scheduler "$BIN/pulse-scheduler"
wait_http pulse-scheduler "http://$SCHEDULER_ADDR/readyz" 90 "$(cat "$RUN_DIR/scheduler.pid")" "$RUN_DIR/scheduler.log"
API_PID=$(cat "$RUN_DIR/api.pid")
WORKER_PID=$(cat "$RUN_DIR/worker.pid")
BROKER_PID=$(cat "$RUN_DIR/broker.pid")
NOTIFY_PID=$(cat "$RUN_DIR/notify-worker.pid")
ok "api pid $API_PID, worker pid $WORKER_PID" >&2

project=$("$BIN/pulse-api" admin create-project --org pulse-bench --name "bench-$run_id") \
    || die "pulse-api admin create-project failed"
api_key=$(jq -r .api_key <<<"$project")
project_id=$(jq -r .project_id <<<"$project")
[[ -n $api_key && $api_key != null && -n $project_id && $project_id != null ]] || die "create-project printed no key"
export PULSE_BENCH_API_KEY="$api_key"

# Memory sampler: one line per second "epoch api_rss api_hwm worker_rss worker_hwm broker_rss"
# (kB), until killed or 2 hours pass.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
(
    for ((t = 0; t < 7200; t++)); do
        echo "$EPOCHSECONDS $(status_kb "$API_PID" VmRSS) $(status_kb "$API_PID" VmHWM)" \
            "$(status_kb "$WORKER_PID" VmRSS) $(status_kb "$WORKER_PID" VmHWM) $(status_kb "$BROKER_PID" VmRSS)"
        sleep 1
    done
) >"$RUN_DIR/memory.txt" &
sampler_pid=$!

# cpu_snapshot FILE: CPU seconds used so far by api, worker, the broker and PostgreSQL (live backends
# plus the children the postmaster already reaped), and the machine's busy/total jiffies.
ticks=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_snapshot() {
    local pg=0 pid postmaster
    postmaster=$(head -n 1 /var/lib/postgresql/*/main/postmaster.pid 2>/dev/null | head -n 1)
    for pid in $(pgrep -u postgres -x postgres); do
        pg=$(awk -v a="$pg" -v b="$(proc_cpu "$pid")" 'BEGIN { print a + b }')
    done
    if [[ -n $postmaster ]]; then
        pg=$(awk -v a="$pg" -v t="$ticks" '{ print a + ($16 + $17) / t }' "/proc/$postmaster/stat" 2>/dev/null || echo "$pg")
    fi
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    echo "api=$(proc_cpu "$API_PID") worker=$(proc_cpu "$WORKER_PID") notify=$(proc_cpu "$NOTIFY_PID") broker=$(proc_cpu "$BROKER_PID") postgres=$pg" \
        "busy=$((user + nice + system + irq + softirq + steal)) all=$((user + nice + system + idle + iowait + irq + softirq + steal))" >"$1"
}

# scenario NAME ARGS...: runs pulse-bench load with ARGS, timing its own CPU, with CPU snapshots
# around it; its JSON line lands in $RUN_DIR/NAME.json.
scenario() {
    local name=$1
    shift
    say "Scenario $name: pulse-bench load $*" >&2
    cpu_snapshot "$RUN_DIR/$name.cpu-before"
    local started=$EPOCHSECONDS
    local TIMEFORMAT='%U %S %R'
    { time "$BIN/pulse-bench" load --url "http://$API_ADDR" --database-url "$DB_URL" --project-id "$project_id" \
        --json "$@" >"$RUN_DIR/$name.out" 2>>"$RUN_DIR/$name.err"; } 2>"$RUN_DIR/$name.time" \
        || { cat "$RUN_DIR/$name.err" >&2; die "scenario $name failed"; }
    cpu_snapshot "$RUN_DIR/$name.cpu-after"
    echo "$started $EPOCHSECONDS" >"$RUN_DIR/$name.window"
    tail -n 1 "$RUN_DIR/$name.out" >"$RUN_DIR/$name.json"
    sed '$d' "$RUN_DIR/$name.out" >&2
}

say "COPY baseline ($baseline_rows rows per phase, scratch database)" >&2
"$BIN/pulse-bench" copy-baseline --database-url "$ADMIN_URL" --rows "$baseline_rows" --json >"$RUN_DIR/baseline.out" \
    || die "copy-baseline failed"
tail -n 1 "$RUN_DIR/baseline.out" >"$RUN_DIR/baseline.json"
sed '$d' "$RUN_DIR/baseline.out" >&2

stream_pid=""
if ((stream_clients > 0)); then
    say "$stream_clients live-stream clients (SSE, filter '$stream_filter') connected through the scenarios" >&2
    "$BIN/pulse-bench" stream --url "http://$API_ADDR" --clients "$stream_clients" --filter "$stream_filter" \
        >"$RUN_DIR/stream.json" 2>"$RUN_DIR/stream.err" &
    stream_pid=$!
    pids+=("$stream_pid")
    sleep 3
fi

if ((soak > 0)); then
    scenario soak --batch-size 100 --concurrency "$batch_concurrency" --duration "$soak" --rate "$soak_rate"
else
    scenario batch100 --batch-size 100 --concurrency "$batch_concurrency" --events "$events"
    for c in ${single_concurrency//,/ }; do
        scenario "single-c$c" --batch-size 1 --concurrency "$c" --duration "$single_seconds"
    done
fi
if ((webhooks > 0 && soak == 0)); then
    say "$webhooks webhook endpoints$( ((webhook_dead)) && echo ", one dead") to pulse-bench webhook-receiver on $RECEIVER_ADDR, then scenario (a) again" >&2
    start receiver "$BIN/pulse-bench" webhook-receiver --addr "$RECEIVER_ADDR"
    wait_http pulse-bench "http://$RECEIVER_ADDR/stats" 30 "$(cat "$RUN_DIR/receiver.pid")" "$RUN_DIR/receiver.log"
    dead_url="http://127.0.0.1:$(free_port)/dead"
    for ((i = 0; i < webhooks; i++)); do
        url="http://$RECEIVER_ADDR/hook$i"
        ((webhook_dead && i == 0)) && url=$dead_url
        secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
        psql "$DB_URL" -qX -v ON_ERROR_STOP=1 -c "INSERT INTO webhooks (id, project_id, name, url, event_types, max_attempts, secret)
            VALUES (gen_random_uuid(), '$project_id', 'bench $i', '$url', ARRAY['event.created'], 9, '$secret')" >&2
    done
    curl -fsS -X POST "http://$RECEIVER_ADDR/reset" >/dev/null
    hooks_started=$EPOCHSECONDS
    scenario batch100-webhooks --batch-size 100 --concurrency "$batch_concurrency" --events "$events"
    # Drain: every delivery to the live endpoints done (bounded).
    live="url NOT LIKE '%/dead'"
    for ((t = 0; t < 900; t++)); do
        left=$(psql "$DB_URL" -XAt -c "SELECT (SELECT count(*) FROM webhook_messages) + (SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND w.$live)")
        [[ $left == 0 ]] && break
        sleep 1
    done
    drained=$((EPOCHSECONDS - hooks_started))
    curl -fsS "http://$RECEIVER_ADDR/stats" >"$RUN_DIR/webhooks.json"
    counts=$(psql "$DB_URL" -XAt -c "SELECT string_agg(s || ' ' || n, ', ') FROM (SELECT CASE WHEN w.$live THEN 'live ' ELSE 'dead ' END || d.status AS s, count(*) AS n FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id GROUP BY 1 ORDER BY 1) x")
    echo "$webhooks endpoints$( ((webhook_dead)) && echo " (one dead: connection refused)"), deliveries: $counts; all live deliveries done ${drained} s after the scenario started (outbox left: ${left})" >"$RUN_DIR/webhooks.txt"
    # The delay at a rate the endpoints keep up with.
    curl -fsS -X POST "http://$RECEIVER_ADDR/reset" >/dev/null
    scenario paced-webhooks --batch-size 100 --concurrency 4 --duration 30 --rate "$webhook_rate"
    for ((t = 0; t < 300; t++)); do
        left=$(psql "$DB_URL" -XAt -c "SELECT (SELECT count(*) FROM webhook_messages) + (SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND w.$live)")
        [[ $left == 0 ]] && break
        sleep 1
    done
    curl -fsS "http://$RECEIVER_ADDR/stats" >"$RUN_DIR/webhooks-paced.json"
fi
if ((alert_rules > 0 && soak == 0)); then
    say "$alert_rules alert rules on the project, then scenario (a) again" >&2
    # The default rule of the project made by `admin create-project` counts among them.
    psql "$DB_URL" -qX -v ON_ERROR_STOP=1 >&2 <<SQL
INSERT INTO alert_rules (id, project_id, name, kind, filter_event_type, filter_source, window_s, op, threshold, min_events, emails)
SELECT gen_random_uuid(), '$project_id', 'bench rule ' || i,
       (ARRAY['count', 'count', 'error_ratio', 'absent'])[1 + i % 4],
       (ARRAY['page_view', 'click', 'session_start', 'search', 'add_to_cart', 'purchase', 'api_call', 'error'])[1 + i % 8],
       CASE WHEN i % 3 = 0 THEN (ARRAY['web', 'ios', 'android', 'backend'])[1 + i % 4] END,
       (ARRAY[60, 300, 900, 3600])[1 + i % 4],
       'above', CASE WHEN i % 4 = 2 THEN 0.99 ELSE 1e12 END, 10, ARRAY['bench@example.com']
FROM generate_series(1, $alert_rules - (SELECT count(*) FROM alert_rules WHERE project_id = '$project_id')) AS i;
SQL
    scenario batch100-alerts --batch-size 100 --concurrency "$batch_concurrency" --events "$events"
    evaluations=$(curl -fsS "http://$NOTIFY_WORKER_ADDR/metrics" | awk '/^pulse_alert_evaluations_total/ { print $2 }')
    # The delay to the email: one rule per sample, firing on its first event.
    say "Breach -> email delay (20 samples, SMTP capture on 127.0.0.1:$SMTP_CAPTURE_PORT)" >&2
    mkdir -p "$RUN_DIR/mail"
    start smtp-capture /usr/bin/python3 scripts/smtp-capture.py --port "$SMTP_CAPTURE_PORT" --dir "$RUN_DIR/mail"
    wait_port "SMTP capture" 127.0.0.1 "$SMTP_CAPTURE_PORT" 20 "$(cat "$RUN_DIR/smtp-capture.pid")" "$RUN_DIR/smtp-capture.log"
    psql "$DB_URL" -qX -v ON_ERROR_STOP=1 -c "INSERT INTO alert_rules (id, project_id, name, kind, filter_event_type, window_s, op, threshold, emails)
        SELECT gen_random_uuid(), '$project_id', 'breach ' || i, 'count', 'breach-' || i, 60, 'above', 0, ARRAY['delay@example.com']
        FROM generate_series(1, 20) AS i" >&2
    sleep 3
    : >"$RUN_DIR/alert-delays.txt"
    for ((i = 1; i <= 20; i++)); do
        sent=$(date +%s%3N)
        curl -fsS -X POST "http://$API_ADDR/v1/events" -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
            -d "{\"event_type\": \"breach-$i\"}" >/dev/null || die "breach event $i refused"
        for ((t = 0; t < 600; t++)); do
            (($(find "$RUN_DIR/mail" -name '*.json' | wc -l) >= i)) && break
            sleep 0.05
        done
        echo $(($(date +%s%3N) - sent)) >>"$RUN_DIR/alert-delays.txt"
    done
    python3 - "$RUN_DIR" "$alert_rules" "${evaluations:-0}" >"$RUN_DIR/alerts.txt" <<'PY'
import sys
run_dir, rules, evaluations = sys.argv[1], sys.argv[2], sys.argv[3]
delays = sorted(int(line) for line in open(f"{run_dir}/alert-delays.txt") if line.strip())
pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
print(f"{rules} rules ({float(evaluations):,.0f} evaluations by the notify worker by the end of scenario (a)); breaching event accepted -> its email at the SMTP server:"
      f" p50 / p99 / max {pick(0.5)} / {pick(0.99)} / {delays[-1]} ms over {len(delays)} samples")
PY
fi
if ((retention_events > 0 && soak == 0)); then
    say "Retention: $retention_events old events seeded with SQL, then paced runs at $retention_rate events/s without and with a retention run" >&2
    short=$("$BIN/pulse-api" admin create-project --org pulse-bench --name "bench-$run_id-short") \
        || die "pulse-api admin create-project failed"
    short_id=$(jq -r .project_id <<<"$short")
    # The old rows are other projects' (the paced runs count the bench project's rows).
    long=$("$BIN/pulse-api" admin create-project --org pulse-bench --name "bench-$run_id-long") \
        || die "pulse-api admin create-project failed"
    long_id=$(jq -r .project_id <<<"$long")
    per_day=$((retention_events / 20))
    seed_started=$(date +%s%3N)
    psql "$DB_URL" -qX -v ON_ERROR_STOP=1 >&2 <<SQL
UPDATE projects SET retention_days = 3 WHERE id = '$short_id';
UPDATE projects SET retention_days = 30 WHERE id IN ('$project_id', '$long_id');
DO \$\$
DECLARE day date;
BEGIN
  FOR back IN 4..40 LOOP
    day := (now() AT TIME ZONE 'UTC')::date - back;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
      'events_p' || to_char(day, 'YYYYMMDD'), day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
  END LOOP;
END \$\$;
SQL
    # Ten days of each: the short project's 4..13 days ago (kept partitions: batch deletes), the
    # 30-day project's 31..40 days ago (nobody keeps them: dropped whole).
    for ((d = 0; d < 10; d++)); do
        for pair in "$short_id:$((4 + d))" "$long_id:$((31 + d))"; do
            psql "$DB_URL" -qX -v ON_ERROR_STOP=1 >&2 <<SQL
WITH rows AS (
    SELECT gen_random_uuid() AS id,
           ((now() AT TIME ZONE 'UTC')::date - ${pair#*:})::timestamp AT TIME ZONE 'UTC' + i * (interval '86399 seconds' / $per_day) AS ts, i
    FROM generate_series(1, $per_day) AS i),
ids AS (INSERT INTO event_ids (id, project_id, "timestamp") SELECT id, '${pair%%:*}', ts FROM rows)
INSERT INTO events (id, project_id, "timestamp", received_at, event_type, source, user_id, data)
SELECT id, '${pair%%:*}', ts, ts,
       (ARRAY['page_view', 'click', 'session_start', 'search', 'add_to_cart', 'purchase', 'api_call', 'error'])[1 + i % 8],
       (ARRAY['web', 'ios', 'android', 'backend'])[1 + i % 4], 'user-' || (i % 5000),
       jsonb_build_object('path', '/p/' || (i % 100), 'n', i)
FROM rows;
SQL
        done
        say "  seeded day $((d + 1)) of 10" >&2
    done
    seed_ms=$(($(date +%s%3N) - seed_started))
    seeded=$(psql "$DB_URL" -XAt -c "SELECT count(*) FROM events WHERE \"timestamp\" < now() - interval '3 days'")
    scenario paced-before-retention --batch-size 100 --concurrency 4 --duration "$retention_seconds" --rate "$retention_rate"
    (
        started=$(date +%s%3N)
        "$BIN/pulse-scheduler" run-once retention >"$RUN_DIR/retention.out" 2>"$RUN_DIR/retention.err"
        echo "$? $(($(date +%s%3N) - started))" >"$RUN_DIR/retention.status"
    ) &
    retention_pid=$!
    scenario paced-with-retention --batch-size 100 --concurrency 4 --duration "$retention_seconds" --rate "$retention_rate"
    during=1
    kill -0 "$retention_pid" 2>/dev/null || during=0
    wait "$retention_pid"
    read -r retention_rc retention_ms <"$RUN_DIR/retention.status"
    ((retention_rc == 0)) || { cat "$RUN_DIR/retention.err" >&2; die "retention run failed"; }
    left=$(psql "$DB_URL" -XAt -c "SELECT count(*) FROM events WHERE (project_id = '$short_id' AND \"timestamp\" < now() - interval '3 days') OR (project_id = '$long_id' AND \"timestamp\" < now() - interval '30 days')")
    ids_left=$(psql "$DB_URL" -XAt -c "SELECT count(*) FROM event_ids WHERE \"timestamp\" < now() - interval '3 days' AND project_id = '$short_id'")
    summary=$(sed -n 's/^retention: //p' "$RUN_DIR/retention.out")
    python3 - "$seeded" "$seed_ms" "$retention_ms" "$during" "$left" "$ids_left" "$summary" >"$RUN_DIR/retention.txt" <<'PY'
import sys
seeded, seed_ms, ms, during, left, ids_left, summary = sys.argv[1:]
seeded, seed_ms, ms = int(seeded), int(seed_ms), int(ms)
where = "and was still running when the paced run ended" if during == "1" else "inside the paced run"
print(f"{seeded:,} old events seeded with SQL ({seeded / (seed_ms / 1000):,.0f} rows/s with their ids); `run-once retention` took {ms / 1000:.1f} s"
      f" ({seeded / (ms / 1000):,.0f} removed events/s) {where}; rows past retention left: {left} events, {ids_left} ids;"
      f" the run's summary: {summary}")
PY
fi
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""
if [[ -n $stream_pid ]]; then
    kill -TERM "$stream_pid" 2>/dev/null || true
    wait "$stream_pid" 2>/dev/null || true
fi
echo "stream: publish=$publish clients=$stream_clients" >"$RUN_DIR/stream.txt"

say "Report" >&2
echo "$command_line" >"$RUN_DIR/command"
# The rollups at the end: rows, and deltas the scheduler had not folded yet (older trees have no
# compaction: every row is a delta there).
psql "$DB_URL" -XAt -c "SELECT count(*) || ' rollup rows, ' || count(*) FILTER (WHERE NOT compacted) || ' of them deltas not folded yet' FROM event_rollups" \
    >"$RUN_DIR/rollups.txt" 2>/dev/null || psql "$DB_URL" -XAt -c "SELECT count(*) || ' rollup rows (no compaction in this build)' FROM event_rollups" >"$RUN_DIR/rollups.txt" 2>/dev/null || true
render_report "$RUN_DIR" >"$RUN_DIR/results.md"
cat "$RUN_DIR/results.md"
ok "results in $RUN_DIR/results.md" >&2

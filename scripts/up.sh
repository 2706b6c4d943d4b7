#!/usr/bin/env bash
# scripts/up.sh — Pulse running on this machine, from nothing, and a demonstration of the
# pipeline:
#
#   1. installs missing Debian packages (PostgreSQL, the SMTP sink, the C build tools)
#   2. installs the broker into /opt/pulse-cache (once): Apache Kafka's jars from Maven Central
#      (under a minute), or with PULSE_BROKER=tansu the light Tansu broker (compiled, ~15 min)
#   3. starts PostgreSQL, the broker and the SMTP sink (scripts/services.sh up)
#   4. builds the release binaries and migrates the `pulse` database
#   5. starts pulse-api, pulse-worker (persist), pulse-worker metrics, pulse-worker notify and
#      pulse-scheduler in the background (pids and logs in .pulse/) and waits for each /readyz
#   6. creates a demo project, opens the live stream (SSE, curl -N), sends one event and a
#      batch with curl, waits until the worker stored them, prints them from the `events` table
#      and shows the three stream messages they produced; sends a named-metric point and
#      reads it back from GET /v1/metrics/{name}/latest
#   7. registers a demo user, creates a webhook endpoint to a local receiver
#      (scripts/webhook-receiver.py), sends an event and shows the signed delivery the receiver
#      got (signature checked there with Python's hmac) and the delivery log
#   8. creates an alert rule (more than 2 errors a minute, mailed to the demo user), sends three
#      error events and shows the alert email the SMTP sink printed and the firing incident
#
# Any PULSE_* variable set in the environment (or in .env) is passed on; the database defaults
# to postgres://postgres@127.0.0.1:5432/pulse. Stop everything with scripts/down.sh.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PULSE_ROOT"

export PULSE_DATABASE_URL="${PULSE_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/pulse}"
# The api signs access tokens with PULSE_JWT_SECRET; for development a random one is made once
# and kept in .pulse/ (gitignored), so tokens survive a restart.
if [[ -z ${PULSE_JWT_SECRET:-} ]]; then
    secret_file="$PULSE_STATE_DIR/jwt-secret"
    [[ -s $secret_file ]] || (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$secret_file")
    PULSE_JWT_SECRET=$(cat "$secret_file")
fi
export PULSE_JWT_SECRET
export PULSE_KAFKA_BROKERS="${PULSE_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}"
API_ADDR="${PULSE_API_ADDR:-127.0.0.1:8080}"
WORKER_ADDR="${PULSE_WORKER_ADDR:-127.0.0.1:9101}"
# The metrics worker (`pulse-worker metrics`) is a second process with its own health address.
METRICS_WORKER_ADDR="${PULSE_METRICS_WORKER_ADDR:-127.0.0.1:9103}"
SCHEDULER_ADDR="${PULSE_SCHEDULER_ADDR:-127.0.0.1:9102}"
# The notify worker (`pulse-worker notify`, webhook delivery) is another one.
NOTIFY_WORKER_ADDR="${PULSE_NOTIFY_WORKER_ADDR:-127.0.0.1:9104}"
RECEIVER_ADDR="${PULSE_DEMO_RECEIVER_ADDR:-127.0.0.1:9300}"
# Development only: webhooks may reach loopback (the demo receiver). Production refuses every
# non-public address unless PULSE_WEBHOOK_ALLOW_NETS lists it.
export PULSE_WEBHOOK_ALLOW_NETS="${PULSE_WEBHOOK_ALLOW_NETS:-127.0.0.0/8,::1/128}"
# The same for uptime monitors: the demo monitor checks the api's own /healthz.
export PULSE_MONITOR_ALLOW_NETS="${PULSE_MONITOR_ALLOW_NETS:-127.0.0.0/8,::1/128}"
BIN_DIR="$PULSE_ROOT/target/release"
start_all=$SECONDS

say "System packages"
need_apt "${PULSE_APT_PACKAGES[@]}" jq
ok "installed"

say "Broker ($PULSE_BROKER)"
if [[ $PULSE_BROKER == kafka ]]; then
    ok "Apache Kafka in $("$PULSE_ROOT/scripts/install-kafka.sh" | tail -n 1)"
else
    tansu=$(tansu_bin)
    [[ -n $tansu ]] || tansu=$("$PULSE_ROOT/scripts/install-tansu.sh" | tail -n 1)
    ok "$tansu"
fi

say "Services"
"$PULSE_ROOT/scripts/services.sh" up

say "Building the release binaries (cargo build --release; the first build takes a few minutes)"
build_start=$SECONDS
cargo build --release --bin pulse-api --bin pulse-worker --bin pulse-scheduler \
    || die "cargo build --release failed"
ok "built in $(elapsed "$build_start")"

say "Migrating $PULSE_DATABASE_URL"
PULSE_LOG=warn "$BIN_DIR/pulse-api" migrate || die "pulse-api migrate failed"

# start_pulse NAME ADDR [BIN ARG...]: (re)starts target/release/pulse-BIN (default NAME) with ARGs
# and waits for its /readyz. A worker gets ADDR as its PULSE_WORKER_ADDR.
start_pulse() {
    local name=$1 addr=$2 bin=${3:-$1}
    shift $(($# < 3 ? $# : 3))
    local pidfile="$PULSE_STATE_DIR/$name.pid" log="$PULSE_STATE_DIR/$name.log"
    if pid_alive "$pidfile"; then
        # Restart, so the process runs the binary just built.
        stop_pidfile "pulse-$name" "$pidfile" 40
    fi
    if port_open "${addr%:*}" "${addr##*:}"; then
        die "pulse-$name: $addr is already in use by another process (stop it, or set its PULSE_*_ADDR)"
    fi
    local pid
    # Logs go to files: no ANSI colours in them.
    local own=()
    [[ $bin == worker ]] && own=(PULSE_WORKER_ADDR="$addr")
    pid=$(start_bg "$name" "$log" env NO_COLOR=1 "${own[@]}" "$BIN_DIR/pulse-$bin" "$@")
    wait_http "pulse-$name" "http://$addr/readyz" 90 "$pid" "$log"
    ok "pulse-$name ready on http://$addr (pid $pid, log $log)"
}

say "Starting Pulse"
export PULSE_API_ADDR="$API_ADDR" PULSE_WORKER_ADDR="$WORKER_ADDR" PULSE_SCHEDULER_ADDR="$SCHEDULER_ADDR"
start_pulse api "$API_ADDR"
start_pulse worker "$WORKER_ADDR"
start_pulse metrics-worker "$METRICS_WORKER_ADDR" worker metrics
start_pulse notify-worker "$NOTIFY_WORKER_ADDR" worker notify
start_pulse scheduler "$SCHEDULER_ADDR"

say "Demo: a project and its API key"
echo "\$ pulse-api admin create-project --org demo --name demo"
# Finds or creates the organization and project, and issues a new key each time.
project_json=$(PULSE_LOG=warn "$BIN_DIR/pulse-api" admin create-project --org demo --name demo) \
    || die "pulse-api admin create-project failed"
echo "$project_json" | jq .
api_key=$(echo "$project_json" | jq -r '.api_key // empty')
[[ -n $api_key ]] || die "create-project printed no api_key"
# The key is shown once; keep it for later curl commands (.pulse/ is gitignored).
echo "$project_json" >"$PULSE_STATE_DIR/demo-project.json"

uuid() { cat /proc/sys/kernel/random/uuid; }
id1=$(uuid) id2=$(uuid) id3=$(uuid)
base="http://$API_ADDR"

say "Demo: the live stream, opened before the events are sent"
stream_log="$PULSE_STATE_DIR/demo-stream.txt"
echo "\$ curl -N $base/v1/stream/sse -H 'Authorization: Bearer \$KEY' &"
curl -sS -N --max-time 60 "$base/v1/stream/sse" -H "Authorization: Bearer $api_key" >"$stream_log" 2>&1 &
stream_pid=$!
deadline=$((SECONDS + 10))
until grep -q '^: connected' "$stream_log" 2>/dev/null; do
    ((SECONDS < deadline)) || die "the live stream did not answer within 10s; see $stream_log and $PULSE_STATE_DIR/api.log"
    sleep 0.2
done
ok "connected"

say "Demo: one event"
single=$(
    cat <<JSON
{"id": "$id1", "event_type": "signup", "source": "up.sh", "user_id": "user-1", "tags": ["demo"], "data": {"plan": "free"}}
JSON
)
echo "\$ curl -X POST $base/v1/events -H 'Authorization: Bearer \$KEY' -H 'Content-Type: application/json' -d '$single'"
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/events" \
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' -d "$single" \
    || die "POST /v1/events failed"
echo

say "Demo: a batch"
batch=$(
    cat <<JSON
{"events": [
  {"id": "$id2", "event_type": "page_view", "source": "up.sh", "user_id": "user-1", "data": {"path": "/pricing"}},
  {"id": "$id3", "event_type": "checkout", "source": "up.sh", "user_id": "user-1", "duration_ms": 1250, "status": "ok", "data": {"amount": 42}}
]}
JSON
)
echo "\$ curl -X POST $base/v1/events/batch -H 'Authorization: Bearer \$KEY' -H 'Content-Type: application/json' -d '$(echo "$batch" | tr -d '\n')'"
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/events/batch" \
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' -d "$batch" \
    || die "POST /v1/events/batch failed"
echo

say "Demo: waiting for the worker to store the events"
ids="'$id1','$id2','$id3'"
deadline=$((SECONDS + 60))
until [[ $(psql "$PULSE_DATABASE_URL" -tAqc "SELECT count(*) FROM events WHERE id IN ($ids)") == 3 ]]; do
    ((SECONDS < deadline)) || die "the 3 events were not stored within 60s; see $PULSE_STATE_DIR/worker.log"
    sleep 0.5
done
echo "\$ psql $PULSE_DATABASE_URL -c 'SELECT ... FROM events'"
psql "$PULSE_DATABASE_URL" -P pager=off -c \
    "SELECT id, event_type, source, user_id, \"timestamp\", data FROM events WHERE id IN ($ids) ORDER BY \"timestamp\", id"

say "Demo: what the live stream received (each event once it was stored)"
deadline=$((SECONDS + 20))
until [[ $(grep -c '^event: event' "$stream_log") -ge 3 ]]; do
    ((SECONDS < deadline)) || die "the live stream did not deliver the 3 events within 20s; see $stream_log"
    sleep 0.2
done
kill "$stream_pid" 2>/dev/null || true
grep '^data: ' "$stream_log" | sed 's/^data: //' | jq -c '{type, id: .data.id, event_type: .data.event_type}'

say "Demo: a named-metric point"
point='{"name": "demo.temperature", "value": 21.5, "labels": {"room": "lab"}}'
echo "\$ curl -X POST $base/v1/metrics -H 'Authorization: Bearer \$KEY' -H 'Content-Type: application/json' -d '$point'"
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/metrics" \
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' -d "$point" \
    || die "POST /v1/metrics failed"
echo
# The demo key has the `read` scope too: read the point back once the metrics worker stored it.
latest="$base/v1/metrics/demo.temperature/latest"
deadline=$((SECONDS + 60))
until curl -sS --fail --max-time 5 -o /dev/null "$latest" -H "Authorization: Bearer $api_key" 2>/dev/null; do
    ((SECONDS < deadline)) || die "the metric point was not stored within 60s; see $PULSE_STATE_DIR/metrics-worker.log"
    sleep 0.5
done
echo "\$ curl $latest -H 'Authorization: Bearer \$KEY'"
curl -sS --fail-with-body --max-time 15 "$latest" -H "Authorization: Bearer $api_key" | jq .

say "Demo: a signed webhook"
receiver_log="$PULSE_STATE_DIR/demo-webhooks.jsonl"
: >"$receiver_log"
email="demo-$(date +%s)@example.com"
echo "\$ curl -X POST $base/v1/auth/register -d '{\"email\": \"$email\", ...}'"
session=$(curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\": \"$email\", \"password\": \"demo password 1234\", \"name\": \"Demo\"}") || die "register failed"
token=$(jq -r .access_token <<<"$session")
org=$(jq -r .organization.id <<<"$session")
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
hook_project=$(curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/projects" "${auth[@]}" \
    -d "{\"organization_id\": \"$org\", \"name\": \"webhooks demo\"}" | jq -r .id) || die "create project failed"
hook_key=$(curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/projects/$hook_project/api-keys" "${auth[@]}" \
    -d '{"name": "demo"}' | jq -r .key) || die "create key failed"
hook_body="{\"name\": \"demo receiver\", \"url\": \"http://$RECEIVER_ADDR/hooks\", \"event_types\": [\"event.created\"], \"filter\": {\"event_types\": [\"signup\"]}}"
echo "\$ curl -X POST $base/v1/projects/$hook_project/webhooks -H 'Authorization: Bearer \$TOKEN' -d '$hook_body'"
hook=$(curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/projects/$hook_project/webhooks" "${auth[@]}" -d "$hook_body") \
    || die "create webhook failed"
jq '{id, url, event_types, filter, enabled, secret}' <<<"$hook"
hook_id=$(jq -r .id <<<"$hook")
if pid_alive "$PULSE_STATE_DIR/demo-receiver.pid"; then stop_pidfile demo-receiver "$PULSE_STATE_DIR/demo-receiver.pid" 10; fi
receiver_pid=$(WEBHOOK_SECRET=$(jq -r .secret <<<"$hook") start_bg demo-receiver "$PULSE_STATE_DIR/demo-receiver.log" \
    python3 "$PULSE_ROOT/scripts/webhook-receiver.py" "$RECEIVER_ADDR" "$receiver_log")
wait_port "demo receiver" "${RECEIVER_ADDR%:*}" "${RECEIVER_ADDR##*:}" 20 "$receiver_pid" "$PULSE_STATE_DIR/demo-receiver.log"
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/events/batch" -H "Authorization: Bearer $hook_key" \
    -H 'Content-Type: application/json' \
    -d '{"events": [{"event_type": "signup", "user_id": "user-7"}, {"event_type": "page_view", "user_id": "user-7"}]}' >/dev/null \
    || die "POST /v1/events/batch (webhooks demo) failed"
deadline=$((SECONDS + 60))
until [[ -s $receiver_log ]]; do
    ((SECONDS < deadline)) || die "no webhook arrived within 60s; see $PULSE_STATE_DIR/notify-worker.log"
    sleep 0.5
done
echo "What the receiver got (the signup passed the endpoint's filter, the page_view did not):"
head -n 1 "$receiver_log" | jq '{"webhook-id", "webhook-timestamp", "webhook-signature", signature_verified, type: .body.type, events: [.body.data.events[] | {id, event_type, user_id}]}'
jq -e -s '.[0].signature_verified' "$receiver_log" >/dev/null || die "the webhook signature did not verify"
echo "\$ curl $base/v1/projects/$hook_project/webhooks/$hook_id/deliveries -H 'Authorization: Bearer \$TOKEN'"
curl -sS --fail-with-body --max-time 15 "$base/v1/projects/$hook_project/webhooks/$hook_id/deliveries" "${auth[@]}" \
    | jq '[.data[] | {id, message_id, type, status, attempts, event_count}]'

say "Demo: an alert rule and its email"
smtp_log="$PULSE_STATE_DIR/smtp.log"
rule_body="{\"name\": \"demo errors\", \"cooldown_s\": 300, \"condition\": {\"kind\": \"count\", \"filter\": {\"status\": \"error\"}, \"window_s\": 60, \"op\": \"above\", \"threshold\": 2}, \"channels\": {\"emails\": [\"$email\"], \"webhook_ids\": [\"$hook_id\"]}}"
echo "\$ curl -X POST $base/v1/projects/$hook_project/alerts -H 'Authorization: Bearer \$TOKEN' -d '$rule_body'"
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/projects/$hook_project/alerts" "${auth[@]}" -d "$rule_body" \
    | jq '{id, name, state, condition, channels}' || die "create alert rule failed"
fired_before=$(grep -c "FIRING: demo errors" "$smtp_log" 2>/dev/null || true)
curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/events/batch" -H "Authorization: Bearer $hook_key" \
    -H 'Content-Type: application/json' \
    -d '{"events": [{"event_type": "checkout", "status": "error"}, {"event_type": "checkout", "status": "error"}, {"event_type": "checkout", "status": "error"}]}' >/dev/null \
    || die "POST /v1/events/batch (alerts demo) failed"
deadline=$((SECONDS + 60))
until (($(grep -c "FIRING: demo errors" "$smtp_log" 2>/dev/null || true) > ${fired_before:-0})); do
    ((SECONDS < deadline)) || die "no alert email reached the SMTP sink within 60s; see $PULSE_STATE_DIR/notify-worker.log"
    sleep 0.5
done
echo "Three errors in a minute breached the rule; the SMTP sink got (from .pulse/smtp.log):"
grep -E "^(Subject|To|Message-ID): " "$smtp_log" | tail -n 3
echo "\$ curl $base/v1/projects/$hook_project/incidents?state=firing -H 'Authorization: Bearer \$TOKEN'"
curl -sS --fail-with-body --max-time 15 "$base/v1/projects/$hook_project/incidents?state=firing" "${auth[@]}" \
    | jq '[.data[] | {id, alert_name, state, observed, threshold, window_s, started_at}]'

say "Demo: an uptime monitor, its check and the public status page"
monitor_body="{\"name\": \"demo api\", \"url\": \"http://$API_ADDR/healthz\", \"interval_s\": 10, \"failures_before_down\": 2, \"channels\": {\"emails\": [\"$email\"]}}"
echo "\$ curl -X POST $base/v1/projects/$hook_project/monitors -H 'Authorization: Bearer \$TOKEN' -d '$monitor_body'"
monitor=$(curl -sS --fail-with-body --max-time 15 -X POST "$base/v1/projects/$hook_project/monitors" "${auth[@]}" -d "$monitor_body") \
    || die "create monitor failed"
jq '{id, name, url, interval_s, state, breaker, next_check_at}' <<<"$monitor"
monitor_id=$(jq -r .id <<<"$monitor")
echo "\$ curl -X POST $base/v1/projects/$hook_project/monitors/$monitor_id/check -H 'Authorization: Bearer \$TOKEN'"
curl -sS --fail-with-body --max-time 30 -X POST "$base/v1/projects/$hook_project/monitors/$monitor_id/check" "${auth[@]}" \
    | jq '{state, check: .check | {ok, status_code, latency_ms, error_class}}' || die "check now failed"
deadline=$((SECONDS + 60))
until (($(psql "$PULSE_DATABASE_URL" -XAt -c "SELECT count(*) FROM monitor_checks WHERE monitor_id = '$monitor_id' AND NOT manual") > 0)); do
    ((SECONDS < deadline)) || die "the scheduler made no check within 60s; see $PULSE_STATE_DIR/scheduler.log"
    sleep 0.5
done
echo "The scheduler checked it too:"
curl -sS --fail-with-body --max-time 15 "$base/v1/projects/$hook_project/monitors/$monitor_id/checks?limit=2" "${auth[@]}" \
    | jq '[.data[] | {checked_at, ok, status_code, latency_ms, manual}]'
slug="demo-$(date +%s)"
echo "\$ curl -X PATCH $base/v1/projects/$hook_project -d '{\"status_page\": {\"enabled\": true, \"slug\": \"$slug\"}}'"
curl -sS --fail-with-body --max-time 15 -X PATCH "$base/v1/projects/$hook_project" "${auth[@]}" \
    -d "{\"status_page\": {\"enabled\": true, \"slug\": \"$slug\"}}" | jq .status_page || die "enable status page failed"
echo "\$ curl $base/v1/status/$slug   # no sign-in"
curl -sS --fail-with-body --max-time 15 "$base/v1/status/$slug" | jq '.monitors[] | {name, state, today: .days[-1]}' \
    || die "status page failed"

cat <<EOF

Pulse is running ($(elapsed "$start_all")):
  api        http://$API_ADDR        (POST /v1/events, /v1/events/batch; management /v1/...;
                                              API docs /docs; /healthz /readyz /metrics)
  worker     http://$WORKER_ADDR/metrics
  metrics    http://$METRICS_WORKER_ADDR/metrics   (pulse-worker metrics: named-metric points)
  notify     http://$NOTIFY_WORKER_ADDR/metrics   (pulse-worker notify: webhooks, alert rules, email)
  scheduler  http://$SCHEDULER_ADDR/metrics
  database   $PULSE_DATABASE_URL
  kafka      $PULSE_KAFKA_BROKERS      smtp sink $SMTP_HOST:$SMTP_PORT (mails in .pulse/smtp.log)
  logs       .pulse/api.log .pulse/worker.log .pulse/metrics-worker.log .pulse/notify-worker.log .pulse/scheduler.log

Demo API key (shown once, also saved in .pulse/demo-project.json):
  $api_key

Try:
  curl -X POST http://$API_ADDR/v1/events -H "Authorization: Bearer $api_key" \\
       -H 'Content-Type: application/json' -d '{"event_type": "hello"}'
  curl -N http://$API_ADDR/v1/stream/sse -H "Authorization: Bearer $api_key"   # live stream

Stop everything: scripts/down.sh
EOF

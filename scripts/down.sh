#!/usr/bin/env bash
# scripts/down.sh — stops what scripts/up.sh started: the Pulse processes (SIGTERM, so each
# shuts down gracefully: the api flushes its producer, workers finish or abandon their batch),
# then the services scripts/services.sh started. Anything it did not start is left alone.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

say "Stopping Pulse"
# The api first, so nothing new is accepted while the workers drain.
grace=$((${PULSE_SHUTDOWN_TIMEOUT_SECS:-30} + 10))
for name in api worker metrics-worker notify-worker scheduler demo-receiver; do
    stop_pidfile "pulse-$name" "$PULSE_STATE_DIR/$name.pid" "$grace"
done
"$PULSE_ROOT/scripts/services.sh" down

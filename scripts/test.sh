#!/usr/bin/env bash
# scripts/test.sh — formatting, lints and the whole test suite, against local services.
#
# Ensures PostgreSQL (127.0.0.1:5432) and the shared test broker (Apache Kafka on 127.0.0.1:9092,
# PULSE_BROKER=kafka; tests that kill brokers start their own Kafka nodes) are up, then runs
#   cargo fmt --all -- --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo build --workspace --all-targets      (tests spawn target/debug/pulse-* binaries)
#   cargo nextest run --workspace              (or cargo test --workspace without nextest),
#                                              PULSE_TEST_THREADS tests at once (default 4)
#   scripts/api-fuzz.sh                        schemathesis against the OpenAPI document
#                                              (whole runs only; PULSE_FUZZ=0 skips it)
# A formatting or lint failure does not skip the tests; the exit code is the tests' own when
# they fail, 1 when only fmt/clippy/the fuzz run failed, 0 when all passed.
#
# Environment for the test kit (testkit/src/lib.rs), each overridable:
#   PULSE_TEST_DATABASE_URL   maintenance database; each test clones its own database from it
#   PULSE_TEST_KAFKA_BROKERS  shared broker; each test uses its own topic prefix
#   PULSE_KAFKA_HOME          the Apache Kafka install tests start their own brokers from
# Extra arguments go to the test runner: scripts/test.sh -p pulse-api ingest
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PULSE_ROOT"

export PULSE_TEST_DATABASE_URL="${PULSE_TEST_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/postgres}"
export PULSE_TEST_KAFKA_BROKERS="${PULSE_TEST_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}"
# Tests at once. Each fault test runs JVM brokers and Pulse processes of its own; on 2 cores,
# 4 at a time keeps a debug-build run well inside CI's budget without starving them.
TEST_THREADS="${PULSE_TEST_THREADS:-4}"
# Bounds the test run so a hung test cannot eat a CI run's whole budget.
TEST_TIMEOUT="${PULSE_TEST_TIMEOUT:-45m}"

total_start=$SECONDS
phase_start=$SECONDS
phase() {
    say "$1"
    phase_start=$SECONDS
}
phase_done() { ok "$1 ($(elapsed "$phase_start"))"; }

phase "Services"
# Promises are proven on the broker production runs: the shared test broker is Apache Kafka
# whatever PULSE_BROKER says, so a Tansu left on 9092 by a development session is refused.
PULSE_KAFKA_HOME=$("$PULSE_ROOT/scripts/install-kafka.sh" | tail -n 1)
export PULSE_KAFKA_HOME
PULSE_BROKER=kafka "$PULSE_ROOT/scripts/services.sh" up
if pid_alive "$PULSE_STATE_DIR/tansu.pid"; then
    die "Tansu holds $KAFKA_HOST:$KAFKA_PORT; stop it (scripts/services.sh down) so the tests run on Apache Kafka"
fi
phase_done "services ready"

failed=()

phase "cargo fmt --all -- --check"
if cargo fmt --all -- --check; then phase_done "formatted"; else failed+=(fmt); fi

phase "cargo clippy --workspace --all-targets -- -D warnings"
if cargo clippy --workspace --all-targets --quiet -- -D warnings; then phase_done "no lints"; else failed+=(clippy); fi

phase "scripts/check-docs.py (README and docker-compose.yml against shared/src/config/mod.rs)"
# A warning, not a failure: a new variable in config.rs must not fail everyone's run before
# the README catches up.
if python3 scripts/check-docs.py; then phase_done "docs agree"; else echo "    warning: the docs disagree with shared/src/config/mod.rs (above)"; fi

# The Docker build uses --locked; a Cargo.lock that does not match the manifests breaks it.
host=$(rustc -vV | sed -n 's/^host: //p')
if ! cargo metadata --locked --filter-platform "$host" --format-version 1 >/dev/null 2>&1; then
    echo "    warning: Cargo.lock does not match the Cargo.toml files; commit the updated Cargo.lock"
fi

phase "cargo build --workspace --all-targets"
if ! cargo build --workspace --all-targets; then
    printf 'error: the build failed; no test ran\n' >&2
    exit 101
fi
phase_done "built"

# The whole workspace by default; with arguments (`-p pulse-api NAME`) only what they select
# (`--workspace` would override `-p`).
scope=(--workspace)
(($# > 0)) && scope=()
if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run "${scope[@]}" --no-fail-fast --test-threads "$TEST_THREADS" "$@")
else
    runner=(cargo test "${scope[@]}" --no-fail-fast "$@" -- --test-threads "$TEST_THREADS")
fi
phase "${runner[*]}"
echo "    PULSE_TEST_DATABASE_URL=$PULSE_TEST_DATABASE_URL"
echo "    PULSE_TEST_KAFKA_BROKERS=$PULSE_TEST_KAFKA_BROKERS"
echo "    PULSE_KAFKA_HOME=$PULSE_KAFKA_HOME"
set +e
timeout --kill-after=30s "$TEST_TIMEOUT" "${runner[@]}"
tests_rc=$?
set -e
if ((tests_rc == 124)); then
    printf 'error: the test run did not finish within %s (PULSE_TEST_TIMEOUT)\n' "$TEST_TIMEOUT" >&2
fi
((tests_rc == 0)) && phase_done "tests passed"

# The OpenAPI document against the live api (schemathesis, every check): a whole run only, and
# PULSE_FUZZ=0 skips it (a quick local loop).
if (($# == 0)) && [[ ${PULSE_FUZZ:-1} != 0 ]]; then
    phase "scripts/api-fuzz.sh (schemathesis against the OpenAPI document)"
    if "$PULSE_ROOT/scripts/api-fuzz.sh"; then phase_done "the api agrees with its document"; else failed+=(api-fuzz); fi
fi

echo
say "Summary ($(elapsed "$total_start"))"
((${#failed[@]} == 0)) || echo "    failed: ${failed[*]}"
if ((tests_rc != 0)); then
    echo "    tests failed (exit code $tests_rc)"
    exit "$tests_rc"
fi
if ((${#failed[@]} > 0)); then
    exit 1
fi
echo "    fmt, clippy and tests passed"

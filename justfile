# Recipes mirroring the scripts. `just` is optional and not on a fresh machine (`pip install
# rust-just` or `cargo install just`); every recipe is one script or cargo command you can run
# without it.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Start everything (services, release build, api, worker, scheduler) and run the demo.
up:
    scripts/up.sh

# Stop the Pulse processes and the services the scripts started.
down:
    scripts/down.sh

# fmt check, clippy and the whole test suite against local services; extra args go to the runner.
test *args:
    scripts/test.sh {{args}}

# Local services only: `just services` (up), `just services status`, `just services down`.
services action="up":
    scripts/services.sh {{action}}

# Install Apache Kafka's jars from Maven Central into /opt/pulse-cache (cached; under a minute).
install-kafka:
    scripts/install-kafka.sh

# Install Tansu, the light broker, into /opt/pulse-cache (cached; the first install takes ~15 minutes).
install-tansu:
    scripts/install-tansu.sh

# Load benchmark (see bench/RESULTS.md).
bench *args:
    scripts/bench.sh {{args}}

# Lints as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    python3 scripts/check-docs.py

# Format the code.
fmt:
    cargo fmt --all

# Apply the migrations to $PULSE_DATABASE_URL (default: the dev database `pulse`).
migrate:
    PULSE_DATABASE_URL="${PULSE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pulse}" cargo run --release --bin pulse-api -- migrate

# CI as it runs on a clean clone.
ci:
    bash .ci/run

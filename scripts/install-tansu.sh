#!/usr/bin/env bash
# Installs Tansu, the Kafka-compatible broker Pulse uses for development and tests, into
# ${PULSE_CACHE_DIR:-/opt/pulse-cache}/tansu and prints the binary's path on the last line.
#
# Idempotent: an existing cached binary is reused. A fresh install compiles Tansu from crates.io
# (`cargo install tansu --locked --features libsql,dynostore`), which takes 10-17 minutes on
# 2 cores. libsql gives the durable `sqlite://` storage engine, dynostore the object-store ones.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TANSU_VERSION="${PULSE_TANSU_VERSION:-0.6.0}"
root="$PULSE_CACHE_DIR/tansu"
bin="$root/bin/tansu"

if [[ -x $bin ]]; then
    ok "Tansu already installed: $("$bin" --version 2>/dev/null || echo tansu)" >&2
    echo "$bin"
    exit 0
fi

command -v cargo >/dev/null || die "cargo is not on PATH; install Rust with rustup first"
# Another install into the same root (a parallel run) must not be started twice.
mkdir -p "$root"
exec 9>"$root/.install.lock"
if ! flock -n 9; then
    say "Another Tansu install is running; waiting for it" >&2
    flock 9
    [[ -x $bin ]] && { echo "$bin"; exit 0; }
fi

say "Installing Tansu $TANSU_VERSION into $root (compiles from crates.io: takes ~15 minutes)" >&2
log="$PULSE_STATE_DIR/tansu-install.log"
start=$SECONDS
if ! cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore --root "$root" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "cargo install tansu failed (full log: $log)"
fi
[[ -x $bin ]] || die "cargo install finished but $bin is missing (log: $log)"
ok "Tansu installed in $(elapsed "$start")" >&2
echo "$bin"

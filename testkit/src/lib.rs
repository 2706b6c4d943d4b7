//! Test support for Pulse's integration tests. Every test isolates itself so tests run in
//! parallel: its own PostgreSQL database cloned from a migrated template ([`TestDb`]), its own
//! topic prefix on the shared broker ([`TestKafka`]), its own Apache Kafka broker or cluster when
//! it needs to kill one ([`TestBroker`], [`TestCluster`]), and real `pulse-*` processes it can
//! SIGKILL or SIGTERM
//! ([`PulseProcess`]). [`TcpProxy`] sits in front of PostgreSQL to cut the network without
//! touching the shared server. [`Receiver`] is a real webhook receiver that verifies
//! signatures with the `standardwebhooks` crate, [`SmtpCapture`] a real SMTP server (aiosmtpd) keeping what it accepts. Nothing here is a mock: every component is the real one.
//!
//! Environment: `PULSE_TEST_DATABASE_URL` (maintenance database, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), `PULSE_TEST_KAFKA_BROKERS` (shared broker,
//! default `127.0.0.1:9092`), `PULSE_KAFKA_HOME` and `PULSE_TEST_KAFKA_HEAP` for a test's own
//! brokers (see [`broker`]), `PULSE_BIN_DIR` (where the pulse binaries are, default the target
//! directory of the running test).

pub mod broker;
pub mod db;
pub mod kafka;
pub mod management;
pub mod net;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod smtp;

pub use broker::{TestBroker, TestCluster};
pub use db::{TestDb, TestProject};
pub use kafka::TestKafka;
pub use process::{PulseEnv, PulseProcess};
pub use proxy::TcpProxy;
pub use receiver::{Behaviour, Receiver};
pub use smtp::{Captured, SmtpCapture};

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

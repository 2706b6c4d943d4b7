//! Kafka plumbing shared by the binaries: topic names, client settings, topic creation at
//! start, the acknowledged producer and the readiness probe.

pub mod admin;
pub mod client;
pub mod probe;
pub mod producer;
pub mod topics;

pub use topics::Topics;

//! `pulse-api`: the HTTP front of Pulse. It authenticates producers by API key, validates their
//! events, puts each one on Kafka and answers 202 only once Kafka acknowledged it.
//!
//! Modules, one job each: [`cli`] (arguments), [`serve`] (start-up and shutdown), [`app`] (the
//! actix `App`), [`request_id`] (per-request middleware), [`auth`] (API keys and their cache),
//! [`ingest`] (the ingest routes: rate limit, body, event rules, handlers), [`rate_limit`] (the
//! token buckets every limit uses), [`error`] (the error type and its wire form), [`metrics`],
//! [`admin`] (`create-project`), [`management`] (accounts, organizations, projects, API keys,
//! OpenAPI; docs/management.md), [`query`] (the read routes: raw events; docs/query.md), [`stream`]
//! (the live stream over WebSocket and SSE; docs/stream.md). The wire
//! API is documented in docs/ingest.md.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub(crate) mod error;
pub mod ingest;
pub mod management;
pub(crate) mod metrics;
pub mod query;
pub(crate) mod rate_limit;
pub(crate) mod request_id;
pub mod serve;
pub mod stream;

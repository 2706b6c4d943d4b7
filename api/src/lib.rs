//! `pulse-api`: the HTTP front of Pulse. It authenticates producers by API key, validates their
//! events, puts each one on Kafka and answers 202 only once Kafka acknowledged it.
//!
//! Modules, one job each: [`cli`] (arguments), [`serve`] (start-up and shutdown), [`app`] (the
//! actix `App`), [`request_id`] (per-request middleware), [`auth`] (API keys), [`body`] (limits,
//! gzip, content type), [`validate`] (event rules), [`ingest`] (handlers), [`error`] (the error
//! type and its wire form), [`metrics`], [`admin`] (`create-project`), [`management`] (accounts,
//! organizations, projects, API keys, rate limits, OpenAPI; docs/management.md). The wire API is documented
//! in docs/ingest.md.

pub mod admin;
pub mod app;
pub mod auth;
pub mod body;
pub mod cli;
pub mod error;
pub mod ingest;
pub mod management;
pub mod metrics;
pub mod request_id;
pub mod serve;
pub mod validate;

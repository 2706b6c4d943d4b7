//! Integration tests of the management API against real PostgreSQL and a real broker, with
//! `pulse-api` (and, where events must land, `pulse-worker`; where projects are purged,
//! `pulse-scheduler`) running as real processes. One module per concern; one test binary, so
//! the workspace links it once. The stack and its helpers are `pulse_testkit::management`.

mod alerts;
mod journey;
mod keys;
mod limits;
mod openapi;
mod purge;
mod roles;
mod tenancy;
mod validation;
mod webhooks;

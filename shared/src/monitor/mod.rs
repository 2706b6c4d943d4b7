//! Uptime monitors: what a monitor's settings mean ([`spec`]), how one is checked and how a
//! check's result is recorded (state, breaker, incidents, notices), shared by the scheduler's
//! check loop and the api's "check now". See docs/monitors.md.

pub mod spec;

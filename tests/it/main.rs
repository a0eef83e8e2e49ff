//! The one integration test binary: real sockets, a real database, real RADIUS clients.

// Test code: a failed setup step is a failed test (clippy.toml allows these inside #[test]
// functions only, not in the shared helpers), and tests time themselves with the OS clocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod admin_api;
mod admin_api_auth;
mod audit;
mod cli;
mod common;
mod crash;
mod deploy;
mod emergency;
mod file_modes;
mod interop;
mod invariants;
mod lifecycle;
mod log_escaping;
mod logging;
mod master_key;
mod metrics;
mod multi_instance;
mod radius_e2e;
mod startup;
mod tacacs_e2e;
mod tacacs_tls;

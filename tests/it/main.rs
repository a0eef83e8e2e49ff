//! The one integration test binary: real sockets, a real database, real RADIUS clients.

mod admin_api;
mod audit;
mod cli;
mod common;
mod crash;
mod deploy;
mod emergency;
mod interop;
mod invariants;
mod lifecycle;
mod logging;
mod metrics;
mod multi_instance;
mod radius_e2e;
mod tacacs_e2e;
mod tacacs_tls;

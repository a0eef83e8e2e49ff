//! tokengate: an authentication gateway for network gear.
//!
//! RADIUS clients (VPN concentrators, switches, firewalls) ask it whether a user may log in; it
//! checks PIN + TOTP/HOTP tokencodes under SecurID-style rules (windows, drift, replay, Next
//! Tokencode, New PIN, lockout). See ARCHITECTURE.md for the map. Module overview:
//!
//! - [`radius`]: sans-IO RADIUS codec and dictionary loader (bytes in, bytes out).
//! - [`tacacs`]: sans-IO TACACS+ codec and per-session state machine (bytes in, bytes out).
//! - [`otp`]: HOTP/TOTP, keyed hashes, seed encryption, code generation (pure).
//! - [`policy`]: the per-domain policies and prompt texts the engine decides with (plain data).
//! - [`engine`]: protocol-neutral decisions (pure: state, `now` and an RNG in; decision + writes out).
//! - [`store`]: SQLite/PostgreSQL persistence, migrations, group-commit writer.
//! - [`server`]: the I/O: UDP listeners, caches, the auth service, lifecycle.
//! - [`admin`]: admin operations shared by the CLI (and later the HTTP API).
//! - [`metrics`]: Prometheus metric names, pre-resolved handles and the scrape.
//! - [`audit`]: audit log lines, export (JSON lines, CSV) and retention.
//! - [`config`], [`cli`], [`keys`], [`clock`], [`stats`], [`model`]: the rest.

#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod otp;
pub mod policy;
pub mod radius;
pub mod server;
pub mod stats;
pub mod store;
pub mod tacacs;

//! tokengate: an authentication gateway for network gear.
//!
//! RADIUS and TACACS+ clients (VPN concentrators, switches, firewalls, Linux hosts) ask it
//! whether a user may log in; it checks PIN + TOTP/HOTP tokencodes and emergency access codes
//! under SecurID-style rules (windows, drift, replay, Next Tokencode, New PIN, lockout). See
//! ARCHITECTURE.md for the map and the layers. Modules, from the bottom layer up (each imports
//! only from the lines above it; `tests/it/invariants.rs` enforces it):
//!
//! - [`model`]: plain records; [`clock`]: the one OS clock reader and the civil-time helpers.
//! - [`otp`]: HOTP/TOTP, keyed hashes, seed encryption, code generation (pure); [`stats`]:
//!   atomic counters.
//! - [`radius`], [`tacacs`]: sans-IO codecs (bytes in, bytes out); [`policy`]: the per-domain
//!   policies and prompt texts the engine decides with (plain data).
//! - [`engine`]: protocol-neutral decisions, one file per rule family (pure: state, `now` and an
//!   RNG in; decision + writes out).
//! - [`config`]: strict TOML → validated `Config`; [`keys`]: the master key file.
//! - [`audit`]: audit log lines (`audit::log`, below the store), export and retention (above it).
//! - [`store`]: SQLite/PostgreSQL persistence, migrations, group-commit writer.
//! - [`admin`]: admin operations shared by the CLI and the HTTP API; [`metrics`]: Prometheus
//!   metric names, pre-resolved handles and the scrape.
//! - [`server`]: the I/O: RADIUS and TACACS+ listeners, caches, the auth service, the admin API,
//!   health, reload, lifecycle.
//! - [`cli`]: the command line.

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

//! The audit log around the `audit` table: structured log lines, export and retention.
//!
//! Records are written by others: authentications and TACACS+ accounting as
//! [`WriteOp::Audit`](crate::engine::WriteOp::Audit) in the group-commit writer's batches, admin
//! actions through `Store::insert_audit`. This module owns what happens to them afterwards, in
//! three layers:
//!
//! - [`log`]: every record that reached the database is also logged as one `tracing` event with
//!   target [`log::TARGET`] and a field per column, after its transaction committed (a group whose
//!   guard failed wrote no record and logs none). Filtering the target out
//!   (`RUST_LOG=info,tokengate::audit=off`) makes the check cost a relaxed atomic load. It sits
//!   below the store (the writer calls it) and imports nothing of it.
//! - [`export`]: streams records between two instants as JSON lines or CSV (RFC 4180 quoting),
//!   page by page, so memory stays bounded whatever the table holds.
//! - [`retention`]: deletes records older than `[audit] retention_days`, in bounded batches so no
//!   single transaction holds the database for long.
//!
//! It must not write audit records on the packet path itself (that stays batched) nor log
//! anything but the record's columns (never passcodes or keys: records hold none).

pub mod export;
pub mod log;
pub mod retention;
